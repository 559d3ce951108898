"""Model directories: ``model.safetensors`` (weights) + ``config.json`` (parameters, version).

No pickle anywhere. Writes are atomic: a new directory is built beside the target and swapped in,
so a failed save leaves an existing model directory as it was. Loading checks the format
version, the weights file's SHA-256 and every tensor's shape.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from ._version import __version__

__all__ = ["save_model", "load_model", "ModelFormatError", "FORMAT_VERSION", "atomic_write"]

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
NORMALIZER = "normalizer.safetensors"


class ModelFormatError(ValueError):
    """A model directory is missing, damaged, altered or from an incompatible version."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _replace_dir(tmp: Path, target: Path) -> None:
    """Swap the finished directory ``tmp`` into ``target``, keeping the old one until done."""
    old = None
    if target.exists():
        if not target.is_dir():
            raise ModelFormatError(f"{target} exists and is not a directory")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def save_model(model, path, normalizer=None, extra: dict | None = None) -> Path:
    """Save a fitted :class:`~psae.SparseAutoencoder` (and optionally its fitted
    :class:`~psae.Normalizer`) to the directory ``path``."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, "encoder_weight_")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        tensors = {
            "encoder.weight": model.encoder_weight_,
            "encoder.bias": model.encoder_bias_,
            "decoder.weight": model.decoder_weight_,
            "decoder.bias": model.decoder_bias_,
        }
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, tmp / WEIGHTS)
        config = {
            "format": "psae.SparseAutoencoder",
            "format_version": FORMAT_VERSION,
            "psae_version": __version__,
            "params": _jsonable(model.get_params()),
            "n_features_in": int(model.n_features_in_),
            "weights_sha256": _sha256(tmp / WEIGHTS),
            "history": getattr(model, "history_", []),
            "stages": getattr(model, "stages_", []),
            "fit_time": getattr(model, "fit_time_", None),
        }
        if hasattr(model, "feature_names_in_"):
            config["feature_names_in"] = [str(n) for n in model.feature_names_in_]
        if normalizer is not None:
            save_file({"mean": normalizer.mean_, "scale": normalizer.scale_}, tmp / NORMALIZER)
            config["normalizer"] = {
                "params": normalizer.get_params(),
                "sha256": _sha256(tmp / NORMALIZER),
            }
        if extra:
            config["extra"] = extra
        (tmp / CONFIG).write_text(json.dumps(config, indent=1))
        for f in tmp.iterdir():  # on disk before the swap, so a crash cannot leave empty files
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o755)
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _jsonable(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, np.integer | np.floating):
            v = v.item()
        if not isinstance(v, str | int | float | bool | list | type(None)):
            v = None if k == "random_state" else str(v)
        out[k] = v
    return out


def _read_config(path: Path) -> dict:
    cfg_path = path / CONFIG
    if not path.is_dir():
        raise ModelFormatError(f"{path}: no such model directory")
    if not cfg_path.is_file():
        raise ModelFormatError(f"{cfg_path}: missing model config")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFormatError(f"{cfg_path}: not valid JSON ({e})") from e
    if not isinstance(config, dict) or config.get("format") != "psae.SparseAutoencoder":
        raise ModelFormatError(f"{cfg_path}: not a psae model config")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"{cfg_path}: model format version {version!r} (written by psae "
            f"{config.get('psae_version', '?')}) is not supported by psae {__version__}, which "
            f"reads format version {FORMAT_VERSION}"
        )
    return config


def _read_tensors(file: Path, sha256: str | None) -> dict[str, np.ndarray]:
    if not file.is_file():
        raise ModelFormatError(f"{file}: missing weights file")
    actual = _sha256(file)
    if sha256 != actual:
        raise ModelFormatError(
            f"{file}: checksum mismatch (config says {sha256}, file has {actual}); the file is "
            "truncated or was altered"
        )
    try:
        return load_file(file)
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFormatError(f"{file}: unreadable safetensors file ({e})") from e


def load_model(path, with_normalizer: bool = False, device: str | None = None):
    """Load a model directory; with ``with_normalizer`` return ``(model, normalizer or None)``.

    ``device`` overrides the saved one; a model saved on a CUDA device loads with ``"auto"``
    where CUDA is not available.
    """
    from .estimator import SparseAutoencoder
    from .preprocessing import Normalizer

    path = Path(path)
    config = _read_config(path)
    t = _read_tensors(path / WEIGHTS, config.get("weights_sha256"))
    params = dict(config["params"])
    if isinstance(params.get("sigmas"), list):
        params["sigmas"] = tuple(params["sigmas"])
    if isinstance(params.get("epochs"), list):
        params["epochs"] = tuple(params["epochs"])
    if device is not None:
        params["device"] = device
    elif str(params.get("device", "auto")).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            params["device"] = "auto"
    try:
        model = SparseAutoencoder(**params)
    except TypeError as e:
        raise ModelFormatError(f"{path / CONFIG}: unexpected parameters ({e})") from e
    D, M = int(config["n_features_in"]), int(params["n_components"])
    expected = {"encoder.weight": (M, D), "encoder.bias": (M,),
                "decoder.weight": (D, M), "decoder.bias": (D,)}
    for name, shape in expected.items():
        if name not in t or tuple(t[name].shape) != shape:
            got = None if name not in t else tuple(t[name].shape)
            raise ModelFormatError(f"{path / WEIGHTS}: tensor {name!r} has shape {got}, "
                                   f"expected {shape}")
    model.encoder_weight_ = t["encoder.weight"]
    model.encoder_bias_ = t["encoder.bias"]
    model.decoder_weight_ = t["decoder.weight"]
    model.decoder_bias_ = t["decoder.bias"]
    model.n_features_in_ = D
    if "feature_names_in" in config:
        model.feature_names_in_ = np.asarray(config["feature_names_in"], dtype=object)
    model.history_ = config.get("history", [])
    model.stages_ = config.get("stages", [])
    model.n_iter_ = len(model.history_)
    if config.get("fit_time") is not None:
        model.fit_time_ = config["fit_time"]
    if not with_normalizer:
        return model
    normalizer = None
    if "normalizer" in config:
        nt = _read_tensors(path / NORMALIZER, config["normalizer"].get("sha256"))
        normalizer = Normalizer(**config["normalizer"]["params"])
        normalizer.mean_, normalizer.scale_ = nt["mean"], nt["scale"]
        normalizer.n_features_in_ = D
    return model, normalizer
