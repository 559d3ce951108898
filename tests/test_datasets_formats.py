"""psae.datasets readers on small files written by the tests: good and corrupt."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from psae import datasets
from psae.datasets import DatasetError
from psae.datasets.cifar import CIFAR10_CLASSES, safe_load_pickle
from psae.datasets.idx import read_idx


# ----------------------------------------------------------------------------- helpers
def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    m = magic if magic is not None else (0x0800 | arr.ndim)
    head = m.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.tobytes()


def write_mnist(
    d: Path, n_train: int = 30, n_test: int = 10, gz: bool = True, seed: int = 0
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 10,
    }
    d.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        b = idx_bytes(a)
        if gz:
            (d / f"{name}.gz").write_bytes(gzip.compress(b))
        else:
            (d / name).write_bytes(b)
    return arrays


def cifar_batches(n_per_batch: int = 20, seed: int = 0, protocol: int = 2) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    out = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in np.arange(n_per_batch) % 10],
            b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(n_per_batch)],
        }
        out[name] = pickle.dumps(batch, protocol=protocol)
    meta = {
        b"num_cases_per_batch": n_per_batch,
        b"label_names": [c.encode() for c in CIFAR10_CLASSES],
        b"num_vis": 3072,
    }
    out["batches.meta"] = pickle.dumps(meta, protocol=protocol)
    return out


def write_tar(path: Path, members: dict[str, bytes], mode: str = "w:gz") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def png_bytes(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def image_members(
    classes: list[str], n: int = 3, size: tuple[int, int] = (8, 6), seed: int = 0
) -> tuple[dict[str, bytes], dict[str, list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    members: dict[str, bytes] = {}
    imgs: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    for split in ("train", "test"):
        for c in classes:
            for i in range(n):
                a = rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)
                members[f"{split}/{c}/{i:04d}.png"] = png_bytes(a)
                imgs[split].append(a)
    return members, imgs


def no_cache_entries(cache: Path) -> bool:
    if not cache.exists():
        return True
    return [p.name for p in cache.iterdir() if p.name != "hashes.json"] == []


# ----------------------------------------------------------------------------- MNIST / IDX
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_small(tmp_path: Path, gz: bool) -> None:
    arrays = write_mnist(tmp_path / "mnist", gz=gz)
    ds = datasets.load("mnist", tmp_path, cache=tmp_path / "c", verify=False, download=False)
    assert ds.X_train.shape == (30, 784) and ds.X_test.shape == (10, 784)
    np.testing.assert_array_equal(ds.X_train, arrays["train-images-idx3-ubyte"].reshape(30, -1))
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])


def test_mnist_files_directly_in_root(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    ds = datasets.load("mnist", tmp_path, cache=False, verify=False, download=False)
    assert len(ds.X_train) == 30
    # a directory path works too
    ds2 = datasets.load(tmp_path, cache=False, verify=False)
    np.testing.assert_array_equal(ds2.X_train, ds.X_train)


def test_mnist_checksum_mismatch(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist")
    cache = tmp_path / "c"
    with pytest.raises(DatasetError) as ei:
        datasets.load("mnist", tmp_path, cache=cache, download=False)
    msg = str(ei.value)
    assert "train-images-idx3-ubyte.gz" in msg and "checksum mismatch" in msg
    assert "db8f937d487057fb14a9f0fbe97f0bc8d311ab41b750d41e1ff37c43b9e55e19" in msg
    actual = (
        __import__("hashlib")
        .sha256((tmp_path / "mnist" / "train-images-idx3-ubyte.gz").read_bytes())
        .hexdigest()
    )
    assert actual in msg
    assert no_cache_entries(cache)


def test_idx_wrong_magic(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist")
    bad = idx_bytes(np.zeros((30, 28, 28), np.uint8), magic=2049)
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(bad))
    cache = tmp_path / "c"
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz.*wrong magic number 2049"):
        datasets.load("mnist", tmp_path, cache=cache, verify=False)
    assert no_cache_entries(cache)
    (tmp_path / "junk").write_bytes(b"\x12\x34\x56\x78" + bytes(20))
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(tmp_path / "junk")


def test_idx_length_mismatch(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist", gz=False)
    f = tmp_path / "mnist" / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-5])
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte: file length .* header"):
        datasets.load("mnist", tmp_path, cache=tmp_path / "c", verify=False)
    f.write_bytes(f.read_bytes()[:10])
    with pytest.raises(DatasetError, match="truncated IDX header"):
        read_idx(f)


def test_idx_truncated_gzip(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist")
    f = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    cache = tmp_path / "c"
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz: corrupt or truncated"):
        datasets.load("mnist", tmp_path, cache=cache, verify=False)
    assert no_cache_entries(cache)
    f.write_bytes(data[:2] + b"garbage" * 10)
    with pytest.raises(DatasetError, match="corrupt or truncated gzip"):
        read_idx(f)


def test_idx_count_mismatch(tmp_path: Path) -> None:
    write_mnist(tmp_path / "mnist")
    f = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    f.write_bytes(gzip.compress(idx_bytes(np.zeros(29, np.uint8))))
    with pytest.raises(DatasetError, match="holds 30 images but .* holds 29 labels"):
        datasets.load("mnist", tmp_path, cache=tmp_path / "c", verify=False)


# ----------------------------------------------------------------------------- CIFAR python
@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL])
def test_cifar_python_targz(tmp_path: Path, protocol: int) -> None:
    batches = cifar_batches(protocol=protocol)
    members = {f"cifar-10-batches-py/{k}": v for k, v in batches.items()}
    members["cifar-10-batches-py/readme.html"] = b"<html></html>"
    write_tar(tmp_path / "cifar10" / "cifar-10-python.tar.gz", members)
    ds = datasets.load("cifar10", tmp_path, cache=tmp_path / "c", verify=False, download=False)
    assert ds.X_train.shape == (100, 3072) and ds.X_test.shape == (20, 3072)
    assert ds.shape == (32, 32, 3) and ds.classes == CIFAR10_CLASSES
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    b1 = pickle.loads(batches["data_batch_1"])
    # CHW rows become HWC
    chw = b1[b"data"][3].reshape(3, 32, 32)
    np.testing.assert_array_equal(ds.X_train[3].reshape(32, 32, 3), chw.transpose(1, 2, 0))
    np.testing.assert_array_equal(ds.y_train[:20], b1[b"labels"])
    assert ds.source.endswith("cifar-10-python.tar.gz")
    # the official md5 is checked
    with pytest.raises(DatasetError, match="c58f30108f718f92721af3b95e74349a"):
        datasets.load("cifar10", tmp_path, cache=tmp_path / "c")


def test_cifar_python_extracted_dir_matches_png_folder(tmp_path: Path) -> None:
    batches = cifar_batches(n_per_batch=10)
    d = tmp_path / "cifar10" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for k, v in batches.items():
        (d / k).write_bytes(v)
    ds = datasets.load("cifar10", tmp_path, cache=False, download=False)  # no checksum known
    assert ds.X_train.shape == (50, 3072) and ds.source == str(d)
    gray = datasets.load("cifar10", tmp_path, cache=False, grayscale=True)
    assert gray.shape == (32, 32) and gray.X_train.shape == (50, 1024)
    # the same images written as PNG in an image folder decode to the same rows
    members: dict[str, bytes] = {}
    for split, names in (
        ("train", [f"data_batch_{i}" for i in range(1, 6)]),
        ("test", ["test_batch"]),
    ):
        for bn in names:
            b = pickle.loads(batches[bn])
            for i, (row, lab) in enumerate(zip(b[b"data"], b[b"labels"], strict=True)):
                img = row.reshape(3, 32, 32).transpose(1, 2, 0)
                members[f"{split}/{CIFAR10_CLASSES[lab]}/{bn}_{i:03d}.png"] = png_bytes(img)
    folder = datasets.load(write_tar(tmp_path / "f.tar", members, "w"), cache=False)
    assert folder.classes == CIFAR10_CLASSES
    key = lambda X, y: sorted(zip(y.tolist(), map(bytes, X.astype(np.uint8)), strict=True))  # noqa: E731
    assert key(folder.X_train, folder.y_train) == key(ds.X_train, ds.y_train)
    assert key(folder.X_test, folder.y_test) == key(ds.X_test, ds.y_test)
    # a directory path works as well
    ds2 = datasets.load(d, cache=False)
    np.testing.assert_array_equal(ds2.X_train, ds.X_train)


def test_cifar_python_missing_batch_and_truncated(tmp_path: Path) -> None:
    batches = cifar_batches()
    del batches["data_batch_3"]
    p = write_tar(
        tmp_path / "a" / "cifar-10-python.tar.gz",
        {f"cifar-10-batches-py/{k}": v for k, v in batches.items()},
    )
    with pytest.raises(DatasetError, match="missing CIFAR-10 batch file.*data_batch_3"):
        datasets.load(p, cache=False, verify=False)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    cache = tmp_path / "c"
    with pytest.raises(DatasetError, match=r"cifar-10-python\.tar\.gz: corrupt or truncated"):
        datasets.load(p, cache=cache, verify=False)
    assert no_cache_entries(cache)


class Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # type: ignore[override]
        return (os.system, (f"echo pwned > {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    batches = cifar_batches()
    batches["data_batch_2"] = pickle.dumps({b"data": Evil(marker), b"labels": [0]}, protocol=2)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for k, v in batches.items():
        (d / k).write_bytes(v)
    with pytest.raises(DatasetError) as ei:
        datasets.load(d, cache=tmp_path / "c")
    msg = str(ei.value)
    assert "data_batch_2" in msg and "forbidden global" in msg and "system" in msg
    assert not marker.exists()
    assert no_cache_entries(tmp_path / "c")
    # direct use, and other protocols
    for proto in (0, 2, pickle.HIGHEST_PROTOCOL):
        with pytest.raises(DatasetError, match="forbidden global"):
            safe_load_pickle(pickle.dumps(Evil(marker), protocol=proto), "x.pkl")
    assert not marker.exists()


@pytest.mark.parametrize(
    "obj, what",
    [
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": (1,)}, "tuple"),
        ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [1.5]}, "float"),
        ({b"data": np.array([None], dtype=object), b"labels": [1]}, "object array"),
        ({b"data": {1, 2}, b"labels": [1]}, "set"),
        ([1, 2, 3], "expected a dict"),
        (__import__("collections").OrderedDict(a=1), "forbidden global"),
    ],
)
def test_restricted_unpickler_refuses_other_values(obj: object, what: str) -> None:
    with pytest.raises(DatasetError, match=what):
        safe_load_pickle(pickle.dumps(obj, protocol=2), "batch.pkl")


def test_cifar_batch_shape_checks(tmp_path: Path) -> None:
    batches = cifar_batches()
    batches["test_batch"] = pickle.dumps(
        {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2]}
    )
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for k, v in batches.items():
        (d / k).write_bytes(v)
    with pytest.raises(DatasetError, match="test_batch: 4 images but 3 labels"):
        datasets.load(d, cache=False)


# ----------------------------------------------------------------------------- image folders
@pytest.mark.parametrize("kind", ["dir", "tar", "tar.gz", "tgz", "zip", "prefixed.tar.gz"])
def test_image_folder_forms(tmp_path: Path, kind: str) -> None:
    classes = ["zebra", "apple", "mango"]
    members, imgs = image_members(classes)
    if kind == "dir":
        for name, data in members.items():
            p = tmp_path / "folder" / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        path = tmp_path / "folder"
    elif kind == "zip":
        path = tmp_path / "folder.zip"
        with zipfile.ZipFile(path, "w") as z:
            for name, data in members.items():
                z.writestr(name, data)
    elif kind == "prefixed.tar.gz":
        path = write_tar(tmp_path / "x.tar.gz", {f"top/{k}": v for k, v in members.items()})
    else:
        path = write_tar(tmp_path / f"folder.{kind}", members, "w" if kind == "tar" else "w:gz")
    ds = datasets.load(path, cache=tmp_path / "c")
    assert ds.classes == sorted(classes)
    assert ds.shape == (8, 6, 3) and ds.X_train.shape == (9, 144) and ds.X_test.shape == (9, 144)
    # sorted by class then file name: apple (index 1 in write order) comes first
    np.testing.assert_array_equal(ds.X_train[0].reshape(8, 6, 3), imgs["train"][3])
    assert ds.y_train.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    g = datasets.load(path, cache=tmp_path / "c", grayscale=True)
    assert g.shape == (8, 6) and g.X_train.shape == (9, 48)


def test_image_folder_cifar_order_and_jpeg(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    members = {}
    for c in sorted(CIFAR10_CLASSES):
        a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        members[f"train/{c}/0.jpg"] = png_bytes(a, "JPEG")
        gray = rng.integers(0, 256, (32, 32), dtype=np.uint8)  # grayscale file -> RGB
        members[f"test/{c}/0.jpeg"] = png_bytes(gray, "JPEG")
    path = write_tar(tmp_path / "cifar10" / "cifar10-jpeg.tar.gz", members)
    ds = datasets.load("cifar10", tmp_path, cache=False, verify=False)
    assert ds.classes == CIFAR10_CLASSES and ds.y_train.tolist() == list(range(10))
    assert ds.shape == (32, 32, 3) and ds.source == str(path)
    t = ds.X_test.reshape(10, 1024, 3)
    np.testing.assert_array_equal(t[..., 0], t[..., 1])
    with pytest.raises(DatasetError, match=r"cifar10-jpeg\.tar\.gz: checksum mismatch"):
        datasets.load("cifar10", tmp_path, cache=False)


def test_image_folder_mixed_sizes(tmp_path: Path) -> None:
    members, _ = image_members(["a", "b"])
    members["train/b/9999.png"] = png_bytes(np.zeros((5, 5, 3), np.uint8))
    p = write_tar(tmp_path / "m.tar.gz", members)
    cache = tmp_path / "c"
    with pytest.raises(DatasetError, match=r"m\.tar\.gz:train/b/9999\.png.*mixed image sizes"):
        datasets.load(p, cache=cache)
    assert no_cache_entries(cache)


def test_image_folder_empty_class(tmp_path: Path) -> None:
    members, _ = image_members(["a", "b"])
    root = tmp_path / "f"
    for name, data in members.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "train" / "c").mkdir()
    with pytest.raises(DatasetError, match="class folder.*with no .*image: train/c"):
        datasets.load(root, cache=False)
    # same inside a tar (directory member with no files)
    p = tmp_path / "e.tar"
    with tarfile.open(p, "w") as tar:
        tar.add(root, arcname=".")
    with pytest.raises(DatasetError, match=r"e\.tar: class folder.*with no .*train/c"):
        datasets.load(p, cache=False)


def test_image_folder_corrupt(tmp_path: Path) -> None:
    members, _ = image_members(["a", "b"])
    p = write_tar(tmp_path / "t.tar.gz", members)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(DatasetError, match=r"t\.tar\.gz: corrupt or truncated archive"):
        datasets.load(p, cache=tmp_path / "c")
    assert no_cache_entries(tmp_path / "c")
    z = tmp_path / "z.zip"
    z.write_bytes(b"PK\x03\x04 not really a zip" * 10)
    with pytest.raises(DatasetError, match=r"z\.zip: corrupt"):
        datasets.load(z, cache=False)
    members["train/a/bad.png"] = b"\x89PNG\r\n\x1a\n not a png"
    p2 = write_tar(tmp_path / "b.tar", members, "w")
    with pytest.raises(DatasetError, match=r"b\.tar:train/a/bad\.png: cannot decode image"):
        datasets.load(p2, cache=False)
    empty = write_tar(tmp_path / "empty.tar", {"readme.txt": b"hi"}, "w")
    with pytest.raises(DatasetError, match="no images found"):
        datasets.load(empty, cache=False)


def test_image_folder_without_test_split(tmp_path: Path) -> None:
    members, _ = image_members(["a", "b"])
    p = write_tar(
        tmp_path / "t.tar", {k: v for k, v in members.items() if k.startswith("train")}, "w"
    )
    ds = datasets.load(p, cache=False, limit=4)
    assert ds.X_test is None and ds.y_test is None and len(ds.X_train) == 4


# ----------------------------------------------------------------------------- optdigits
def test_optdigits_small_and_corrupt(tmp_path: Path) -> None:
    d = tmp_path / "optdigits"
    d.mkdir()
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.integers(0, 17, (20, 64)), np.arange(20)[:, None] % 10], axis=1)
    text = "\n".join(",".join(map(str, r)) for r in rows) + "\n"
    (d / "optdigits.tra").write_text(text)
    (d / "optdigits.tes").write_text(text)
    ds = datasets.load("optdigits", tmp_path, cache=False, verify=False)
    np.testing.assert_array_equal(ds.X_train, rows[:, :64])
    (d / "optdigits.tes").write_text(text + "1,2,3\n")
    with pytest.raises(DatasetError, match=r"optdigits\.tes, line 21: 3 values, expected 65"):
        datasets.load("optdigits", tmp_path, cache=False, verify=False)
    (d / "optdigits.tes").write_text(text.replace(",", ";", 1))
    with pytest.raises(DatasetError, match=r"optdigits\.tes, line 1"):
        datasets.load("optdigits", tmp_path, cache=False, verify=False)
    with pytest.raises(DatasetError, match=r"optdigits\.tra: checksum mismatch"):
        datasets.load("optdigits", tmp_path, cache=False)


# ----------------------------------------------------------------------------- arrays
def test_npz_forms(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = np.arange(40) % 4
    np.savez(tmp_path / "a.npz", X=X, y=y)
    ds = datasets.load_arrays(tmp_path / "a.npz")
    assert ds.X_train.dtype == np.float32 and ds.X_train.shape == (40, 5)
    assert ds.y_train.dtype == np.int64 and ds.X_test is None and ds.shape is None
    assert ds.classes == ["0", "1", "2", "3"] and ds.name == "a"
    np.savez(tmp_path / "b.npz", X_train=X[:30].reshape(30, 5, 1), y_train=y[:30],
             X_test=X[30:].reshape(10, 5, 1), y_test=y[30:])  # fmt: skip
    ds = datasets.load(tmp_path / "b.npz", limit=8, normalize=True)
    assert ds.shape == (5, 1) and ds.X_train.shape == (8, 5) and ds.X_test.shape == (4, 5)
    assert ds.X_train.min() >= 0.1 - 1e-6 and ds.X_train.max() <= 0.9 + 1e-6
    np.savez(tmp_path / "c.npz", X=X)
    ds = datasets.load_arrays(tmp_path / "c.npz", limit=7)
    assert ds.y_train is None and ds.classes is None and ds.X_train.shape == (7, 5)
    np.savez(tmp_path / "d.npz", X=X, y=np.array(["cat", "dog"] * 20))
    ds = datasets.load_arrays(tmp_path / "d.npz")
    assert ds.classes == ["cat", "dog"] and ds.y_train[:3].tolist() == [0, 1, 0]
    np.savez(tmp_path / "e.npz", Z=X)
    with pytest.raises(DatasetError, match=r"e\.npz: expected arrays"):
        datasets.load_arrays(tmp_path / "e.npz")
    np.savez(tmp_path / "f.npz", X=X, y=y[:-1])
    with pytest.raises(DatasetError, match=r"f\.npz: 40 train samples but 39 labels"):
        datasets.load_arrays(tmp_path / "f.npz")
    (tmp_path / "g.npz").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"g\.npz: cannot read"):
        datasets.load_arrays(tmp_path / "g.npz")


def test_csv(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,b,label\n1,2,0\n3,4,1\n5,6.5,1\n")
    ds = datasets.load_arrays(p, label_column=None)
    assert ds.X_train.shape == (3, 3) and ds.y_train is None and ds.X_test is None
    ds = datasets.load_arrays(p, label_column=-1)
    np.testing.assert_array_equal(ds.X_train, [[1, 2], [3, 4], [5, 6.5]])
    assert ds.y_train.tolist() == [0, 1, 1] and ds.X_train.dtype == np.float32
    ds = datasets.load(p, label_column=0)
    assert ds.y_train.tolist() == [0, 1, 2] and ds.classes == ["1", "3", "5"]
    assert ds.X_train.shape == (3, 2)
    q = tmp_path / "noheader.csv"
    q.write_text("1,2\n3,4\n")
    assert datasets.load_arrays(q).X_train.shape == (2, 2)
    q.write_text("1,2\n3,x\n")
    with pytest.raises(DatasetError, match=r"noheader\.csv, line 2: non-numeric"):
        datasets.load_arrays(q)
    q.write_text("1,2\n3\n")
    with pytest.raises(DatasetError, match=r"line 2: 1 columns, expected 2"):
        datasets.load_arrays(q)
    with pytest.raises(DatasetError, match="label_column 5 out of range"):
        datasets.load_arrays(p, label_column=5)


NUMERIC_CSVS = {  # every cell below the header a finite number: numpy's parser reads them
    "plain": "1,2,0\n3,4,1\n5,6.5,1\n",
    "header": "a,b,label\n1,2,0\n3,4,1\n5,6.5,1\n",
    "quoted": '"x","y","class"\n"1","2","3"\n"4","5","6"\n',
    "spaces_blank_lines_crlf": "\ufeffp, q ,target\r\n\r\n 1 , 2 ,7\r\n3,4,9\r\n",
    "pandas_index": ",0,1,label\n0,1.5,2,1\n1,3,4,0\n2,5,6,1\n",
    "pandas_index_not_unique": ",f,label\n0,1.5,1\n0,3,0\n",
    "header_after_blank_lines": "\n\nu,v\n1,2\n3,4\n",
    "one_row": "1,2,3\n",
    "unnamed_lone_column": "Unnamed: 0\n1\n2\n3\n",  # the data, not an index
}
OTHER_CSVS = {  # what only the general reader reads or explains
    "class_names": "1,2,cat\n3,4,dog\n",
    "missing": "a,b\n1,\n3,4\n",
    "nan": "a,b\n1,nan\n3,4\n",
    "ragged": "1,2\n3\n",
    "whitespace_line": "1,2\n  \n3,4\n",
    "underscore_number": "1_0,2\n3,4\n",
    "cut_off_in_a_quote": 'a,b\n1,2\n4,"5\n',  # numpy's parser read it as 5
    "header_only": "a,b\n\n",
    "index_column_with_inf": ",a,b\n0,1,2\ninf,3,4\n",  # was a raw OverflowError
    "index_column_with_nan": ",a,b\n0,1,2\nnan,3,4\n",  # was a raw ValueError
}


@pytest.mark.parametrize("name", sorted(NUMERIC_CSVS) + sorted(OTHER_CSVS))
@pytest.mark.parametrize("label", ["auto", None, 0, -1])
def test_csv_numeric_fast_path_reads_as_the_general_reader(tmp_path: Path, name, label) -> None:
    """All-numeric files take numpy's parser (peak memory about the float64 array's, against
    30x the data for lists of strings): same arrays, labels, classes and notes, or the same
    error, as the line-by-line reader; anything else falls back to it."""
    from psae.datasets import csvtext

    p = tmp_path / f"{name}.csv"
    p.write_bytes({**NUMERIC_CSVS, **OTHER_CSVS}[name].encode())
    assert (csvtext._read_numeric(p, None) is None) == (name in OTHER_CSVS)

    def outcome(read):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # numpy's "no data" warning stays inside
                return read(p, label)
        except DatasetError as e:
            return str(e)

    fast, general = outcome(csvtext.read_csv), outcome(csvtext._read_general)
    if isinstance(general, str):
        assert fast == general
        return
    for field in ("X_train", "y_train"):
        a, b = getattr(fast, field), getattr(general, field)
        assert (a is None) == (b is None)
        if a is not None:
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    assert (fast.classes, fast.label_column, fast.notes) == \
        (general.classes, general.label_column, general.notes)
