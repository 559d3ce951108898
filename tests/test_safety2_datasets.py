"""Hostile and unusual data files: each is refused in psae's words (a PsaeError naming the file,
member or row) or read as the user meant, and nothing is left behind. No test touches the
network: downloads are made to fail as they do offline."""

from __future__ import annotations

import io
import struct
import tarfile
import time
import tracemalloc
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from psae import datasets
from psae.datasets import DatasetError, DatasetNotFoundError
from psae.datasets import download as dl


# ----------------------------------------------------------------------------- helpers
def png(w: int = 8, h: int = 6, seed: int = 0) -> bytes:
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def png_claiming(w: int, h: int) -> bytes:
    """A small PNG whose IHDR claims ``w`` x ``h`` pixels (with a valid chunk CRC)."""
    b = bytearray(png())
    b[16:24] = struct.pack(">II", w, h)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
    return bytes(b)


def layout(extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """A valid image-folder layout (two classes, train and test), plus ``extra`` members."""
    members = {
        f"{s}/{c}/{i}.png": png(seed=i + 10 * j)
        for j, (s, c) in enumerate((s, c) for s in ("train", "test") for c in ("a", "b"))
        for i in range(2)
    }
    members.update(extra or {})
    return members


def write_layout(path: Path, members: dict[str, bytes]) -> Path:
    """``members`` as a ``.zip``, ``.tar.gz`` or plain directory, by ``path``'s name."""
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in members.items():
                z.writestr(name, data)
    elif path.name.endswith(".tar.gz"):
        with tarfile.open(path, "w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        for name, data in members.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(data)
    return path


def patch_zip(path: Path, member: str, *, flags: int | None = None, method: int | None = None):
    """Set a member's general-purpose flags or compression method in its local header and its
    central-directory entry, as a hostile or exotic archiver would have written them."""
    b = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        local = z.getinfo(member).header_offset
    central = [i for i in range(len(b)) if b[i : i + 4] == b"PK\x01\x02"]
    for c in central:
        n = struct.unpack_from("<H", b, c + 28)[0]
        if b[c + 46 : c + 46 + n].decode() != member:
            continue
        for at, value in ((c + 8, flags), (c + 10, method), (local + 6, flags),
                          (local + 8, method)):  # fmt: skip
            if value is not None:
                struct.pack_into("<H", b, at, value)
    path.write_bytes(bytes(b))


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every download fails as it does without a network; the URLs tried are recorded."""
    tried: list[str] = []

    def no_network(req, *a, **k):
        tried.append(getattr(req, "full_url", str(req)))
        raise OSError(101, "Network is unreachable")

    monkeypatch.delenv("PSAE_MIRROR", raising=False)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tried


def tree(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*")) if d.exists() else []


# ----------------------------------------------------------------------------- 1. image headers
@pytest.mark.parametrize("kind", ["set.zip", "set.tar.gz", "folder"])
def test_an_image_claiming_20000x20000_pixels_is_refused_by_name(tmp_path: Path, kind: str):
    root = tmp_path / kind
    if kind == "folder":
        root.mkdir()
    p = write_layout(root, layout({"train/a/zz_huge.png": png_claiming(20000, 20000)}))
    with pytest.raises(DatasetError, match=r"zz_huge\.png: image header claims 20000x20000") as e:
        datasets.load(p, cache=False)
    assert "more than psae decodes" in str(e.value)
    # and every image must have the size of the first, checked from the header too
    mixed = tmp_path / f"mixed-{kind}"
    if kind == "folder":
        mixed.mkdir()
    write_layout(mixed, layout({"train/b/zz_wide.png": png(9, 6)}))
    with pytest.raises(DatasetError, match=r"zz_wide\.png: image size 9x6 differs from 8x6"):
        datasets.load(mixed, cache=False)
    ds = datasets.load(write_layout(tmp_path / f"ok-{kind}.zip", layout()), cache=False)
    assert ds.shape == (6, 8, 3) and ds.X_train.shape == (4, 144)


# ----------------------------------------------------------------------------- 2, 3. zip members
def test_an_encrypted_zip_member_is_refused_by_name(tmp_path: Path):
    p = write_layout(tmp_path / "enc.zip", layout())
    patch_zip(p, "train/b/1.png", flags=0x1)
    with pytest.raises(DatasetError, match=r"enc\.zip:train/b/1\.png: the member is encrypted"):
        datasets.load(p, cache=False)
    # a member outside the layout is never read, so it does not matter
    q = write_layout(tmp_path / "other.zip", layout({"extras/notes.png": png()}))
    patch_zip(q, "extras/notes.png", flags=0x1)
    assert datasets.load(q, cache=False).X_train.shape == (4, 144)


def test_an_unsupported_zip_compression_method_is_refused_by_name(tmp_path: Path):
    p = write_layout(tmp_path / "m.zip", layout())
    patch_zip(p, "test/a/0.png", method=99)
    with pytest.raises(
        DatasetError, match=r"m\.zip:test/a/0\.png: compression method 99 \(WinZip AES\)"
    ):
        datasets.load(p, cache=False)


# ----------------------------------------------------------------------------- 4. empty arrays
def test_npz_arrays_without_rows_or_features_are_refused(tmp_path: Path):
    cases = {
        "x.npz": ({"X": np.zeros((0, 5))}, r"x\.npz: X has no rows"),
        "img.npz": ({"X": np.zeros((0, 4, 4), np.uint8)}, r"img\.npz: X has no rows"),
        "tr.npz": (
            {"X_train": np.zeros((0, 3)), "X_test": np.ones((2, 3))},
            r"tr\.npz: X_train has no rows",
        ),
        "te.npz": (
            {"X_train": np.ones((2, 3)), "X_test": np.zeros((0, 3))},
            r"te\.npz: X_test has no rows",
        ),
        "w.npz": ({"X": np.zeros((4, 0))}, r"w\.npz: X has no features"),
    }
    for name, (arrays, words) in cases.items():
        np.savez(tmp_path / name, **arrays)
        for read in (datasets.load_arrays, datasets.load):
            with pytest.raises(DatasetError, match=words):
                read(tmp_path / name)


# ----------------------------------------------------------------------------- 5. CSV
def test_csv_quoted_numbers_are_numbers(tmp_path: Path):
    p = tmp_path / "q.csv"
    p.write_text('"a","b","label"\n"1","2.5","0"\n"3", "4","1"\r\n')
    for spec in ("auto", "label", -1):
        ds = datasets.load(p, label_column=spec)
        np.testing.assert_array_equal(ds.X_train, [[1, 2.5], [3, 4]])
        assert ds.y_train.tolist() == [0, 1] and ds.label_column == "label"
    p.write_text('"1","2.5","0"\n"3","4","1"\n')
    assert datasets.load(p).X_train.shape == (2, 3)  # no header: no labels unless asked
    ds = datasets.load_arrays(p, label_column=2)
    assert ds.y_train.tolist() == [0, 1] and ds.label_column == 2
    p.write_text('1,2\n"3","4\n5,6\n')  # a quote never closed
    with pytest.raises(DatasetError, match=r"q\.csv, line 2: not a valid CSV row"):
        datasets.load(p)


def test_csv_class_name_labels_are_classes_as_in_an_npz(tmp_path: Path):
    X = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.float32)
    names = ["zero", "one", "zero"]
    np.savez(tmp_path / "ref.npz", X=X, y=np.array(names))
    ref = datasets.load(tmp_path / "ref.npz")
    rows = [f"{a:g},{b:g},{n}" for (a, b), n in zip(X, names, strict=True)]
    quoted = [",".join(f'"{c}"' for c in r.split(",")) for r in rows]
    cases = [
        ("a,b,label", rows, "auto", "label"),
        ("a,b,digit", rows, "digit", "digit"),
        ('"a","b","label"', quoted, "auto", "label"),
        (None, rows, "auto", 2),  # the one column of class names, said in a note
        (None, quoted, -1, 2),
        (None, rows, 2, 2),
    ]
    for head, body, spec, recorded in cases:
        p = tmp_path / "c.csv"
        p.write_text("\n".join(([head] if head else []) + body) + "\n")
        ds = datasets.load(p, label_column=spec)
        assert ds.classes == ref.classes == ["one", "zero"], (head, spec)
        assert ds.y_train.tolist() == ref.y_train.tolist() == [1, 0, 1], (head, spec)
        np.testing.assert_array_equal(ds.X_train, X)
        assert ds.label_column == recorded
    p.write_text("a,b,digit\n1,2,zero\n3,4,one\n")
    with pytest.raises(DatasetError, match=r"line 2: non-numeric value 'zero' in column 'digit'"
                       r".*make it the label column"):  # fmt: skip
        datasets.load(p)
    p.write_text("a,b,label\n1,2,zero\n3,4,\n")
    with pytest.raises(DatasetError, match=r"c\.csv, line 3: empty label in column 'label'"):
        datasets.load(p)


# ----------------------------------------------------------------------------- 6. member cap
def test_a_huge_zip_member_is_refused_by_its_declared_size_without_inflating_it(tmp_path: Path):
    p = write_layout(tmp_path / "bomb.zip", layout())
    with zipfile.ZipFile(p, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("train/a/zz_big.png", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(100):  # 100 MiB of zeros, over the 64 MiB cap
                f.write(chunk)
    assert p.stat().st_size < 2_000_000
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(DatasetError, match=r"bomb\.zip:train/a/zz_big\.png: declares "
                           r"104,857,600 bytes, more than .* 64 MiB"):  # fmt: skip
            datasets.load(p, cache=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20 and time.perf_counter() - t0 < 5


@pytest.mark.parametrize("kind", ["set.zip", "set.tar.gz", "folder"])
def test_every_member_is_read_with_a_cap(tmp_path: Path, monkeypatch, kind: str):
    monkeypatch.setattr("psae.datasets.members.MAX_MEMBER_BYTES", 1 << 20)
    root = tmp_path / kind
    if kind == "folder":
        root.mkdir()
    p = write_layout(root, layout({"train/b/zz_big.png": bytes(3 << 20)}))
    with pytest.raises(DatasetError, match=r"zz_big\.png: declares 3,145,728 bytes.*1 MiB"):
        datasets.load(p, cache=False)


def test_the_bytes_read_are_bounded_when_a_header_lies(monkeypatch):
    from psae.datasets import members

    monkeypatch.setattr(members, "MAX_MEMBER_BYTES", 1 << 20)

    class Endless(io.RawIOBase):  # a member whose header said 10 bytes and never ends
        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            b[:] = bytes(len(b))
            Endless.served += len(b)
            return len(b)

    with pytest.raises(DatasetError, match=r"a\.zip:x\.png: holds more than 1,048,576 bytes"):
        members.read_capped(io.BufferedReader(Endless()), "a.zip:x.png", declared=10)
    assert Endless.served <= (1 << 20) + (1 << 16)
    assert members.read_capped(io.BytesIO(b"abc"), "w", declared=3) == b"abc"


def test_cifar_batches_are_read_with_the_cap_too(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("psae.datasets.members.MAX_MEMBER_BYTES", 1 << 20)
    p = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(p, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = 2 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    with pytest.raises(DatasetError, match=r"data_batch_1: declares 2,097,152 bytes"):
        datasets.load(p, cache=False, verify=False)


# ----------------------------------------------------------------------------- 7. describe
def test_the_bundled_digits_are_not_said_to_be_in_the_data_dir(tmp_path: Path, capsys):
    from psae.cli import main

    nowhere = tmp_path / "no-such-dir"
    info = {d["name"]: d for d in datasets.describe(nowhere)}
    assert info["digits"]["root"] == "bundled with scikit-learn" and info["digits"]["bundled"]
    assert info["digits"]["looked_in"] == [] and info["digits"]["complete"]
    assert info["mnist"]["root"] == str(nowhere) and not info["mnist"]["bundled"]
    assert main(["datasets", "--data-dir", str(nowhere)]) == 0
    digits = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("digits")]
    assert digits and "bundled with scikit-learn" in digits[0] and str(nowhere) not in digits[0]
    assert not nowhere.exists()


# ----------------------------------------------------------------------------- 8. missing data
def test_missing_mnist_offline_says_how_to_get_it_and_leaves_no_folders(tmp_path: Path, offline):
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DatasetNotFoundError) as e:
        datasets.load("mnist", root=root)  # download=True is the default: it is tried
    msg = str(e.value)
    assert offline and offline[0].endswith("train-images-idx3-ubyte.gz")
    assert f"not found in {root / 'mnist'}/ or {root}/" in msg
    assert "looked for train-images-idx3-ubyte.gz" in msg and "Network is unreachable" in msg
    assert f"psae datasets --download mnist --data-dir {root}" in msg
    assert "download=True" in msg and "$PSAE_DATA" not in msg and "root= /" not in msg
    assert tree(root) == []
    # a data dir that did not exist is not created either; one that did stays, with its folder
    deep = tmp_path / "a" / "b"
    with pytest.raises(DatasetNotFoundError):
        datasets.load("optdigits", root=deep)
    assert not (tmp_path / "a").exists()
    (root / "mnist").mkdir()
    with pytest.raises(DatasetNotFoundError):
        datasets.load("mnist", root=root)
    assert tree(root) == ["mnist"]
    with pytest.raises(DatasetNotFoundError, match=r"download=False"):
        datasets.load("cifar10", root=root, download=False)
    assert tree(root) == ["mnist"]


def test_a_failed_download_keeps_the_files_that_arrived(tmp_path: Path, monkeypatch, offline):
    def one_then_fail(url: str, dest: Path, **kw) -> Path:
        if Path(dest).name != "optdigits.tra":
            raise dl.DownloadError(f"{url}: download failed (offline)")
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_bytes(b"1,2\n")
        return Path(dest)

    monkeypatch.setattr(dl, "download_file", one_then_fail)
    with pytest.raises(DatasetNotFoundError, match="download failed"):
        datasets.load("optdigits", root=tmp_path / "d")
    assert tree(tmp_path / "d") == ["optdigits", "optdigits/optdigits.tra"]


def test_psae_datasets_download_offline_fails_in_one_message(tmp_path: Path, offline, capsys):
    from psae.cli import main

    root = tmp_path / "fresh"
    assert main(["datasets", "--download", "mnist", "--data-dir", str(root)]) == 1
    err = capsys.readouterr().err
    assert "not found in" in err and "Traceback" not in err
    assert not root.exists()


class _StridedArray:
    """Pickles as ``np.ndarray(shape, dtype, buffer, 0, strides)``: a whole array over one
    byte, which the restricted unpickler allows (numpy arrays are what it is for)."""

    def __init__(self, *args):
        self.args = args

    def __reduce__(self):
        return (np.ndarray, self.args)


def test_a_tiny_pickle_cannot_expand_into_a_huge_cifar_batch():
    import pickle

    from psae.datasets.cifar import safe_load_pickle

    blob = pickle.dumps({b"data": _StridedArray((10_000, 3072), "u1", b"\0", 0, (0, 0)),
                         b"labels": [0] * 10}, protocol=2)
    assert len(blob) < 1000  # expands to 31 MB when copied
    # refused before numpy builds it (the class called directly), or by the size budget
    with pytest.raises(DatasetError, match="calls numpy.ndarray|more bytes .* than the pickle"):
        safe_load_pickle(blob, "data_batch_1")
    real = pickle.dumps({b"data": np.zeros((10, 3072), np.uint8), b"labels": [0] * 10},
                        protocol=2)
    assert safe_load_pickle(real, "data_batch_1")[b"data"].shape == (10, 3072)


def test_a_linked_class_folder_is_read_and_hashed_and_a_loop_is_an_error(tmp_path):
    from psae.datasets.imagefolder import read_image_folder
    from psae.io.digest import sha256_tree

    root, elsewhere = tmp_path / "imgs", tmp_path / "cats"
    for d in (root / "train" / "dog", elsewhere):
        d.mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((4, 4), 40 * i, np.uint8)).save(d / f"{i}.png")
    (root / "train" / "cat").symlink_to(elsewhere)  # a class kept elsewhere: was left out
    raw = read_image_folder(root)
    assert raw.classes == ["cat", "dog"] and raw.X_train.shape == (6, 16)
    before = sha256_tree(root)
    Image.fromarray(np.full((4, 4), 7, np.uint8)).save(elsewhere / "0.png")
    assert sha256_tree(root) != before  # a cached read of the old images is not reused
    (elsewhere / "loop").symlink_to(root)
    with pytest.raises(DatasetError, match="read already"):
        read_image_folder(root)
    assert len(sha256_tree(root)) == 64  # the hash ends too


def test_a_cached_read_says_what_the_first_read_said(tmp_path):
    root = tmp_path / "imgs"
    for c in "ab":
        (root / "train" / c).mkdir(parents=True)
        for i in range(3):  # colour files, every one grey: read as one channel, and said so
            Image.fromarray(np.full((4, 4, 3), 40 * i, np.uint8)).save(
                root / "train" / c / f"{i}.png")
    first = datasets.load(str(root), cache=tmp_path / "cache")
    again = datasets.load(str(root), cache=tmp_path / "cache")
    assert any("grey" in n for n in first.notes) and again.notes == first.notes
    assert again.shape == first.shape == (4, 4)


def test_a_file_swapped_in_with_its_old_size_and_mtime_is_hashed_again(tmp_path):
    import os

    from psae.datasets.cache import Cache

    f, store = tmp_path / "train.csv", Cache(tmp_path / "cache")
    f.write_bytes(b"1,2\n")
    old = store.digests(f)
    st = f.stat()
    new = tmp_path / "new.csv"
    new.write_bytes(b"3,4\n")  # same size
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))  # touch -r
    os.replace(new, f)
    assert store.digests(f)["sha256"] != old["sha256"]
