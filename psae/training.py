"""The training loop: mini-batch Adam or full-batch L-BFGS, stage by stage along the σ schedule.

Graduated non-convexity (section IV-B): stage k trains at σ_k starting from the parameters
stage k−1 ended with. Penalties without σ train as a single stage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .batches import StreamedBatches, TensorBatches
from .network import Autoencoder
from .objective import Objective

__all__ = ["TrainingDivergedError", "train"]


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; the model keeps the last parameters whose loss was
    finite. ``history`` holds the epochs that finished."""

    history: list[dict] = []


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _all_mean(t: torch.Tensor) -> torch.Tensor:
    if _world() > 1:
        t = t.clone()
        dist.all_reduce(t)
        t /= _world()
    return t


def _snapshot(module: Autoencoder) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _adam(params, lr: float) -> torch.optim.Adam:
    """Adam, fused into one kernel where this torch supports it (CPU since 2.4): on the CPU the
    step is 3-5x faster than the per-parameter loop (benchmarks/README.md)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


def _stage_adam(net, module, batches, objective, sigma, n_epochs, lr, generator, on_epoch):
    opt = _adam(module.parameters(), lr)
    for _ in range(n_epochs):
        start = _snapshot(module)
        sums = torch.zeros(3, device=module.W1.device)
        first = None
        n = 0
        for x in batches.epoch(generator):
            opt.zero_grad(set_to_none=True)
            total, recon, sparsity = objective(net, x, sigma)
            total.backward()
            opt.step()
            terms = torch.stack([total.detach(), recon.detach(), sparsity.detach()])
            first = terms[0] if first is None else first
            sums += terms
            n += 1
        # the first loss of the epoch was computed at ``start``: finite means start is sound
        on_epoch(_all_mean(sums / max(n, 1)), start, first)


def _stage_lbfgs(net, module, batches, objective, sigma, n_iter, lr, on_epoch):
    x = batches.full()
    opt = torch.optim.LBFGS(
        module.parameters(), lr=lr, max_iter=1, history_size=20, line_search_fn="strong_wolfe"
    )
    evals = []

    def closure():
        opt.zero_grad(set_to_none=True)
        total, recon, sparsity = objective(net, x, sigma)
        total.backward()
        evals.append(torch.stack([total.detach(), recon.detach(), sparsity.detach()]))
        return _all_mean(total.detach())

    for _ in range(n_iter):
        start = _snapshot(module)
        evals.clear()
        opt.step(closure)
        # an iteration's first evaluation is at its starting point: log that one, not a
        # line-search trial
        on_epoch(_all_mean(evals[0]), start, evals[0][0])


def _final_loss(module, batches, objective, sigma) -> float:
    """The cost at the final parameters on one batch (the last step's result is never seen by
    the training loop itself)."""
    with torch.no_grad():
        x = next(iter(batches.epoch(torch.Generator().manual_seed(0))))
        total, _, _ = objective(module, x, sigma)
        finite = all(bool(torch.isfinite(p).all()) for p in module.parameters())
        return float(_all_mean(total.detach())) if finite else math.nan


def train(
    module: Autoencoder,
    batches: TensorBatches | StreamedBatches,
    objective: Objective,
    *,
    sigmas: Sequence[float | None],
    epochs: Sequence[int],
    solver: str = "adam",
    lr: float = 1e-3,
    generator: torch.Generator,
    net: torch.nn.Module | None = None,
    progress: bool = False,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train ``module`` in place along the σ stages and return the per-epoch history.

    ``net`` is what the batches are passed through (a ``DistributedDataParallel`` wrapper of
    ``module``, say); it defaults to ``module``. One "epoch" of L-BFGS is one iteration on the
    full batch. Raises :class:`TrainingDivergedError` after restoring the last good parameters
    if the loss stops being finite.
    """
    net = module if net is None else net
    history: list[dict] = []
    verified = {"state": _snapshot(module)}  # last parameters known to give a finite cost
    bar = tqdm(total=sum(epochs), desc=f"fit {objective.penalty}", disable=not progress,
               unit="epoch", leave=False)
    stage_state = {"stage": 0, "sigma": None, "t": time.perf_counter()}

    def diverged(total: float, where: str) -> TrainingDivergedError:
        module.load_state_dict(verified["state"])
        bar.close()
        err = TrainingDivergedError(
            f"loss became {total} {where} (stage {stage_state['stage']}, sigma="
            f"{stage_state['sigma']}); the model keeps the last parameters whose loss was "
            "finite. Lower the learning rate or the penalty weight, or check the input scale."
        )
        err.history = history
        return err

    def on_epoch(means: torch.Tensor, start: dict, first: torch.Tensor) -> None:
        if math.isfinite(float(_all_mean(first))):
            verified["state"] = start
        total, recon, sparsity = (float(v) for v in means.cpu())
        if not math.isfinite(total):
            raise diverged(total, f"in epoch {len(history) + 1}")
        now = time.perf_counter()
        rec = {
            "stage": stage_state["stage"],
            "sigma": stage_state["sigma"],
            "epoch": len(history) + 1,
            "loss": total,
            "reconstruction": recon,
            "sparsity": sparsity,
            "seconds": now - stage_state["t"],
        }
        stage_state["t"] = now
        history.append(rec)
        bar.update(1)
        bar.set_postfix(loss=f"{total:.4g}", sigma=stage_state["sigma"])
        if on_epoch_end is not None:
            on_epoch_end(rec)

    for k, (sigma, n_epochs) in enumerate(zip(sigmas, epochs, strict=True)):
        stage_state.update(stage=k, sigma=sigma)
        if solver == "adam":
            _stage_adam(net, module, batches, objective, sigma, n_epochs, lr, generator, on_epoch)
        elif solver == "lbfgs":
            _stage_lbfgs(net, module, batches, objective, sigma, n_epochs, lr, on_epoch)
        else:
            raise ValueError(f"unknown solver {solver!r}; choose 'adam' or 'lbfgs'")
    final = _final_loss(module, batches, objective, sigmas[-1])
    if not math.isfinite(final):
        raise diverged(final, "at the end of training")
    bar.close()
    return history
