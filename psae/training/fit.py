"""How :meth:`SparseAutoencoder.fit <psae.SparseAutoencoder.fit>` trains: small named steps on
the estimator, in the style of scikit-learn's ``_dict_learning.py``.

:func:`fit` holds out the early-stopping rows, checks memory, cuts batches, and trains
(:func:`train`: :func:`build` the network, :func:`watchers` and the stopper as the trainer's
hooks, the thread count, the precision, the :class:`~psae.training.trainer.Trainer`); a fit
whose codes collapsed (:func:`collapse`) is restarted from a start centred on the data
(:func:`recentre`) with a lower step size, and a good one gets its inference threshold
(:func:`calibrate`). :func:`store` writes the fitted attributes.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .. import encode
from ..distributed import SINGLE, Comm
from ..errors import ParameterError, TrainingCollapsedError
from ..metrics import DEFAULT_THRESHOLD, calibrated_threshold
from ..model_files import WEIGHTS
from ..params import check_memory as check_layer_memory
from ..params import resolve_device
from ..streaming import is_streamed
from .batches import make_batches
from .hooks import fit_hooks
from .monitor import FiringTracker, L0Controller
from .network import Autoencoder
from .objective import Objective
from .precision import resolve_precision
from .stopping import Plateau
from .threads import ThreadTuner, plan_threads
from .trainer import Trainer, TrainingDivergedError

__all__ = ["fit"]

COLLAPSE_SPREAD = 1e-6
"""A fit whose every unit varies by at most this much across training inputs has collapsed."""
COLLAPSE_CHECK_FLOATS = 2**24
"""Codes encoded at once by the collapse check (64 MB): all 2,048 rows up to 8,192 units."""
MAX_RESTARTS = 2
"""Restarts of a collapsed fit before it is an error, each with a RESTART_LR_FACTOR lower step
size from a re-initialisation centred on the data (scikit-learn's own small check data, at
100 ± 1, saturates every sigmoid unit of the default start)."""
RESTART_LR_FACTOR = 0.1

AIM = 0.15  # with an inference threshold, training aims this far above target_l0
CALIBRATION_ROWS = 4096  # training rows the threshold is chosen on without early stopping


# ---------------------------------------------------------------------- the fit and its restarts
def fit(est, X, comm: Comm) -> None:
    """Train ``est`` on the checked ``X``; running out of memory is said in psae's words."""
    try:
        _fit(est, X, comm)
    except (RuntimeError, MemoryError) as e:
        if not out_of_memory(e):
            raise
        raise memory_error(est, e) from e


def _fit(est, X, comm: Comm) -> None:
    """Training runs until one does not collapse (at most ``MAX_RESTARTS`` restarts), then the
    inference threshold."""
    est.inference_threshold_ = None  # a refit's codes are judged raw until calibrated
    device = resolve_device(est.device)  # the group's backend was checked against it in fit
    seed = draw_seed(est, comm)
    settings = est._settings()
    X, val = hold_out(est, X, seed, device)
    # the batch slicing takes at most every row: the step size must be the real batch's;
    # L-BFGS steps on the whole set, and the memory check must count all of it
    est.batch_size_ = (X.shape[0] if est.solver == "lbfgs"
                       else comm.batch_size(est.batch_size, X.shape[0]))
    if est.batch_size_ < comm.world:
        raise ParameterError(
            f"batch_size={est.batch_size_} is smaller than the {comm.world} processes training "
            f"data-parallel, which each take a share of every batch: give batch_size at least "
            f"{comm.world} (a multiple of it steps as one process would)")
    if comm.world > 1 and est.batch_size_ % comm.world:
        warnings.warn(f"the batch of {est.batch_size_} rows is not divisible by the world size "
                      f"{comm.world}: ranks get unequal shares and steps differ slightly from a "
                      "single process's", stacklevel=4)
    check_memory(est, X, settings, device, comm)
    batches = make_batches(X, est.batch_size_, device, comm)
    lr = est._learning_rate(X.shape[1])
    for attempt in range(MAX_RESTARTS + 1):
        # a fresh copy: the controller moves its knobs in place, and a collapse is what a
        # knob pushed too far causes, so a restart must not begin where it ended
        train(est, X, batches, dict(settings), seed, device, comm, val, lr, attempt)
        collapsed = collapse(est, X)
        if collapsed is None:
            est.inference_threshold_ = calibrate(est, X, val, seed)
            return
        if attempt == MAX_RESTARTS:
            raise collapsed_error(est, collapsed, lr, attempt)
        lr *= RESTART_LR_FACTOR
        # stacklevel: _fit, fit, SparseAutoencoder.fit, the caller
        warnings.warn(f"the fit collapsed ({collapsed[0]}): restarting from a "
                      f"re-initialisation centred on the data, with learning rate {lr:.3g} "
                      f"(restart {attempt + 1} of at most {MAX_RESTARTS}; history_ records "
                      "it as 'restart')", ConvergenceWarning, stacklevel=4)


