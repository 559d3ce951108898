"""A fitted :class:`~psae.SparseAutoencoder` as ``(config, arrays)`` and back: what
:mod:`psae.persistence` writes and reads, with every field and tensor of a read model checked
before it is used (a damaged or altered file is a :class:`ModelFormatError`, not NaN codes)."""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from . import encode, persistence
from .errors import ModelFormatError, ParameterError
from .params import resolve_device, validate

__all__ = ["WEIGHTS", "state", "from_state", "save", "load"]

CODE_PREFIX = "code."
WEIGHTS = ("encoder_weight_", "encoder_bias_", "decoder_weight_", "decoder_bias_")
"""The fitted weight attributes, in the order of their tensors (:data:`TENSORS`)."""
TENSORS = ("encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias")

_TYPE_NAMES = {numbers.Integral: "an integer", numbers.Real: "a number", str: "a string",
               list: "a list", dict: "an object"}


def state(est) -> tuple[dict, dict[str, np.ndarray]]:
    """The fitted ``est`` as ``(config, arrays)``: what :mod:`psae.persistence` writes."""
    check_is_fitted(est, "encoder_weight_")
    est._check_layout()  # the config must describe these weights
    arrays = {t: np.ascontiguousarray(getattr(est, a))
              for t, a in zip(TENSORS, WEIGHTS, strict=True)}
    for k, v in (getattr(est, "code_state_", None) or {}).items():
        arrays[CODE_PREFIX + k] = np.ascontiguousarray(v)
    params = {k: v.tolist() if isinstance(v, np.ndarray) else v  # sigmas as an array
              for k, v in est.get_params().items()}
    config = {"params": persistence.jsonable(params),
              "n_features_in": int(est.n_features_in_),
              "history": getattr(est, "history_", []),
              "stages": getattr(est, "stages_", []),
              "fit_time": getattr(est, "fit_time_", None),
              "precision": getattr(est, "precision_", None),
              "dead_fraction": getattr(est, "dead_fraction_", None),
              "batch_size": getattr(est, "batch_size_", None),
              "stopped_early": getattr(est, "stopped_early_", None),
              "penalty_weight": getattr(est, "penalty_weight_", None),
              "inference_threshold": getattr(est, "inference_threshold_", None)}
    if hasattr(est, "feature_names_in_"):
        config["feature_names_in"] = [str(n) for n in est.feature_names_in_]
    # what load would refuse is refused before it replaces a good model on disk
    check_arrays(est, arrays, int(est.n_features_in_), "the model to save")
    return config, arrays


def from_state(cls, config: dict, arrays: dict[str, np.ndarray], where: str = "model",
               device: str | None = None):
    """A fitted ``cls`` rebuilt from what :func:`state` returned. Everything is checked
    first, as the estimator checks its own parameters: each config field's type, the
    parameters, that the tensors are exactly those the penalty's model has (names, shapes,
    dtypes) and that they are finite."""
    config_file, weights_file = model_files(where)
    if not isinstance(config, dict):
        raise ModelFormatError(f"{config_file}: the config is not a JSON object")
    params = config_params(config, config_file, cls)
    if device is not None:  # asked for now: checked now, not at the first transform
        resolve_device(device)
        params["device"] = device
    elif str(params.get("device", "auto")).startswith("cuda") \
            and not torch.cuda.is_available():
        params["device"] = "auto"
    model = cls(**params)
    try:
        validate(model, loading=True)
    except ParameterError as e:
        raise ModelFormatError(f"{config_file}: field 'params' holds a value psae cannot "
                               f"use: {e}") from e
    D = field(config, "n_features_in", numbers.Integral, config_file, required=True)
    if D < 1:
        raise ModelFormatError(f"{config_file}: field 'n_features_in' must be >= 1, got {D}")
    check_arrays(model, arrays, int(D), weights_file)
    load_fields(model, config, int(D), config_file)
    for t, a in zip(TENSORS, WEIGHTS, strict=True):
        setattr(model, a, arrays[t])
    model.code_state_ = {k[len(CODE_PREFIX):]: v for k, v in arrays.items()
                         if k.startswith(CODE_PREFIX)}
    encode.code_layer(model)  # a code state that does not fit the model fails here, not later
    model._fitted_layout = model._layout()
    return model


