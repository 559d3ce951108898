"""CIFAR-10: the canonical python release (pickled batches) or an image-folder copy of it."""

from __future__ import annotations

from pathlib import Path

from ._base import RawData
from .cifar import read_cifar_python
from .imagefolder import read_image_folder
from .source import Source

__all__ = ["JPEG_ARCHIVE", "PYTHON_ARCHIVE", "SOURCE", "find_cifar10", "read_cifar10"]

PYTHON_ARCHIVE = "cifar-10-python.tar.gz"
BATCHES_DIR = "cifar-10-batches-py"
#: the image-folder copy in the shared data (pixels went through JPEG)
JPEG_ARCHIVE = "cifar10-jpeg.tar.gz"
_LABEL = "CIFAR-10"


def _is_python(path: Path) -> bool:
    if path.is_dir():
        return (path / "data_batch_1").is_file()
    return path.name.startswith("cifar-10-python")


def find_cifar10(dirs: list[Path]) -> list[Path] | None:
    """The first CIFAR-10 source found: batches, python archive, JPEG archive, image folder.

    A bare ``train/`` folder counts only in ``root/cifar10/``, not in the shared data root.
    """
    for i, d in enumerate(dirs):
        if (d / BATCHES_DIR / "data_batch_1").is_file():
            return [d / BATCHES_DIR]
        for f in (PYTHON_ARCHIVE, JPEG_ARCHIVE):
            if (d / f).is_file():
                return [d / f]
        if i < len(dirs) - 1 and (d / "train").is_dir():
            return [d]
    return None


def _claim(path: Path) -> list[Path] | None:
    return [path] if _is_python(path) or path.name == JPEG_ARCHIVE else None


def read_cifar10(paths: list[Path]) -> RawData:
    """Decode what :func:`find_cifar10` found: pickled batches, or an image folder/archive."""
    path = paths[0]
    return read_cifar_python(path) if _is_python(path) else read_image_folder(path)


def _label_of(paths: list[Path]) -> str:
    if not paths or _is_python(paths[0]):
        return _LABEL
    if paths[0].name == JPEG_ARCHIVE:
        return f"{_LABEL} (JPEG copy)"
    return f"{_LABEL} (image folder)"


def _notes_of(paths: list[Path]) -> tuple[str, ...]:
    if paths and paths[0].name == JPEG_ARCHIVE:
        return (
            "pixels went through JPEG (quality about 75) and differ slightly from the "
            f"original release: report results as {_label_of(paths)!r}",
        )
    return ()


SOURCE = Source(
    name="cifar10",
    label=_LABEL,
    read=read_cifar10,
    finder=find_cifar10,
    files={f: (f,) for f in (PYTHON_ARCHIVE, BATCHES_DIR, JPEG_ARCHIVE)},
    urls={PYTHON_ARCHIVE: "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"},
    expected=(
        f"{PYTHON_ARCHIVE} (or its extracted {BATCHES_DIR}/)",
        f"{JPEG_ARCHIVE} (or any train/<class>/*.jpg, test/<class>/*.jpg image folder)",
    ),
    put="one of these files",
    claim=_claim,
    label_of=_label_of,
    notes_of=_notes_of,
    checksums={
        # the official python release (md5 from the CIFAR page) and the JPEG image-folder copy
        PYTHON_ARCHIVE: (("md5", "c58f30108f718f92721af3b95e74349a"),),
        JPEG_ARCHIVE: (
            ("sha256", "0bfcb68717a0ecb0d51ed61034906a773d48d424d94b766a46d7d1c55702a4d9"),),
    },
    settings={
        "paper": {
            "full": {"n_components": 400, "epochs": 6, "n_val": 10000, "grid_train": 10000,
                     "note": "colour, 3,072 inputs; grid points fitted on 10,000 of the 40,000 "
                             "non-validation images; final fits use all 50,000"},
            "quick": {"n_components": 200, "epochs": 6, "n_val": 1000, "train_limit": 4000,
                      "test_limit": 1000},
        },
        "matched": {
            # a cap of 50 stopped TopK, BatchTopK and the JumpReLUs at L0 50, and RAE, with
            # their validation RE still falling 0.1-0.4 % an epoch; TopK at 50 stops by the rule
            # after 64 epochs (seed 0)
            "full": {"n_components": 400, "targets": (10, 25, 50), "epochs": 10,
                     "max_epochs": 100, "explore_target": 25,
                     "note": "colour, 3,072 inputs, 400 units (the paper protocol's size)"},
            "quick": {"n_components": 200, "targets": (10, 25), "epochs": 4, "max_epochs": 4,
                      "explore_target": 25},
        },
    },
)