def out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is an allocator's out-of-memory error (torch's CPU or CUDA one, numpy's)."""
    if isinstance(e, MemoryError | getattr(torch, "OutOfMemoryError", MemoryError)):
        return True
    text = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in text
                                            or "can't allocate memory" in text)


def memory_error(est, e: BaseException) -> ParameterError:
    """Running out of memory mid-fit, in psae's words (what was being trained, what to
    change); the torch allocator's cache is emptied so that the process can go on."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    detail = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return ParameterError(
        f"ran out of memory training n_components={est.n_components} on "
        f"{getattr(est, 'n_features_in_', '?')} features with batch_size="
        f"{getattr(est, 'batch_size_', est.batch_size)} on "
        f"{getattr(est, 'device_', est.device)} ({detail[:300]}). Lower n_components or "
        "batch_size, or free memory")


def draw_seed(est, comm: Comm) -> int:
    """The fit's seed: from ``random_state``, rank 0's on every rank under data parallelism
    (every rank must draw the same init and shuffles; with None, rank 0 draws it)."""
    drawn = None if est.random_state is None and comm.world > 1 else int(
        check_random_state(est.random_state).randint(np.iinfo(np.int32).max))
    return drawn if comm.world == 1 else comm.shared_seed(drawn)


def hold_out(est, X, seed: int, device) -> tuple[np.ndarray, torch.Tensor | None]:
    """The rows to train on, and with ``early_stopping`` the held-out rows (on the device)
    whose reconstruction error the plateau watch follows."""
    if not est.early_stopping:
        return X, None
    if is_streamed(X):
        raise ParameterError("early_stopping holds out rows of an in-memory X; stream "
                             "without it, or load the data")
    n = X.shape[0]
    n_val = min(n - 1, max(1, int(round(est.validation_fraction * n))))
    if n_val < 2 or n - n_val < 2:
        # one held-out row has no variance to explain (the rule could never see the model
        # leave its start), one training row no spread to learn from
        raise ParameterError(
            f"early_stopping holds out validation_fraction={est.validation_fraction} of "
            f"{n} rows: {n_val} held out and {n - n_val} to train on, and it needs at least "
            "2 of each; use more rows, another validation_fraction, or early_stopping=False")
    perm = np.random.default_rng(seed).permutation(n)
    val = torch.as_tensor(np.ascontiguousarray(X[perm[:n_val]], dtype=np.float32))
    return np.ascontiguousarray(X[perm[n_val:]]), val.to(device)


def check_memory(est, X, settings: dict, device, comm: Comm) -> None:
    """Refuse a layer that cannot fit in memory before allocating it: each rank's share of a
    batch, and on a CPU every rank this machine runs (``LOCAL_WORLD_SIZE``, as ``torchrun``
    sets it), since each holds its own data, weights and optimiser state."""
    code = est.mechanism.code
    starts = code is not None and hasattr(code(1, settings), "start_firing")
    copied = device.type == "cuda" or not (
        is_streamed(X) or (X.dtype == np.float32 and X.flags.c_contiguous))
    ranks = 1
    if comm.world > 1 and device.type == "cpu":
        ranks = int(os.environ.get("LOCAL_WORLD_SIZE", comm.world))
    check_layer_memory(X.shape[1], est.n_components, -(-est.batch_size_ // comm.world), device,
                       sample_rows=min(X.shape[0], 4096) if starts else 0,
                       data_bytes=4 * X.shape[0] * X.shape[1] if copied else 0, ranks=ranks)


# ---------------------------------------------------------------------- one training run
def train(est, X, batches, settings: dict, seed: int, device, comm: Comm, val,
          lr: float, attempt: int) -> None:
    """One training run from a fresh start (``attempt`` > 0: a restart after a collapse,
    from a re-initialisation centred on the data); the fitted attributes are its result."""
    est.precision_ = resolve_precision(est.precision, device, warn=attempt == 0,
                                       size=X.shape[1] * est.n_components)
    module = build(est, X.shape[1], settings, seed, batches, device, est.precision_,
                   recentre=attempt > 0)
    sigmas, epochs = est._schedule()
    tracker, controller = watchers(est, settings, device, len(batches), comm)
    stopper = None if val is None else Plateau(val, tol=float(est.tol),
                                               patience=est.n_iter_no_change,
                                               target_l0=judged_l0(est))
    restore = torch.get_num_threads()
    n_threads, tune = plan_threads(
        est.threads, 10.0 * batches.batch_size * X.shape[1] * est.n_components, device)
    torch.set_num_threads(n_threads)
    hooks = fit_hooks(tracker, controller, stopper, ThreadTuner(n_threads) if tune else None,
                      revive=est._revive())
    trainer = Trainer(module, Objective(est.mechanism, settings), lr=lr, solver=est.solver,
                      weight_decay=float(est.weight_decay), hooks=hooks, comm=comm,
                      progress=bool(est.verbose))
    est.device_ = str(device)
    t0 = time.perf_counter()
    try:
        history = trainer.fit(batches, sigmas, epochs, torch.Generator().manual_seed(seed + 1),
                              max_epochs=est.max_epochs if stopper is not None else None)
    except TrainingDivergedError as e:
        store(est, module, restarted(e.history, attempt), [], trainer, tracker)
        raise
    finally:
        torch.set_num_threads(restore)
    est.fit_time_ = time.perf_counter() - t0
    history = restarted(history, attempt)
    stages = [{"sigma": s, "epochs": sum(1 for h in history if h["stage"] == k),
               "loss": [h["loss"] for h in history if h["stage"] == k][-1]}
              for k, s in enumerate(sigmas) if any(h["stage"] == k for h in history)]
    store(est, module, history, stages, trainer, tracker)


def build(est, n_features: int, settings: dict, seed: int, batches, device,
          precision: str = "fp32", recentre: bool = False) -> Autoencoder:
    """The network at its starting point, training in ``precision`` (tied and centred where
    the mechanism asks; ``recentre``: every unit's pre-activation centred on the data, for a
    restart)."""
    mech = est.mechanism
    module = Autoencoder(n_features, est.n_components, est._code_layer(settings),
                         est._decoder, generator=torch.Generator().manual_seed(seed),
                         precision=precision, pre_bias=mech.pre_bias).to(device)
    g = torch.Generator().manual_seed(seed + 2)
    if mech.tied_init:
        module.tie(batches.sample(65536, g).mean(dim=0) if mech.pre_bias else None)
    if recentre:
        recentre_on(module, batches.sample(4096, torch.Generator().manual_seed(seed + 3)))
    if hasattr(module.code, "start_firing"):
        target = est.target_l0 or max(1.0, est.n_components / 20)
        with torch.no_grad():  # in float32 whatever the precision, as the start always was
            a = module.pre_activation(batches.sample(4096, g), precision="fp32")
        module.code.start_firing(a, min(1.0, target / est.n_components))
    return module


def recentre_on(module: Autoencoder, x: torch.Tensor) -> None:
    """Encoder weights shrunk to the spread of the rows ``x`` (where it exceeds 1) and encoder
    biases that put each unit's mean pre-activation on them at 0: a start with no unit
    saturated or silent, whatever the scale of the input."""
    with torch.no_grad():
        x = x.float() - module.b2 if module.pre_bias else x.float()
        spread = float(x.std(dim=0).mean()) if x.shape[0] > 1 else 0.0
        if spread > 1.0:
            module.W1.div_(spread)
        module.b1.copy_(-(module.W1 @ x.mean(dim=0)))


def watchers(est, settings: dict, device, steps_per_epoch: int, comm: Comm = SINGLE
             ) -> tuple[FiringTracker, L0Controller | None]:
    """The firing tracker of every fit, and the target-L0 controller where asked."""
    tracker = FiringTracker(est.n_components, est.dead_window, DEFAULT_THRESHOLD, device,
                            comm)
    controller = None
    if est.target_l0 is not None:
        aim = est.target_l0 * (1.0 if est.raw_codes else 1.0 + AIM)
        # raw codes must land on the target itself; with an inference threshold any L0
        # from the target up can be trimmed to it, so the fit is on target there
        band = (0.95, 1.05) if est.raw_codes else (1.0 / (1.0 + AIM), 1.1)
        controller = L0Controller(settings, est.mechanism.knob, aim,
                                  period=max(50, steps_per_epoch // 2),
                                  bounds=est.mechanism.knob_bounds, band=band,
                                  spare=est.mechanism.spare_knob,
                                  spare_bounds=est.mechanism.spare_bounds)
    return tracker, controller


def restarted(history: list[dict], attempt: int) -> list[dict]:
    """``history`` with each record marked by its restart (unmarked on the first run)."""
    if attempt:
        for rec in history:
            rec["restart"] = attempt
    return history


def store(est, module: Autoencoder, history: list[dict], stages: list[dict],
          trainer: Trainer, tracker: FiringTracker | None) -> None:
    """The fitted attributes: weights (the pre-encoder bias folded into the encoder bias,
    so encoding stays one matrix multiply), code-layer state, what the watchers saw."""
    def np_(t):
        return t.detach().to("cpu", torch.float32).numpy().copy()

    with torch.no_grad():
        weights = (module.W1, module.folded_encoder_bias(), module.W2, module.b2)
    for name, p in zip(WEIGHTS, weights, strict=True):
        setattr(est, name, np_(p))
    est.code_state_ = {k: np_(v) for k, v in module.code.state_dict().items()}
    est._fitted_layout = est._layout()
    est.history_ = history
    est.n_iter_ = len(history)
    est.stages_ = stages
    # the last epoch's count, taken before a resampler gave its dead units a fresh window
    last = history[-1] if history else {}
    est.dead_fraction_ = (last["dead_fraction"] if "dead_fraction" in last
                          else tracker.dead_fraction() if tracker else None)
    est.stopped_early_ = trainer.stopped_early
    knob = est.mechanism.knob
    est.penalty_weight_ = (float(trainer.objective.settings[knob[0]])
                           if knob is not None else None)


# ---------------------------------------------------------------------- after training
def judged_l0(est) -> float | None:
    """The mean L0 at which the codes will be judged (trimmed by the inference threshold):
    the target, or BatchTopK's k; None where the raw codes are judged."""
    if est.raw_codes:
        return None
    if est.target_l0 is None and est.penalty == "batchtopk":
        return float(est._settings()["k"])
    return None if est.target_l0 is None else float(est.target_l0)