def model_files(where: str) -> tuple[str, str]:
    """``(config file, weights file)`` to name in load errors (``where``: the model directory
    or its config file)."""
    path = Path(where)
    if path.name == persistence.CONFIG:
        return str(path), str(path.with_name(persistence.WEIGHTS))
    if path.is_dir():
        return str(path / persistence.CONFIG), str(path / persistence.WEIGHTS)
    return where, where


def field(config: dict, name: str, kind: type, file: str, required: bool = False):
    """``config[name]`` when it is of ``kind`` (None where absent or null, unless
    ``required``); else a :class:`ModelFormatError` naming the field."""
    value = config.get(name)
    if value is None and not required:
        return None
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if kind is numbers.Real and ok:
        ok = bool(np.isfinite(value))
    if not ok:
        got = "missing" if name not in config else f"{value!r}"
        raise ModelFormatError(f"{file}: field {name!r} must be {_TYPE_NAMES[kind]}, got {got}; "
                               "the config is damaged or was altered")
    return value


def config_params(config: dict, file: str, cls) -> dict:
    """The estimator parameters of a saved config (JSON lists back to tuples), names checked
    against those of ``cls``."""
    params = field(config, "params", dict, file, required=True)
    params = dict(params)
    known = set(cls._get_param_names())
    unknown = sorted(set(params) - known)
    if unknown:
        raise ModelFormatError(f"{file}: field 'params' holds parameters this psae does not "
                               f"know: {', '.join(unknown)}")
    for k in ("sigmas", "epochs"):
        if isinstance(params.get(k), list):
            params[k] = tuple(params[k])
    return params


def check_tensor(a: np.ndarray, name: str, kind: str, file: str) -> None:
    """A tensor of the right kind with finite values: floating point for ``"f"``, any real
    number for ``"i"`` (a counter, which :func:`psae.training.fit.store` keeps as float32)."""
    if a.dtype.kind not in ("f" if kind == "f" else "iuf"):
        want = "a floating-point" if kind == "f" else "a numeric"
        raise ModelFormatError(f"{file}: tensor {name!r} has dtype {a.dtype}, expected "
                               f"{want} dtype")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ModelFormatError(
                f"{file}: tensor {name!r} holds {int(bad.sum())} NaN or infinite value(s) "
                f"(the first at index {first}); the weights are damaged: restore or refit the "
                "model")


def check_arrays(est, arrays: dict[str, np.ndarray], D: int, file: str) -> None:
    """The tensors of ``est``'s penalty, no more and no fewer, each of its shape and kind
    (floating or integer) and finite: a tampered or damaged file is refused here instead of
    encoding to NaN or silently to zeros."""
    M = est.n_components
    expected = {"encoder.weight": ((M, D), "f"), "encoder.bias": ((M,), "f"),
                "decoder.weight": ((D, M), "f"), "decoder.bias": ((D,), "f")}
    # the weights' shapes first: the code layer below is built at the config's size, and an
    # altered n_components of 10**12 asked torch for terabytes
    _check_names(est, expected, {k: v for k, v in arrays.items()
                                 if not k.startswith(CODE_PREFIX)}, D, file)
    persistence.check_shapes(arrays, {k: shape for k, (shape, _) in expected.items()}, file)
    code = est._code_layer(est._settings())
    for k, v in code.state_dict().items():
        shape, got = tuple(v.shape), arrays.get(CODE_PREFIX + k)
        if shape == () and got is not None and got.shape == (1,):
            shape = (1,)  # how state() writes a scalar (np.ascontiguousarray is >= 1-d)
        expected[CODE_PREFIX + k] = (shape, "f" if v.is_floating_point() else "i")
    _check_names(est, expected, arrays, D, file)
    persistence.check_shapes(arrays, {k: shape for k, (shape, _) in expected.items()},
                             file)
    for name, (_, kind) in expected.items():
        check_tensor(arrays[name], name, kind, file)


