"""psae.datasets: the data-side findings of the user-testing report (issue 9), and the per-data-set
records (one module and one registry entry per data set)."""

from __future__ import annotations

import dataclasses
import os
import pickle
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from psae import datasets
from psae.datasets import DatasetError, Source
from psae.datasets import download as dl

DATA = Path(
    os.environ.get("PSAE_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# ----------------------------------------------------------------------------- 1. file modes
@pytest.fixture(params=[0o022, 0o027])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_written_files_follow_the_umask(
    tmp_path: Path, umask: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # downloaded through a file:// mirror of the real copies, then decoded into the cache
    monkeypatch.setenv("PSAE_MIRROR", DATA.as_uri())
    cache = tmp_path / "c"
    datasets.load("optdigits", tmp_path / "root", cache=cache)
    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask
    for f in ("optdigits.tra", "optdigits.tes"):
        assert mode(tmp_path / "root" / "optdigits" / f) == file_mode, f
    assert mode(cache / "hashes.json") == file_mode
    (entry,) = [p for p in cache.iterdir() if p.is_dir()]
    assert mode(entry) == dir_mode
    files = sorted(entry.iterdir())
    assert {p.name for p in files} >= {"manifest.json", "X_train.npy", "y_test.npy"}
    assert {p.name: mode(p) for p in files} == {p.name: file_mode for p in files}
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []
    out = dl.download_file((DATA / "optdigits" / "optdigits.tes").as_uri(), tmp_path / "x.tes")
    assert mode(out) == file_mode


# ----------------------------------------------------------------------------- 2. NaN / inf
def test_npz_nan_and_inf_name_file_key_and_row(tmp_path: Path) -> None:
    X = np.ones((30, 4))
    X[17, 2] = np.nan
    np.savez(tmp_path / "x.npz", X_train=X, y_train=np.zeros(30))
    with pytest.raises(DatasetError, match=r"x\.npz: X_train row 17 contains NaN"):
        datasets.load_arrays(tmp_path / "x.npz")
    Xte = np.ones((5, 2, 2))
    Xte[3, 1, 0] = -np.inf
    np.savez(tmp_path / "t.npz", X_train=np.ones((5, 2, 2)), X_test=Xte)
    with pytest.raises(DatasetError, match=r"t\.npz: X_test row 3 contains inf"):
        datasets.load(tmp_path / "t.npz")
    np.savez(tmp_path / "y.npz", X=np.ones((4, 2)), y=np.array([0.0, 1.0, np.nan, 1.0]))
    with pytest.raises(DatasetError, match=r"y\.npz: y row 2 contains NaN"):
        datasets.load_arrays(tmp_path / "y.npz")


def test_csv_nan_and_inf_name_file_line_and_row(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,b,label\n1,2,0\n3,4,1\n\n5,nan,1\n")
    with pytest.raises(DatasetError, match=r"t\.csv, line 5: row 2 contains NaN \(in column 'b'\)"):
        datasets.load(p)
    q = tmp_path / "q.csv"
    q.write_text("1,2\n3,-inf\n")
    with pytest.raises(DatasetError, match=r"q\.csv, line 2: row 1 contains inf"):
        datasets.load_arrays(q, label_column=None)


# ----------------------------------------------------------------------------- 3. not an .npz
def test_non_npz_content_is_named(tmp_path: Path) -> None:
    fake = tmp_path / "fake.npz"
    fake.write_text("X,y\n1,2\n")
    with pytest.raises(DatasetError, match=r"fake\.npz: .*not a \.npz archive \(no zip sig") as ei:
        datasets.load(fake)
    assert "allow_pickle" not in str(ei.value)
    np.save(tmp_path / "a.npy", np.ones((3, 2)))
    (tmp_path / "a.npy").rename(tmp_path / "a.npz")
    with pytest.raises(DatasetError, match=r"a\.npz: .*no zip signature; it is a single \.npy"):
        datasets.load_arrays(tmp_path / "a.npz")
    (tmp_path / "p.npz").write_bytes(pickle.dumps({"X": [1, 2]}))
    with pytest.raises(DatasetError, match=r"p\.npz: .*no zip signature; .*pickle"):
        datasets.load_arrays(tmp_path / "p.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"empty\.npz: .*the file is empty"):
        datasets.load_arrays(tmp_path / "empty.npz")
    # a real archive holding pickled objects: refused without unpickling, and said so
    np.savez(tmp_path / "o.npz", X=np.array([[1, None]], dtype=object))
    with pytest.raises(DatasetError, match=r"o\.npz: array 'X' holds Python objects") as ei:
        datasets.load_arrays(tmp_path / "o.npz")
    assert "allow_pickle" not in str(ei.value)
    with zipfile.ZipFile(tmp_path / "z.npz", "w") as z:
        z.writestr("X.txt", "hello")
    with pytest.raises(DatasetError, match=r"z\.npz: member 'X\.txt' is not a \.npy array"):
        datasets.load_arrays(tmp_path / "z.npz")


# ----------------------------------------------------------------------------- 4. CSV labels
@pytest.mark.parametrize("name", ["label", "Target", " y ", "CLASS"])
def test_csv_label_column_auto(tmp_path: Path, name: str) -> None:
    p = tmp_path / "t.csv"
    p.write_text(f"a,{name},b\n1,0,2\n3,1,4\n5,1,6.5\n")
    for ds in (datasets.load_arrays(p), datasets.load(p)):
        assert ds.y_train.tolist() == [0, 1, 1]
        np.testing.assert_array_equal(ds.X_train, [[1, 2], [3, 4], [5, 6.5]])
        assert ds.label_column == name.strip()
        assert f"label column: {name.strip()!r} (auto-detected)" in ds.notes
        assert any("no test split" in n for n in ds.notes)


def test_csv_label_column_auto_prefers_label_and_falls_back_to_none(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("x,y,label\n1,2,0\n3,4,1\n")
    ds = datasets.load_arrays(p)
    assert ds.label_column == "label" and ds.X_train.shape == (2, 2)
    assert any("'y'" in n and "kept as features" in n for n in ds.notes)
    p.write_text("a,b,c\n1,2,0\n3,4,1\n")
    ds = datasets.load_arrays(p)
    assert ds.y_train is None and ds.label_column is None and ds.X_train.shape == (2, 3)
    assert any("no label column in the header (a, b, c)" in n for n in ds.notes)
    p.write_text("1,2,0\n3,4,1\n")
    ds = datasets.load(p)
    assert ds.y_train is None and ds.X_train.shape == (2, 3)
    assert any("no header row" in n for n in ds.notes)


def test_csv_label_column_index_name_none(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,b,lbl\n1,2,0\n3,4,1\n")
    # column "a" holds 1 and 3: classes "1" and "3", numbered 0 and 1
    for spec, y, rec in [(-1, [0, 1], "lbl"), (0, [0, 1], "a"), ("lbl", [0, 1], "lbl"),
                         (" LBL", [0, 1], "lbl"), (None, None, None)]:  # fmt: skip
        for ds in (datasets.load_arrays(p, label_column=spec), datasets.load(p, label_column=spec)):
            assert (None if ds.y_train is None else ds.y_train.tolist()) == y, spec
            assert ds.label_column == rec, spec
    q = tmp_path / "q.csv"
    q.write_text("1,2,0\n3,4,1\n")
    ds = datasets.load_arrays(q, label_column=-1)
    assert (
        ds.label_column == 2
        and ds.y_train.tolist() == [0, 1]
        and not any("auto" in n for n in ds.notes)
    )


def test_csv_label_column_errors(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,b,lbl\n1,2,0\n3,4,1\n")
    with pytest.raises(DatasetError, match=r"t\.csv: no column named 'label'.*'a', 'b', 'lbl'"):
        datasets.load(p, label_column="label")
    q = tmp_path / "q.csv"
    q.write_text("1,2,0\n3,4,1\n")
    with pytest.raises(DatasetError, match=r"q\.csv: label_column='lbl' .*no header row"):
        datasets.load_arrays(q, label_column="lbl")
    with pytest.raises(ValueError, match="label_column must be"):
        datasets.load_arrays(q, label_column=True)  # type: ignore[arg-type]
    np.savez(tmp_path / "a.npz", X=np.ones((3, 2)), y=np.arange(3))
    for spec in (0, "y"):
        with pytest.raises(ValueError, match=r"\.csv files only"):
            datasets.load(tmp_path / "a.npz", label_column=spec)
    assert datasets.load(tmp_path / "a.npz").y_train.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"\.csv files only"):
        datasets.load("digits", label_column=0)
    p.write_text("a,b\n1,2,0\n3,4,1\n")
    with pytest.raises(DatasetError, match=r"t\.csv, line 1: the header has 2 columns"):
        datasets.load_arrays(p)


def test_csv_non_numeric_cell_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,b,label\n1,2,0\n3,x,1\n")
    with pytest.raises(DatasetError, match=r"t\.csv, line 3: non-numeric value 'x' in column 'b'"):
        datasets.load(p)
    p.write_text("1,2\n\n3,\n")
    with pytest.raises(DatasetError, match=r"t\.csv, line 3: a missing value \(empty cell\)"):
        datasets.load_arrays(p)


def test_parse_label_column() -> None:
    parse = datasets.parse_label_column
    assert [parse(t) for t in ("-1", " 3", "None", "auto", "label")] == [
        -1, 3, None, "auto", "label"
    ]  # fmt: skip


# ----------------------------------------------------------------------------- 5. limits
def test_limit_through_load_for_array_files(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    rows = "\n".join(f"{i},{i * 2},{i % 3}" for i in range(60))
    p.write_text("a,b,label\n" + rows + "\n")
    ds = datasets.load(p, limit=9)
    assert ds.X_train.shape == (9, 2) and np.bincount(ds.y_train).tolist() == [3, 3, 3]
    np.savez(tmp_path / "a.npz", X=np.arange(100.0).reshape(50, 2))
    assert datasets.load(tmp_path / "a.npz", limit=7).X_train.shape == (7, 2)
    for bad in (0, -3):
        for path in (p, tmp_path / "a.npz"):
            with pytest.raises(ValueError, match="limit must be a positive int"):
                datasets.load(path, limit=bad)
        with pytest.raises(ValueError, match="limit must be a positive int"):
            datasets.load_arrays(p, limit=bad)


# ----------------------------------------------------------------------------- records
def test_each_data_set_is_one_record() -> None:
    labels = {n: s.label for n, s in datasets.SOURCES.items()}
    assert labels == {
        "mnist": "MNIST",
        "cifar10": "CIFAR-10",
        "optdigits": "OPTDIGITS",
        "digits": "digits (scikit-learn)",
    }
    assert tuple(datasets.SOURCES) == datasets.NAMES
    for name, urls in dl.URLS.items():
        assert urls == dict(datasets.SOURCES[name].urls)
    assert datasets.label_for("cifar10", str(DATA / "cifar10-jpeg.tar.gz")) == (
        "CIFAR-10 (JPEG copy)"
    )
    assert datasets.label_for("cifar10", "/x/cifar-10-python.tar.gz") == "CIFAR-10"
    assert datasets.label_for("mnist", ("a", "b")) == "MNIST"
    assert datasets.label_for("my-file") == "my-file"
    info = {d["name"]: d for d in datasets.describe(DATA)}
    jpeg = (DATA / "cifar10-jpeg.tar.gz").is_file()  # else the official release, downloaded
    assert info["cifar10"]["label"] == ("CIFAR-10 (JPEG copy)" if jpeg else "CIFAR-10")
    assert info["digits"]["label"] == "digits (scikit-learn)"


def test_a_new_data_set_is_one_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from psae.datasets._base import RawData

    def read(paths: list[Path]) -> RawData:
        a = np.loadtxt(paths[0], delimiter=",", ndmin=2)
        return RawData(a[:, :-1], a[:, -1].astype(np.int64), None, None, None, ["0", "1"])

    toy = Source(name="toy", label="Toy", read=read, files={"toy.txt": ("toy.txt",)})
    monkeypatch.setitem(datasets.SOURCES, "toy", toy)
    with pytest.raises(datasets.DatasetNotFoundError, match=r"(?s)'toy' not found.*toy\.txt"):
        datasets.load("toy", tmp_path, download=False)
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "toy.txt").write_text("1,2,0\n3,4,1\n")
    ds = datasets.load("toy", tmp_path, cache=tmp_path / "c")
    assert ds.name == "toy" and ds.y_train.tolist() == [0, 1] and ds.X_train.shape == (2, 2)
    toy_info = [d for d in datasets.describe(tmp_path) if d["name"] == "toy"]
    assert toy_info[0]["complete"] and toy_info[0]["present"] == ["toy.txt"]
    assert datasets.label_for("toy") == "Toy"
    # the record, not the module, is what load reads through
    boom = dataclasses.replace(toy, read=lambda paths: 1 / 0)
    monkeypatch.setitem(datasets.SOURCES, "toy", boom)
    with pytest.raises(ZeroDivisionError):
        datasets.load("toy", tmp_path, cache=False)


def test_notes_carry_their_kind_and_commands_print_only_plain_ones(tmp_path, capsys):
    """A flat square-image file without a test split: the two notes are flags the commands act
    on (carved test split, square drawings in the report), not text they print or parse."""
    from psae.cli import main
    from psae.datasets._base import has_note, told

    rng = np.random.default_rng(0)
    path = tmp_path / "squares.npz"
    np.savez(path, X=rng.random((60, 16)).astype(np.float32), y=np.arange(60) % 3)
    ds = datasets.load(path)
    assert ds.shape == (4, 4) and has_note(ds.notes, "square") and has_note(ds.notes, "no_test")
    assert told(ds.notes) == [] and any("no test split" in n for n in ds.notes)  # still text
    capsys.readouterr()
    assert main(["fit", "--data", str(path), "--out", str(tmp_path / "m"), "--n-components",
                 "6", "--epochs", "4", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "square images" not in err and "no test split in this source" not in err


# --- what users hand over (a helper's review of the user-data path, 2026-12-05) ---------------
def test_pandas_csv_layouts_load_as_the_frame_they_came_from(tmp_path: Path) -> None:
    import pandas as pd
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 6)).round(4), rng.integers(0, 3, 40)
    pd.DataFrame(X).to_csv(tmp_path / "a.csv", index=False)  # header 0,1,...,5
    pd.DataFrame(X).assign(label=y).to_csv(tmp_path / "b.csv")  # index column kept
    a, b = datasets.load(tmp_path / "a.csv"), datasets.load(tmp_path / "b.csv")
    np.testing.assert_allclose(a.X_train, X.astype(np.float32))
    assert any("pandas' default column names" in n for n in a.notes)
    np.testing.assert_allclose(b.X_train, X.astype(np.float32))
    np.testing.assert_array_equal(b.y_train, y)
    assert any("unnamed row index" in n for n in b.notes)


def test_a_missing_value_in_the_first_row_is_one_not_a_header(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text("1,,0\n3,4,1\n")
    with pytest.raises(DatasetError, match=r"line 1: a missing value \(empty cell\)"):
        datasets.load_arrays(p)


def test_a_column_of_sample_names_is_not_taken_for_labels(tmp_path: Path) -> None:
    p = tmp_path / "ids.csv"
    p.write_text("".join(f"img{i:03d},{i % 7},{i % 5}\n" for i in range(40)))
    with pytest.raises(DatasetError, match="if it names the samples, remove it"):
        datasets.load(p)
    q = tmp_path / "names.csv"
    q.write_text("".join(f"{i % 7},{i % 5},{'ab'[i % 2]}\n" for i in range(40)))
    assert datasets.load(q).classes == ["a", "b"]  # few values: class names


def test_labels_are_renumbered_to_their_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    p = tmp_path / "l.npz"
    np.savez(p, X=rng.random((20, 4)), y=np.array([1, 2] * 10))
    d = datasets.load(p)
    assert d.classes == ["1", "2"] and set(d.y_train) == {0, 1}  # no empty class 0
    np.savez(p, X=rng.random((20, 4)), y=np.arange(90_000, 90_020))
    assert len(datasets.load(p).classes) == 20  # IDs: 20 classes, not 90,020


def test_npz_images_and_unread_arrays_are_said(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    p = tmp_path / "i.npz"
    X = rng.random((20, 3, 8, 8)).astype(np.float32)  # PyTorch's channels first
    np.savez(p, X=X, labels=rng.integers(0, 2, 20))
    d = datasets.load(p, normalize=False)
    assert d.shape == (8, 8, 3) and d.y_train is None
    np.testing.assert_array_equal(d.X_train, np.moveaxis(X, 1, -1).reshape(20, -1))
    assert any("arrays not read: labels" in n for n in d.notes)
    np.savez(p, X=X[:, :1, :, :].transpose(0, 2, 3, 1))  # (N, H, W, 1)
    assert datasets.load(p).shape == (8, 8)


def test_a_grey_image_folder_is_one_channel(tmp_path: Path) -> None:
    from PIL import Image

    for split in ("train", "test"):
        for c in ("a", "b"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(2):
                px = (np.random.default_rng(i).random((8, 8)) * 255).astype(np.uint8)
                Image.fromarray(px, "L").save(tmp_path / split / c / f"{i}.png")
    d = datasets.load(tmp_path, cache=False)
    assert d.shape == (8, 8) and d.X_train.shape == (4, 64)
    assert any("grey" in n for n in d.notes)


def test_a_value_beyond_float32_is_an_error_not_inf(tmp_path: Path) -> None:
    X = np.ones((10, 3))
    X[4, 1] = 1e39
    np.savez(tmp_path / "big.npz", X=X)
    with pytest.raises(DatasetError, match="row 4 holds a value beyond float32's range"):
        datasets.load(tmp_path / "big.npz")


def test_evaluate_on_one_class_says_why_ca_is_missing() -> None:
    from types import SimpleNamespace

    from psae.cli.commands import _ca_inputs

    ds = SimpleNamespace(source="one.npz", X_train=np.zeros((4, 2)), y_train=np.zeros(4, int),
                         y_test=np.zeros(2, int))
    *_, why = _ca_inputs(ds, "test")
    assert "every training row of one.npz has the same label" in why


def test_an_image_swapped_in_at_its_old_size_and_mtime_is_decoded_again(tmp_path: Path) -> None:
    """The cache of a decoded image folder is keyed by each file's size, mtime, inode and
    ctime: an image replaced by one of the same byte size whose mtime is set back (``cp -p``,
    ``touch -r``, rsync -t) was served from the old decode."""
    import os

    from PIL import Image

    root = tmp_path / "imgs"
    for split in ("train", "test"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.full((4, 4), 10 * i, np.uint8), "L").save(
                    root / split / c / f"{i}.png", compress_level=0)  # size: any pixels
    cache = tmp_path / "cache"
    before = datasets.load(root, cache=cache).X_train.copy()
    f = root / "train" / "a" / "0.png"
    st = f.stat()
    new = tmp_path / "new.png"
    Image.fromarray(np.full((4, 4), 200, np.uint8), "L").save(new, compress_level=0)
    assert new.stat().st_size == st.st_size
    os.replace(new, f)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = datasets.load(root, cache=cache).X_train
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, datasets.load(root, cache=False).X_train)