def calibrate(est, X, val: torch.Tensor | None, seed: int) -> float | None:
    """The inference threshold that puts the held-out mean L0 on the target (None without
    a target or with ``raw_codes``); where the code is already at or under the target it is
    the L0 threshold itself (0.01), so that the codes are exact-sparse either way: a
    sigmoid code left raw would be judged on activations its L0 does not count; BatchTopK
    trained with held-out rows gets one too, its target being k. Chosen on the
    early-stopping rows; training rows only where there are none: on a 3,000-row set,
    rows the model was trained on put the test rows' mean L0 up to 8 % under target at
    L0 5, held-out rows within 1 % for the sigmoid models."""
    target = judged_l0(est)
    # BatchTopK's k counts only with held-out rows: its running threshold let 3-13 % more
    # through than k on them (digits, OPTDIGITS, 3 seeds); chosen there it lands within
    # 5 % in all 18 cells
    if target is None or (est.target_l0 is None and val is None):
        return None
    if val is not None:
        rows = val.cpu().numpy()
    else:
        idx = np.random.default_rng(seed + 4).permutation(X.shape[0])[:CALIBRATION_ROWS]
        rows = np.asarray(X[np.sort(idx)], dtype=np.float32)
    return calibrated_threshold(encode.transform(est, rows, raw=True), target)


