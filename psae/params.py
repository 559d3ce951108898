"""Checking ``SparseAutoencoder``'s parameters, with errors that name the parameter and say what
would work. scikit-learn's convention: the constructor stores, ``fit`` checks."""

from __future__ import annotations

import numbers

import numpy as np
import torch

from .errors import ParameterError
from .network import ACTIVATIONS
from .precision import resolve_precision

__all__ = ["resolve_device", "stage_epochs", "check_number", "check_sigmas", "validate"]

REVIVE = ("auto", "auxk", "resample", "none")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None picks CUDA when available, else the CPU; ``"cpu"``, ``"cuda"`` and
    ``"cuda:N"`` are checked against what this machine has."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ParameterError(f"device {device!r} is not one psae can use; choose 'auto', "
                             "'cpu', 'cuda' or 'cuda:N'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ParameterError(f"device {device!r} was asked for but CUDA is not available "
                                 "on this machine; use 'cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ParameterError(f"device {device!r}: this machine has "
                                 f"{torch.cuda.device_count()} CUDA device(s)")
    return dev


def stage_epochs(epochs, n_stages: int) -> list[int]:
    """Split ``epochs`` over the stages: an int is a total spread evenly (earlier stages get the
    remainder); a sequence gives each stage's count."""
    if isinstance(epochs, numbers.Integral) and not isinstance(epochs, bool):
        if epochs < 1:
            raise ParameterError(f"epochs must be at least 1, got {epochs}")
        if epochs < n_stages:
            raise ParameterError(f"epochs={epochs} is fewer than the {n_stages} sigma stages "
                                 "(give at least one epoch per stage)")
        base, extra = divmod(int(epochs), n_stages)
        return [base + (k < extra) for k in range(n_stages)]
    counts = list(epochs)
    if len(counts) != n_stages or not all(
        isinstance(c, numbers.Integral) and c >= 1 for c in counts
    ):
        raise ParameterError(
            f"epochs must be a positive int or {n_stages} positive ints (one per sigma stage), "
            f"got {epochs!r}"
        )
    return [int(c) for c in counts]


def check_number(name, value, strict=True, integer=False) -> None:
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    ok = ok and (value > 0 if strict else value >= 0) and np.isfinite(value)
    if not ok:
        what = "an integer" if integer else "a number"
        raise ParameterError(f"{name} must be {what} {'> 0' if strict else '>= 0'}, "
                             f"got {value!r}")


def check_sigmas(sigmas) -> None:
    try:
        sig = np.asarray(sigmas, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        sig = np.array([np.nan])
    if np.ndim(sigmas) != 1 or sig.size == 0 or not np.all(np.isfinite(sig)) or np.any(sig <= 0):
        raise ParameterError(f"sigmas must be a non-empty sequence of positive numbers, "
                             f"got {sigmas!r}")
    if np.any(np.diff(sig) >= 0):
        raise ParameterError(f"sigmas must be strictly decreasing (graduated non-convexity), "
                             f"got {tuple(sigmas)}")


def _check_mechanism_params(est, mech) -> None:
    """The parameters only some mechanisms use: set where none reads them is an error."""
    used = set(mech.params)
    for name in ("k", "encode_k", "target_l0", "bandwidth"):
        if getattr(est, name) is not None and name not in used:
            users = ", ".join(m for m in _users(name)) or "none"
            raise ParameterError(f"{name}={getattr(est, name)!r} has no effect with "
                                 f"penalty={est.penalty!r}; it applies to: {users}")
    M = est.n_components
    for name in ("k", "encode_k"):
        v = getattr(est, name)
        if v is not None and not (isinstance(v, numbers.Integral) and 1 <= v <= M):
            raise ParameterError(f"{name} must be an integer from 1 to n_components={M}, "
                                 f"got {v!r}")
    if est.target_l0 is not None:
        t = est.target_l0
        if not (isinstance(t, numbers.Real) and not isinstance(t, bool) and 0 < t < M):
            raise ParameterError(f"target_l0 must be a number in (0, n_components={M}), "
                                 f"got {t!r}")
    if est.bandwidth is not None:
        check_number("bandwidth", est.bandwidth)
    if est.revive not in REVIVE:
        raise ParameterError(f"unknown revive {est.revive!r}; choose one of {REVIVE}")
    if est.revive == "auxk" and mech.revive != "auxk":
        raise ParameterError(f"revive='auxk' needs a TopK-style code (topk, batchtopk), not "
                             f"penalty={est.penalty!r}; use 'resample'")
    if mech.code is not None and est.encoder_activation is not None:
        raise ParameterError(f"penalty={est.penalty!r} has its own code layer; leave "
                             "encoder_activation at None")


def _users(param: str) -> list[str]:
    from . import sparsity

    return [n for n in sparsity.names() if param in sparsity.get(n).params]


def validate(est) -> None:
    """Every parameter of a ``SparseAutoencoder``; raises :class:`ParameterError`."""
    mech = est.mechanism  # raises for an unknown penalty
    check_number("n_components", est.n_components, integer=True)
    check_number("lam", est.lam, strict=False)
    if est.beta is not None:
        check_number("beta", est.beta, strict=False)
    if not (isinstance(est.rho, numbers.Real) and 0 < est.rho < 1):
        raise ParameterError(f"rho must lie in (0, 1), got {est.rho!r}")
    if est.learning_rate is not None:
        check_number("learning_rate", est.learning_rate)
    if est.batch_size != "auto":
        check_number("batch_size", est.batch_size, integer=True)
    check_number("weight_decay", est.weight_decay, strict=False)
    check_number("dead_window", est.dead_window, integer=True)
    check_number("n_iter_no_change", est.n_iter_no_change, integer=True)
    check_number("tol", est.tol, strict=False)
    if not (isinstance(est.validation_fraction, numbers.Real) and
            0 < est.validation_fraction < 1):
        raise ParameterError(f"validation_fraction must lie in (0, 1), got "
                             f"{est.validation_fraction!r}")
    check_sigmas(est.sigmas)
    if est.threads != "auto":
        check_number("threads", est.threads, integer=True)
    resolve_precision(est.precision, resolve_device(est.device), warn=False)
    if est.solver not in ("adam", "lbfgs"):
        raise ParameterError(f"unknown solver {est.solver!r}; choose 'adam' or 'lbfgs'")
    for name in ("encoder_activation", "decoder_activation"):
        value = getattr(est, name)
        if value is not None and value not in ACTIVATIONS:
            raise ParameterError(f"unknown {name} {value!r}; choose one of {ACTIVATIONS}")
    _check_mechanism_params(est, mech)