def _check_names(est, expected: dict, arrays: dict, D: int, file: str) -> None:
    """The tensors named in ``arrays`` are exactly those ``expected``."""
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        what = f"penalty={est.penalty!r} with n_components={est.n_components} on {D} features"
        parts = ([f"lacks {', '.join(map(repr, missing))}"] if missing else []) + \
            ([f"holds {', '.join(map(repr, extra))} it does not use"] if extra else [])
        raise ModelFormatError(
            f"{file}: the tensors do not match the model the config names ({what}): it "
            f"{' and '.join(parts)}. The config or the weights were altered; save the model "
            "again")


def load_fields(est, config: dict, D: int, file: str) -> None:
    """The fitted attributes kept in the config, each checked for its type."""
    est.n_features_in_ = D
    names = field(config, "feature_names_in", list, file)
    if names is not None:
        if len(names) != D or not all(isinstance(n, str) for n in names):
            raise ModelFormatError(f"{file}: field 'feature_names_in' must be {D} strings "
                                   "(one per feature)")
        est.feature_names_in_ = np.asarray(names, dtype=object)
    history = field(config, "history", list, file) or []
    if not all(isinstance(h, dict) for h in history):
        raise ModelFormatError(f"{file}: field 'history' must be a list of objects (one "
                               "per epoch)")
    est.history_ = history
    est.stages_ = field(config, "stages", list, file) or []
    est.n_iter_ = len(est.history_)
    fit_time = field(config, "fit_time", numbers.Real, file)
    if fit_time is not None:
        est.fit_time_ = fit_time
    precision = field(config, "precision", str, file)
    if precision is not None:
        if precision not in ("fp32", "bf16"):
            raise ModelFormatError(f"{file}: field 'precision' must be 'fp32' or 'bf16', "
                                   f"got {precision!r}")
        est.precision_ = precision
    est.dead_fraction_ = field(config, "dead_fraction", numbers.Real, file)
    batch = field(config, "batch_size", numbers.Integral, file)  # absent before 2026-12-05
    if batch is not None:
        if batch < 1:
            raise ModelFormatError(f"{file}: field 'batch_size' must be >= 1, got {batch}")
        est.batch_size_ = int(batch)
    stopped = config.get("stopped_early")
    if stopped is not None:
        if not isinstance(stopped, bool):
            raise ModelFormatError(f"{file}: field 'stopped_early' must be true or false, "
                                   f"got {stopped!r}")
        est.stopped_early_ = stopped
    est.penalty_weight_ = field(config, "penalty_weight", numbers.Real, file)
    theta = field(config, "inference_threshold", numbers.Real, file)
    if theta is not None and not 0 <= theta < float("inf"):
        raise ModelFormatError(f"{file}: field 'inference_threshold' must be a finite "
                               f"number >= 0, got {theta!r}")
    est.inference_threshold_ = theta


def save(est, path, force: bool = False) -> None:
    """Write ``path/`` (safetensors weights + JSON config) of the fitted ``est``, atomically
    (a folder of files psae did not write only with ``force``)."""
    config, arrays = state(est)
    persistence.write_model(path, config, arrays, force=force)


def load(cls, path, device: str | None = None, drop_preprocessing: bool = False):
    """The ``cls`` saved in the model directory ``path`` (see
    :meth:`SparseAutoencoder.load <psae.SparseAutoencoder.load>`)."""
    config, arrays = persistence.read_model(path)
    if config.get("normalizer") is not None and not drop_preprocessing:
        raise ModelFormatError(
            f"{path} holds a Normalizer and a SparseAutoencoder (the preprocessing it was "
            "trained with): load both with psae.load(path), or only the autoencoder with "
            "SparseAutoencoder.load(path, drop_preprocessing=True)")
    return from_state(cls, config, arrays, str(path), device)
