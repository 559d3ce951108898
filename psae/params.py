"""Checking ``SparseAutoencoder``'s parameters, with errors that name the parameter and say what
would work. scikit-learn's convention: the constructor stores, ``fit`` checks."""

from __future__ import annotations

import inspect
import math
import numbers
import os
from pathlib import Path

import numpy as np
import torch

from .errors import ParameterError
from .training.network import ACTIVATIONS
from .training.precision import resolve_precision

__all__ = ["resolve_device", "stage_epochs", "check_number", "check_sigmas", "check_seed",
           "validate", "available_memory", "check_memory", "format_bytes"]

REVIVE = ("auto", "auxk", "resample", "none")
MAX_SEED = 2**32 - 1
"""The largest seed of numpy's legacy ``RandomState`` (what ``check_random_state`` builds)."""


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


def _check_max_epochs(est) -> None:
    """``max_epochs`` lets early stopping run past ``epochs``: an integer at least as large,
    and only with early stopping."""
    cap = getattr(est, "max_epochs", None)
    if cap is None:
        return
    check_number("max_epochs", cap, integer=True)
    if not est.early_stopping:
        raise ParameterError("max_epochs has no effect without early_stopping=True "
                             "(--early-stopping): without it, epochs is the cap")
    total = est.epochs if isinstance(est.epochs, numbers.Integral) else sum(est.epochs)
    if cap < total:
        raise ParameterError(f"max_epochs={cap} is below epochs={total}: it is the most the "
                             "fit may run, past the planned epochs; raise it or leave it None")


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


def _finite(value) -> bool:
    """Whether ``value`` is a finite number (an int too large for a float is not; numpy's
    isfinite raised a TypeError on Python ints past 2**64)."""
    try:
        return math.isfinite(float(value))
    except (OverflowError, TypeError, ValueError):
        return False


def check_number(name, value, strict=True, integer=False) -> None:
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    ok = ok and (value > 0 if strict else value >= 0) and _finite(value)
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


def check_seed(random_state) -> None:
    """None, a numpy ``RandomState``, or an int that numpy's legacy seeding takes."""
    if random_state is None or isinstance(random_state, np.random.RandomState):
        return
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) \
            and 0 <= random_state <= MAX_SEED:
        return
    raise ParameterError(f"random_state (--seed) must be None, a numpy RandomState or an "
                         f"integer from 0 to 2**32 - 1 = {MAX_SEED}, got {random_state!r}")


def _is_default(value, default) -> bool:
    """Whether ``value`` equals the constructor's ``default`` (a list of the default's numbers
    counts: a config read back from JSON has lists for tuples)."""
    if default is None or value is None:
        return value is default
    try:
        a = np.asarray(value, dtype=float)
        b = np.asarray(default, dtype=float)
    except (TypeError, ValueError):
        return False
    return a.shape == b.shape and bool(np.all(a == b))


def _mechanism_specific() -> tuple[str, ...]:
    """Parameters some registered mechanism reads and others ignore (``Mechanism.params``)."""
    from . import sparsity

    names = (n for m in sparsity.names() for n in sparsity.get(m).params)
    return tuple(dict.fromkeys(names))


def _check_unused(est, mech) -> None:
    """A mechanism-specific parameter set (away from its default) for a mechanism that does not
    read it is an error, as scikit-learn's convention has it only in ``fit``: the defaults
    never trip it, so ``get_params``, ``set_params`` and ``clone`` are unaffected."""
    defaults = {n: p.default for n, p in inspect.signature(type(est)).parameters.items()}
    for name in _mechanism_specific():
        if name in mech.params or name not in defaults:
            continue
        value = getattr(est, name)
        if not _is_default(value, defaults[name]):
            users = ", ".join(_users(name)) or "none"
            raise ParameterError(
                f"{name}={value!r} has no effect with penalty={est.penalty!r}; it applies to: "
                f"{users}. Leave it at its default ({defaults[name]!r}) or choose one of those "
                "penalties")


def _check_steering(est, mech) -> None:
    """``target_l0`` needs per-step codes (Adam's steps) and a knob it can move (a weight
    above 0): refused before the fit rather than a fit that never steers."""
    if est.target_l0 is None or mech.knob is None:
        return
    if est.solver == "lbfgs":
        raise ParameterError("target_l0 steers the penalty weight from each step's codes, "
                             "and solver='lbfgs' takes whole-batch iterations without them; "
                             "use solver='adam'")
    name = mech.knob[0]
    value = mech.settings(est.get_params()).get(name)
    if isinstance(value, numbers.Real) and not value > 0:
        raise ParameterError(f"target_l0 steers {name} multiplicatively, so it must start "
                             f"above 0, got {name}={value!r}; leave it at its default")


def _check_mechanism_params(est, mech) -> None:
    """The values of the parameters only some mechanisms use."""
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