def collapse(est, X, rows: int = 2048) -> tuple[str, float, int] | None:
    """None, or ``(state, spread, rows)`` of a fit whose codes do not depend on the input
    (all zero, or every unit saturated): it failed, whatever its loss says. Encoded in
    chunks, so that a wide layer's check stays small."""
    n = min(rows, X.shape[0])
    chunk = max(1, min(n, COLLAPSE_CHECK_FLOATS // est.n_components))
    low = high = None
    total = 0.0
    for s in range(0, n, chunk):
        # encode's own transform: the public one returns what set_output asks (a DataFrame)
        H = encode.transform(est, np.asarray(X[s:min(n, s + chunk)]))
        lo, hi = H.min(axis=0), H.max(axis=0)
        low = lo if low is None else np.minimum(low, lo)
        high = hi if high is None else np.maximum(high, hi)
        total += float(np.abs(H).sum(dtype=np.float64))
    spread = float((high - low).max())
    if spread > COLLAPSE_SPREAD:
        return None
    level = total / (n * est.n_components)
    return ("all zero" if level <= COLLAPSE_SPREAD else f"stuck at {level:.3g}"), spread, n


def collapsed_error(est, collapsed: tuple[str, float, int], lr: float, restarts: int
                    ) -> TrainingCollapsedError:
    """The error of a fit that collapsed after its last restart (it carries ``history_``)."""
    state, spread, n = collapsed
    tried = (f" It collapsed again after {restarts} restart(s) from a re-initialisation "
             "centred on the data, each with a 10x lower learning rate." if restarts else "")
    err = TrainingCollapsedError(
        f"the fit collapsed: every training input gets the same code ({state}; no unit "
        f"varies by more than {spread:.1e} across {n} inputs), so the codes carry "
        f"no information.{tried} Lower the learning rate (it was {lr:.3g} last; None gives "
        "min(1e-2, 1/n_features)·sqrt(batch_size/128)) or the penalty weight, or check "
        "that the inputs differ and are scaled (psae.Normalizer).")
    err.history = est.history_
    return err
