"""psae.datasets on the real data copies, plus the loading options and the public API."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest

from psae import datasets
from psae.datasets import Dataset, DatasetError, DatasetNotFoundError

DATA = Path(
    os.environ.get("PSAE_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)

# CIFAR-10 as the shared data holds it (the JPEG image-folder copy) or as a fresh machine gets it
# from `psae datasets --download cifar10` (the official python release)
CIFAR_SRC = next((p for p in (DATA / "cifar10-jpeg.tar.gz",
                              DATA / "cifar10" / "cifar-10-python.tar.gz",
                              DATA / "cifar-10-python.tar.gz") if p.is_file()),
                 DATA / "cifar10-jpeg.tar.gz")
CIFAR_JPEG = "jpeg" in CIFAR_SRC.name

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
CIFAR_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("psae-cache")


@pytest.fixture(scope="session")
def mnist(cache_dir: Path) -> Dataset:
    return datasets.load("mnist", DATA, cache=cache_dir, download=False)


@pytest.fixture(scope="session")
def cifar(cache_dir: Path) -> Dataset:
    return datasets.load("cifar10", DATA, cache=cache_dir, download=False)


def _check_arrays(ds: Dataset, n_train: int, n_test: int, d: int) -> None:
    assert ds.X_train.shape == (n_train, d) and ds.X_test is not None
    assert ds.X_test.shape == (n_test, d)
    for X in (ds.X_train, ds.X_test):
        assert X.dtype == np.float32 and X.flags.c_contiguous
    for y in (ds.y_train, ds.y_test):
        assert y is not None and y.dtype == np.int64 and y.flags.c_contiguous
    assert ds.y_train.shape == (n_train,) and ds.y_test.shape == (n_test,)


# ----------------------------------------------------------------------------- real data
def test_real_data_present() -> None:
    # the real copies must be there: fail (never skip) if they are not
    assert (DATA / "mnist" / "train-images-idx3-ubyte.gz").is_file(), DATA
    assert CIFAR_SRC.is_file(), DATA
    assert (DATA / "optdigits" / "optdigits.tra").is_file(), DATA


def test_mnist_real(mnist: Dataset) -> None:
    _check_arrays(mnist, 60_000, 10_000, 784)
    assert mnist.name == "mnist" and mnist.shape == (28, 28)
    assert mnist.classes == [str(i) for i in range(10)]
    assert np.bincount(mnist.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(mnist.y_test).tolist() == MNIST_TEST_COUNTS
    assert mnist.X_train.min() == 0 and mnist.X_train.max() == 255
    assert np.all(mnist.X_train == np.round(mnist.X_train))
    # the original order: the first training label is a 5, the first test label a 7
    assert mnist.y_train[:3].tolist() == [5, 0, 4] and mnist.y_test[:3].tolist() == [7, 2, 1]
    assert isinstance(mnist.source, tuple) and len(mnist.source) == 4
    assert all(Path(s).is_file() for s in mnist.source)
    assert mnist.notes == () and mnist.label_column is None


def test_mnist_cache_hit_is_fast_and_skips_decoding(
    mnist: Dataset, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*a: object, **k: object) -> None:
        raise AssertionError("decoder called on a cache hit")

    src = datasets.SOURCES["mnist"]
    monkeypatch.setitem(datasets.SOURCES, "mnist", dataclasses.replace(src, read=boom))
    monkeypatch.setattr(datasets.idx, "read_idx", boom)
    best = float("inf")
    for _ in range(3):  # best of 3: fresh 190 MB allocations are noisy on small VMs
        t = time.perf_counter()
        again = datasets.load("mnist", DATA, cache=cache_dir, download=False)
        best = min(best, time.perf_counter() - t)
    assert best < 1.0
    np.testing.assert_array_equal(again.X_train, mnist.X_train)
    np.testing.assert_array_equal(again.y_test, mnist.y_test)
    assert again.shape == (28, 28) and again.classes == mnist.classes


def test_cifar_real(cifar: Dataset, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check_arrays(cifar, 50_000, 10_000, 3072)
    assert cifar.shape == (32, 32, 3) and cifar.classes == CIFAR_CLASSES
    assert np.bincount(cifar.y_train).tolist() == [5000] * 10
    assert np.bincount(cifar.y_test).tolist() == [1000] * 10
    assert cifar.X_train.min() >= 0 and cifar.X_train.max() <= 255
    assert cifar.source == str(CIFAR_SRC)
    assert any("'CIFAR-10 (JPEG copy)'" in n for n in cifar.notes) == CIFAR_JPEG

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("decoder called on a cache hit")

    src = datasets.SOURCES["cifar10"]
    monkeypatch.setitem(datasets.SOURCES, "cifar10", dataclasses.replace(src, read=boom))
    t = time.perf_counter()
    again = datasets.load("cifar10", DATA, cache=cache_dir, download=False)
    # no JPEG decoding (~25 s); what is left is building 860 MB of float32
    assert time.perf_counter() - t < 10.0
    np.testing.assert_array_equal(again.X_test, cifar.X_test)


def test_cifar_grayscale(cifar: Dataset, cache_dir: Path) -> None:
    g = datasets.load("cifar10", DATA, cache=cache_dir, grayscale=True, limit=500)
    assert g.shape == (32, 32) and g.X_train.shape == (500, 1024)
    assert g.X_train.dtype == np.float32 and g.X_train.flags.c_contiguous
    full = datasets.load("cifar10", DATA, cache=cache_dir, limit=500)
    rgb = full.X_train.reshape(500, 1024, 3).astype(np.float64)
    lum = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(g.X_train, lum, rtol=1e-5, atol=1e-3)


def test_optdigits_real(cache_dir: Path) -> None:
    from sklearn.datasets import load_digits

    ds = datasets.load("optdigits", DATA, cache=cache_dir, download=False)
    _check_arrays(ds, 3823, 1797, 64)
    assert ds.shape == (8, 8) and ds.classes == [str(i) for i in range(10)]
    assert ds.X_train.min() == 0 and ds.X_train.max() == 16
    sk = load_digits()
    np.testing.assert_array_equal(ds.X_test, sk.data)
    np.testing.assert_array_equal(ds.y_test, sk.target)


def test_digits_needs_no_files(tmp_path: Path) -> None:
    ds = datasets.load("digits", tmp_path, download=False, cache=tmp_path / "c")
    _check_arrays(ds, 1347, 450, 64)
    assert ds.shape == (8, 8) and ds.source == "sklearn" and ds.name == "digits"
    assert np.bincount(ds.y_train).min() >= 130
    assert ds.X_train.max() == 16
    assert list(tmp_path.iterdir()) == []  # nothing written
    again = datasets.load("digits", tmp_path)
    np.testing.assert_array_equal(again.X_train, ds.X_train)  # fixed split


# ----------------------------------------------------------------------------- options
def test_limit_is_stratified_and_deterministic(mnist: Dataset, cache_dir: Path) -> None:
    ds = datasets.load("mnist", DATA, cache=cache_dir, limit=1000, seed=3)
    assert len(ds.X_train) == 1000
    assert len(ds.X_test) == math.ceil(1000 * 10_000 / 60_000)
    counts = np.bincount(ds.y_train, minlength=10)
    expected = np.array(MNIST_TRAIN_COUNTS) * 1000 / 60_000
    assert np.all(np.abs(counts - expected) <= 1)
    test_counts = np.bincount(ds.y_test, minlength=10)
    assert np.all(np.abs(test_counts - np.array(MNIST_TEST_COUNTS) * 167 / 10_000) <= 1)
    # rows are real rows of the full set, in the original order
    rows = {r.tobytes(): i for i, r in enumerate(mnist.X_train[:20000].astype(np.uint8))}
    idx = [rows.get(r.tobytes()) for r in ds.X_train.astype(np.uint8)]
    hit = [i for i in idx if i is not None]
    assert hit == sorted(hit) and len(hit) > 200
    same = datasets.load("mnist", DATA, cache=cache_dir, limit=1000, seed=3)
    np.testing.assert_array_equal(same.X_train, ds.X_train)
    other = datasets.load("mnist", DATA, cache=cache_dir, limit=1000, seed=4)
    assert not np.array_equal(other.X_train, ds.X_train)


def test_limit_small_and_large() -> None:
    ds = datasets.load("digits", limit=5)
    assert len(ds.X_train) == 5 and len(np.unique(ds.y_train)) == 5
    assert len(ds.X_test) == 10 and sorted(ds.y_test.tolist()) == list(range(10))
    full = datasets.load("digits", limit=10**6)
    assert len(full.X_train) == 1347 and len(full.X_test) == 450
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="limit"):
            datasets.load("digits", limit=bad)


def test_normalize(cache_dir: Path) -> None:
    ds = datasets.load("mnist", DATA, cache=cache_dir, normalize=True, limit=2000)
    for X in (ds.X_train, ds.X_test):
        assert X.dtype == np.float32 and X.flags.c_contiguous
        assert X.min() >= 0.1 - 1e-6 and X.max() <= 0.9 + 1e-6
    d = datasets.load("digits", normalize=True)
    assert d.X_train.min() >= 0.1 - 1e-6 and d.X_train.max() <= 0.9 + 1e-6
    np.testing.assert_allclose(d.X_train.mean(axis=0)[d.X_train.std(axis=0) > 0], 0.5, atol=0.05)


def test_grayscale_is_noop_for_gray_data() -> None:
    ds = datasets.load("digits", grayscale=True)
    assert ds.shape == (8, 8) and ds.X_train.shape[1] == 64


def test_dataset_is_frozen() -> None:
    ds = datasets.load("digits")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "x"  # type: ignore[misc]
    assert "digits" in repr(ds) and ds.n_classes == 10 and ds.n_features == 64


# ----------------------------------------------------------------------------- API
def test_names() -> None:
    assert datasets.NAMES == ("mnist", "cifar10", "optdigits", "digits")


def test_data_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSAE_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert datasets.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert datasets.data_root() == tmp_path / "env"
    monkeypatch.delenv("PSAE_DATA")
    import sys

    if sys.platform.startswith("linux"):
        assert datasets.data_root() == tmp_path / "xdg" / "psae"
        monkeypatch.delenv("XDG_DATA_HOME")
        assert datasets.data_root() == Path.home() / ".local" / "share" / "psae"
    else:
        assert datasets.data_root().name == "psae"


def test_load_uses_psae_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSAE_DATA", str(DATA))
    ds = datasets.load("optdigits", cache=tmp_path)
    assert Path(ds.source[0]).parent == DATA / "optdigits"


def test_describe(tmp_path: Path) -> None:
    info = {d["name"]: d for d in datasets.describe(DATA)}
    assert set(info) == set(datasets.NAMES)
    for name in ("mnist", "cifar10", "optdigits", "digits"):
        assert info[name]["complete"], name
    assert info["mnist"]["present"] == info["mnist"]["files"]
    assert len(info["mnist"]["paths"]) == 4
    assert "train-images-idx3-ubyte.gz" in info["mnist"]["files"]
    assert info["cifar10"]["present"] == [CIFAR_SRC.name]
    assert info["cifar10"]["paths"] == [str(CIFAR_SRC)]
    assert info["cifar10"]["source"] == [str(CIFAR_SRC)]
    assert info["optdigits"]["urls"][0].startswith("https://archive.ics.uci.edu/")
    assert str(DATA / "mnist") in info["mnist"]["looked_in"]
    empty = {d["name"]: d for d in datasets.describe(tmp_path)}
    assert not empty["mnist"]["complete"] and empty["mnist"]["present"] == []
    assert not empty["cifar10"]["complete"] and empty["digits"]["complete"]
    assert empty["cifar10"]["urls"] == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]


def test_missing_without_download_lists_files(tmp_path: Path) -> None:
    for name, files in [
        ("mnist", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]),
        ("optdigits", ["optdigits.tra", "optdigits.tes"]),
        ("cifar10", ["cifar-10-python.tar.gz"]),
    ]:
        with pytest.raises(DatasetNotFoundError) as ei:
            datasets.load(name, tmp_path, download=False)
        msg = str(ei.value)
        assert isinstance(ei.value, FileNotFoundError)
        for f in files:
            assert f in msg
        assert str(tmp_path / name) in msg
    assert list(tmp_path.iterdir()) == []


def test_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="neither a known data set"):
        datasets.load("no-such-set", tmp_path)
    with pytest.raises(ValueError, match="unsupported"):
        (tmp_path / "x.txt").write_text("1")
        datasets.load(tmp_path / "x.txt")


def test_errors_are_value_and_file_errors() -> None:
    assert issubclass(DatasetError, ValueError)
    assert issubclass(DatasetNotFoundError, FileNotFoundError)


def test_mnist_uncompressed_real_checksums(mnist: Dataset, tmp_path: Path) -> None:
    import gzip

    d = tmp_path / "mnist"
    d.mkdir()
    for f in ("train-images", "train-labels", "t10k-images", "t10k-labels"):
        name = f"{f}-idx{3 if 'images' in f else 1}-ubyte"
        (d / name).write_bytes(gzip.decompress((DATA / "mnist" / f"{name}.gz").read_bytes()))
    ds = datasets.load("mnist", tmp_path, cache=False, download=False)  # verified by sha256
    np.testing.assert_array_equal(ds.X_test, mnist.X_test)
    f = d / "t10k-labels-idx1-ubyte"
    b = bytearray(f.read_bytes())
    b[100] = (b[100] + 1) % 10
    f.write_bytes(bytes(b))
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte: checksum mismatch"):
        datasets.load("mnist", tmp_path, cache=False, download=False)