def validate(est, loading: bool = False) -> None:
    """Every parameter of a ``SparseAutoencoder``; raises :class:`ParameterError`.

    ``loading`` (a saved model's parameters) leaves out what only matters to a new fit: the
    device (the model may be loaded elsewhere) and parameters without effect on the saved
    penalty (harmless to encoding, and older psae saved such models)."""
    mech = est.mechanism  # raises for an unknown penalty
    if not loading:
        _check_unused(est, mech)
        _check_steering(est, mech)
        calibrated = est.target_l0 is not None or (mech.name == "batchtopk"
                                                   and est.early_stopping)
        if getattr(est, "raw_codes", False) and not calibrated:
            raise ParameterError("raw_codes=True (--raw-codes) has no effect without target_l0 "
                                 "(or BatchTopK with early_stopping): only those get an "
                                 "inference threshold")
    if not isinstance(getattr(est, "raw_codes", False), bool | np.bool_):
        raise ParameterError(f"raw_codes must be True or False, got {est.raw_codes!r}")
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
    _check_max_epochs(est)
    if not (isinstance(est.validation_fraction, numbers.Real) and
            0 < est.validation_fraction < 1):
        raise ParameterError(f"validation_fraction must lie in (0, 1), got "
                             f"{est.validation_fraction!r}")
    check_sigmas(est.sigmas)
    if not loading:
        est._schedule()  # epochs over the σ stages: refused before any work, not mid-fit
    if est.threads != "auto":
        check_number("threads", est.threads, integer=True)
    check_seed(est.random_state)
    device = torch.device("cpu") if loading else resolve_device(est.device)
    resolve_precision(est.precision, device, warn=False)
    if est.solver not in ("adam", "lbfgs"):
        raise ParameterError(f"unknown solver {est.solver!r}; choose 'adam' or 'lbfgs'")
    for name in ("encoder_activation", "decoder_activation"):
        value = getattr(est, name)
        if value is not None and value not in ACTIVATIONS:
            raise ParameterError(f"unknown {name} {value!r}; choose one of {ACTIVATIONS}")
    _check_mechanism_params(est, mech)


# ----------------------------------------------------------------------------------- memory
_NO_LIMIT = 2**60  # cgroup files say "max" or a number near 2**63 when nothing is set


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isdigit() else None


def _meminfo_available() -> int | None:
    """MemAvailable of /proc/meminfo, else the free pages sysconf reports (None: unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def _cgroup_available() -> int | None:
    """What a container's memory limit leaves (cgroup v2, then v1); None without a limit."""
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        cap, used = _read_int(limit), _read_int(usage)
        if cap is not None and cap < _NO_LIMIT and used is not None:
            return max(0, cap - used)
    return None


def _address_space_available() -> int | None:
    """What ``ulimit -v`` (RLIMIT_AS) leaves this process; None without such a limit."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft == resource.RLIM_INFINITY or soft >= _NO_LIMIT:
            return None
        with open("/proc/self/status") as f:
            size = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmSize:"))
        return max(0, soft - size)
    except (ImportError, OSError, ValueError, StopIteration):
        return None


def available_memory(device: torch.device) -> int | None:
    """Bytes a new allocation can still get on ``device``: free CUDA memory (with what torch's
    cache holds unused), or on the CPU the least of MemAvailable, the container's memory limit
    and ``ulimit -v``. None where it cannot be told."""
    if device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
            cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
            return int(free + cached)
        except (RuntimeError, AssertionError):
            return None
    known = [m for m in (_meminfo_available(), _cgroup_available(),
                         _address_space_available()) if m is not None]
    return min(known) if known else None


def format_bytes(n: float) -> str:
    """``1.2 TB``, ``20 GB``, ``512 kB`` (powers of 1000, three significant figures)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


STATE_COPIES = 6
"""Float32 copies of the parameters a fit holds: the weights, their gradients, Adam's two
moments, and the trainer's two snapshots (the last parameters known good, the epoch's start)."""
ACTIVATION_COPIES = 8
"""(batch, n_components) float32 arrays counted per training step: pre-activations, codes, their
gradients and the penalty's terms peaked at about 5 (measured at M = 50,000); the rest covers
the collapse check's chunk and the allocator's slack, so that a fit refused is one that would
not have fitted."""


def training_memory(n_features: int, n_components: int, batch_size: int,
                    sample_rows: int = 0) -> tuple[int, int]:
    """``(state, activations)``: bytes of a fit's parameters with gradients and optimiser
    state, and of its per-step activations (plus ``sample_rows`` encoded at the start)."""
    D, M = int(n_features), int(n_components)
    params = 2 * D * M + D + M
    state = 4 * STATE_COPIES * params
    activations = 4 * M * (ACTIVATION_COPIES * int(batch_size) + 3 * int(sample_rows))
    return state, activations


def check_memory(n_features: int, n_components: int, batch_size: int, device: torch.device,
                 sample_rows: int = 0, data_bytes: int = 0, ranks: int = 1) -> None:
    """Refuse, before anything is allocated, a fit whose layer cannot fit in ``device``'s free
    memory (instead of dying in the allocator, or to the kernel's OOM killer); ``ranks``
    processes each need as much of it."""
    state, activations = training_memory(n_features, n_components, batch_size, sample_rows)
    need = (state + activations + int(data_bytes)) * ranks
    have = available_memory(device)
    if have is None or need <= have:
        return
    extra = f" and {format_bytes(int(data_bytes))} for the data" if data_bytes else ""
    raise ParameterError(
        f"n_components={n_components} on {n_features} features needs about "
        f"{format_bytes(need)} of {device.type} memory: {format_bytes(state)} for weights, "
        f"gradients and optimiser state, {format_bytes(activations)} for batches of "
        f"{batch_size} rows{extra}{f', for each of {ranks} processes' if ranks > 1 else ''}; "
        f"{format_bytes(have)} is available. Lower n_components (or batch_size), or free "
        "memory")
