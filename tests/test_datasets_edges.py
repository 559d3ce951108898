"""Data-set reading at the edges a review found: a half-filled data root, crafted pickles and
archives, 16-bit and mislabelled images, tar links, huge labels and headers, bad seeds."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from psae import ParameterError, datasets
from psae.datasets import DatasetError, DatasetNotFoundError
from psae.datasets import download as dl
from psae.datasets.cache import _MEMO
from psae.datasets.cifar import safe_load_pickle
from psae.datasets.idx import read_idx

DATA = Path(
    os.environ.get("PSAE_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def test_a_download_completes_a_root_that_holds_half_the_files(tmp_path, monkeypatch):
    """Two MNIST files in root/ and a download into root/mnist/ of only the other two left
    two half sets, and every later load failed."""
    root = tmp_path / "root"
    root.mkdir()
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(DATA / "mnist" / f, root / f)
    monkeypatch.setenv("PSAE_MIRROR", DATA.as_uri())
    ds = datasets.load("mnist", root, cache=False)
    assert ds.X_train.shape == (60_000, 784)
    assert len(list((root / "mnist").iterdir())) == 4


def test_a_file_where_the_download_folder_goes_is_said(tmp_path, monkeypatch):
    (tmp_path / "optdigits").write_text("not a folder")
    monkeypatch.setenv("PSAE_MIRROR", DATA.as_uri())
    with pytest.raises(DatasetNotFoundError, match="not a folder"):
        datasets.load("optdigits", tmp_path, cache=False)


def test_a_download_that_fails_its_checksum_is_not_advised_as_a_file_on_disk(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 100)
    with pytest.raises(DatasetError) as e:
        dl.download_file(src.as_uri(), tmp_path / "optdigits.tra", progress=False)
    assert "nothing was kept" in str(e.value) and "verify=False" not in str(e.value)
    assert not (tmp_path / "optdigits.tra").exists()


def test_a_pickle_that_calls_ndarray_is_refused_before_it_allocates():
    class Huge:
        def __reduce__(self):
            return (np.ndarray, ((10**8,), np.dtype("u1")))

    with pytest.raises(DatasetError, match="calls numpy.ndarray"):
        safe_load_pickle(pickle.dumps({b"data": Huge()}, protocol=2), "crafted")
    real = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), b"labels": [1, 2, 3]}
    for protocol in (2, 3, 4, 5):
        got = safe_load_pickle(pickle.dumps(real, protocol=protocol), "real")
        np.testing.assert_array_equal(got[b"data"], real[b"data"])


def test_damaged_and_oversized_npz_are_dataset_errors(tmp_path):
    good = tmp_path / "good.npz"
    np.savez_compressed(good, X=np.random.default_rng(0).random((50, 8)), y=np.arange(50) % 3)
    raw = bytearray(good.read_bytes())
    raw[100] ^= 0xFF
    (tmp_path / "flipped.npz").write_bytes(raw)
    with pytest.raises(DatasetError, match="cannot read .npz"):
        datasets.load(tmp_path / "flipped.npz", cache=False)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**7, 10**7)})
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as z:
        z.writestr("X.npy", header.getvalue() + b"\0" * 16)
    with pytest.raises(DatasetError, match="declares a"):
        datasets.load(tmp_path / "huge.npz", cache=False)


def _folder(root: Path, images: dict[str, Image.Image | bytes]) -> Path:
    for rel, im in images.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(im, bytes):
            p.write_bytes(im)
        else:
            im.save(p, format="PNG")
    return root


def test_16_bit_pngs_are_scaled_not_clipped(tmp_path):
    a = np.linspace(0, 63000, 64).reshape(8, 8).astype(np.uint16)
    d = _folder(tmp_path / "f", {"train/a/0.png": Image.fromarray(a),
                                 "train/b/0.png": Image.fromarray(a[::-1])})
    X = datasets.load(d, cache=False).X_train
    assert X.max() == 245 and len(np.unique(X)) > 20  # 63000 / 257; clipped held 0 and 255


def test_an_image_of_another_format_under_a_png_name_is_refused(tmp_path):
    gif = io.BytesIO()
    Image.new("L", (8, 8)).save(gif, format="GIF")
    d = _folder(tmp_path / "f", {"train/a/0.png": gif.getvalue(),
                                 "train/b/0.png": Image.new("L", (8, 8))})
    with pytest.raises(DatasetError, match="cannot decode image"):
        datasets.load(d, cache=False)


def test_an_image_stored_as_a_tar_link_is_refused_not_dropped(tmp_path):
    d = _folder(tmp_path / "f", {"train/a/0.png": Image.new("L", (8, 8), 3),
                                 "train/b/0.png": Image.new("L", (8, 8), 9)})
    os.link(d / "train/a/0.png", d / "train/a/1.png")
    tar = tmp_path / "f.tar"
    with tarfile.open(tar, "w") as t:
        t.add(d / "train", arcname="train")
    with pytest.raises(DatasetError, match="hard link"):
        datasets.load(tar, cache=False)


def test_large_whole_float_labels_stay_distinct_classes(tmp_path):
    np.savez(tmp_path / "big.npz", X=np.random.default_rng(0).random((6, 4)),
             y=np.array([1e19, 2e19, 1e19, 2e19, 1e19, 2e19]))
    ds = datasets.load(tmp_path / "big.npz", cache=False)
    assert len(np.unique(ds.y_train)) == 2


def test_idx_headers_that_overflow_or_inflate_are_refused(tmp_path):
    overflow = tmp_path / "o-idx3-ubyte"
    overflow.write_bytes(b"\x00\x00\x08\x03" + (2**31).to_bytes(4, "big") * 2
                         + (4).to_bytes(4, "big"))
    with pytest.raises(DatasetError, match="does not match its header"):
        read_idx(overflow)
    bomb = tmp_path / "b-idx3-ubyte.gz"
    with gzip.open(bomb, "wb") as g:  # a header for 10 images, then 20 MB of zeros
        g.write(b"\x00\x00\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (10, 28, 28)))
        g.write(bytes(20_000_000))
    with pytest.raises(DatasetError, match="more than"):
        read_idx(bomb)


def test_optdigits_cells_must_be_plain_digits(tmp_path):
    row = ",".join(["0"] * 64 + ["1"])
    for bad in ("1_0", "99999999999999999999"):
        f = tmp_path / "optdigits.tra"
        f.write_text(row + "\n" + bad + "," + ",".join(["0"] * 63 + ["1"]) + "\n")
        with pytest.raises(DatasetError, match="line 2"):
            datasets.optdigits.read_optdigits_file(f)


@pytest.mark.parametrize("seed", [-1, 1.5, "x", True])
def test_a_bad_seed_is_a_parameter_error(seed):
    with pytest.raises(ParameterError, match="seed"):
        datasets.load("digits", limit=10, seed=seed)


def test_an_empty_name_is_not_the_working_directory():
    with pytest.raises(DatasetNotFoundError, match="empty"):
        datasets.load("")


def test_a_damaged_digest_memo_is_hashed_afresh(tmp_path):
    cache = tmp_path / "cache"
    datasets.load("optdigits", DATA, cache=cache)
    memo = next(cache.rglob(_MEMO))
    tra = (DATA / "optdigits" / "optdigits.tra").resolve()
    memo.write_text(json.dumps({str(tra): [1, 2]}))
    assert datasets.load("optdigits", DATA, cache=cache).X_train.shape == (3823, 64)


def test_a_column_named_like_a_label_that_holds_measurements_is_not_taken_as_classes(tmp_path):
    from psae.datasets._base import DatasetOptionError

    rng = np.random.default_rng(0)
    f = tmp_path / "xyz.csv"
    rows = rng.normal(size=(150, 3))
    f.write_text("x,y,z\n" + "\n".join(",".join(f"{v:.4f}" for v in r) for r in rows) + "\n")
    with pytest.raises(DatasetOptionError, match="'y' is named like a label but holds numbers"):
        datasets.load(f)
    assert datasets.load(f, label_column=None).X_train.shape == (150, 3)
    assert len(datasets.load(f, label_column="y").classes) > 100  # asked for: taken as is
    ids = tmp_path / "ids.csv"  # whole numbers, one per row: an id, not a class
    ids.write_text("a,target\n" + "\n".join(f"{v:.3f},{i}" for i, v in enumerate(rows[:, 0]))
                   + "\n")
    with pytest.raises(DatasetOptionError, match="150 distinct values in 150 rows"):
        datasets.load(ids)
    ok = tmp_path / "ok.csv"  # classes: kept
    ok.write_text("a,label\n" + "\n".join(f"{v:.3f},{i % 3}" for i, v in enumerate(rows[:, 0]))
                  + "\n")
    assert datasets.load(ok).classes == ["0", "1", "2"]


def test_an_idx_header_claiming_terabytes_is_said_not_allocated(tmp_path):
    import struct

    f = tmp_path / "big-idx3-ubyte"
    f.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 8192, 8192, 8192) + bytes(100))
    with pytest.raises(DatasetError, match="file length 116 does not match"):
        read_idx(f)


def test_a_pickled_object_array_is_refused_before_numpy_builds_it():
    """An object array whose shape outruns its list crashed the process in numpy's
    __setstate__ (SIGSEGV) before the value check could refuse it."""
    blob = pickle.dumps({b"data": np.array([1, 2, 3], object)}, 2)
    blob = blob.replace(b"K\x03\x85", b"K\x1e\x85", 1)
    with pytest.raises(DatasetError, match="object array"):
        safe_load_pickle(blob, "crafted")


def test_a_16_bit_grey_png_opened_as_mode_i_is_scaled_too():
    """Pillow before 10.3 opens a 16-bit grey PNG as mode 'I', not 'I;16'."""
    from psae.datasets.imagefolder import _rgb8

    im = Image.fromarray(np.array([[0, 65535], [257, 32896]], dtype=np.int32))
    assert im.mode == "I"
    np.testing.assert_array_equal(_rgb8(im)[..., 0], [[0, 255], [1, 128]])


def test_a_header_of_numbers_is_read_as_one_when_said(tmp_path):
    """Wavelengths as column names were read as a data row, and nothing could say otherwise."""
    from psae import ParameterError as PE
    from psae.reproduce.data import load_user_data

    f = tmp_path / "spectra.csv"
    rows = np.random.default_rng(0).random((30, 4))
    f.write_text("400,410,420,430\n" + "\n".join(",".join(f"{v:.3f}" for v in r) for r in rows))
    assert datasets.load(f).X_train.shape == (31, 4)  # auto: all numbers, so data
    assert datasets.load(f, header=True).X_train.shape == (30, 4)
    assert datasets.load(f, header=False).X_train.shape == (31, 4)
    mixed = tmp_path / "mixed.csv"  # a text column: the line reader's path
    mixed.write_text("1,2,3\n" + "\n".join(f"{r[0]:.3f},{r[1]:.3f},{'ab'[i % 2]}"
                                             for i, r in enumerate(rows)))
    ds = datasets.load(mixed, header=True, label_column=-1)
    assert ds.X_train.shape == (30, 2) and ds.classes == ["a", "b"]
    with pytest.raises(PE, match="header applies to .csv files only"):
        datasets.load("digits", header=True)
    (user,) = load_user_data([str(f)], header=True)
    assert user.dataset.X_train.shape == (30, 4) and user.fingerprint()["header"] is True
    (auto,) = load_user_data([str(f)])
    assert "header" not in auto.fingerprint()  # runs made before the option compare equal


def test_the_cli_header_option_reaches_the_reader(tmp_path, capsys):
    from psae.cli import main

    f = tmp_path / "spectra.csv"
    rows = np.random.default_rng(0).random((40, 4))
    f.write_text("400,410,420,430\n" + "\n".join(",".join(f"{v:.3f}" for v in r) for r in rows))
    assert main(["fit", "--data", str(f), "--header", "yes", "--out", str(tmp_path / "m"),
                 "--n-components", "4", "--epochs", "4", "--quiet", "--device", "cpu"]) == 0
    for flag, rows_read in (("yes", 40), ("auto", 41)):
        out = tmp_path / f"codes-{flag}.npy"
        assert main(["encode", "--model", str(tmp_path / "m"), "--data", str(f), "--header",
                     flag, "--out", str(out)]) == 0
        assert np.load(out).shape == (rows_read, 4)
    capsys.readouterr()
    npz = tmp_path / "d.npz"
    np.savez(npz, X=rows)
    assert main(["fit", "--data", str(npz), "--header", "yes", "--out", str(tmp_path / "n"),
                 "--n-components", "4", "--epochs", "4", "--quiet", "--device", "cpu"]) == 2
    assert "--header applies to .csv files only" in capsys.readouterr().err
