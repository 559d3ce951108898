"""The training loop: mini-batch Adam or full-batch L-BFGS, stage by stage along the σ schedule.

Graduated non-convexity (section IV-B): stage k trains at σ_k starting from the parameters
stage k−1 ended with. Mechanisms without σ train as a single stage. :class:`Trainer` owns the
forward pass, weight decay, the optimiser and the stages; the cost itself is the pure
:class:`~psae.training.objective.Objective` it is handed, the step one of
:mod:`psae.training.steps`, and what watches training (the firing tracker, the L0 controller,
the stopping rule, the thread tuner, the resampling of dead units) its
:mod:`~psae.training.hooks`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from ..distributed import SINGLE, Comm
from ..errors import ParameterError, TrainingDivergedError
from .batches import StreamedBatches, TensorBatches
from .hooks import Hook
from .network import Autoencoder
from .objective import Objective
from .steps import choose_step

__all__ = ["Trainer", "TrainingDivergedError", "adam", "flush_vanishing_moments"]

Batches = TensorBatches | StreamedBatches


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam, fused into one kernel where this torch supports it (CPU since 2.4): on the CPU the
    step is 3-5x faster than the per-parameter loop (benchmarks/README.md)."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


FLUSH_EVERY = 256
"""Adam steps between two :func:`flush_vanishing_moments`."""


def flush_vanishing_moments(optimizer: torch.optim.Optimizer) -> None:
    """Set to zero the Adam moments too small to move a weight: first moments below 1e-20,
    second moments below 1e-30.

    A unit that gets no gradient (a dead JumpReLU or TopK unit) has its first moment shrink
    by β1 = 0.9 a step down into the subnormal floats, where the CPU's arithmetic is about a
    hundred times slower: in a JumpReLU fit with 54 % of its units dead (MNIST, M = 1,000),
    fused Adam took 3.1 ms a step, 0.58 with this flush (benchmarks/README.md, "Three costs
    that were not arithmetic"). ``torch.set_flush_denormal`` would set only the calling
    thread's flag, not the other threads'. Every :data:`FLUSH_EVERY` steps is often enough:
    1e-20 · 0.9^256 ≈ 2e-32 is still a normal float. With ε = 1e-8 in ``m̂ / (√v̂ + ε)`` a
    zeroed first moment changes a step by at most 1e-12 · lr, a zeroed second moment its
    size by about 2e-7 of it (with Adam's bias correction at the first flush)."""
    for state in optimizer.state.values():
        for key, tiny in (("exp_avg", 1e-20), ("exp_avg_sq", 1e-30)):
            moment = state.get(key)
            if isinstance(moment, torch.Tensor) and moment.is_floating_point():
                moment.masked_fill_(moment.abs() < tiny, 0.0)


class Trainer:
    """Trains one :class:`~psae.training.network.Autoencoder` in place on an :class:`Objective`.

    ``step(x, sigma)`` is one optimiser step on a batch (one L-BFGS iteration on the full
    batch); ``fit`` runs the σ stages over epochs of batches and returns the per-epoch history.
    The step is chosen once (:func:`~psae.training.steps.choose_step`: ``fused`` None takes the
    hand-derived step wherever it applies) and runs in the module's own ``precision``; decoder
    columns stay on the unit sphere where the mechanism asks. ``hooks``
    (:mod:`psae.training.hooks`) watch training: they see every step's codes, add to every
    epoch's record, give AuxK its dead units and may end a stage or training. ``comm`` carries
    data parallelism (:class:`~psae.distributed.Comm`); only its main rank shows progress.
    """

    def __init__(
        self,
        module: Autoencoder,
        objective: Objective,
        *,
        lr: float = 1e-3,
        solver: str = "adam",
        weight_decay: float = 0.0,
        fused: bool | None = None,
        hooks: Sequence[Hook] = (),
        comm: Comm = SINGLE,
        progress: bool = False,
    ):
        if solver not in ("adam", "lbfgs"):
            raise ParameterError(f"unknown solver {solver!r}; choose 'adam' or 'lbfgs'")
        self.module, self.objective = module, objective
        self.net = comm.wrap(module)
        self.lr, self.solver, self.weight_decay = lr, solver, weight_decay
        self.comm = comm
        self.progress = progress and comm.is_main
        self.precision = module.precision
        self.rule = choose_step(module, objective, solver, fused)
        self.hooks = list(hooks)
        self.stopped_early = False
        self.history: list[dict] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self.steps = 0
        self.stage, self.sigma = 0, None
        self._verified = _snapshot(module)  # last parameters known to give a finite cost
        self._clock = time.perf_counter()
        self._bar = None

    # ------------------------------------------------------------------ one step
    def loss(self, x: torch.Tensor, sigma: float | None = None, net=None,
             dead: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(total, reconstruction, sparsity) of a batch; total includes weight decay. ``dead``:
        the units AuxK trains on (handed to the code layer)."""
        return self.loss_and_codes(x, sigma, net, dead)[:3]

    def loss_and_codes(self, x: torch.Tensor, sigma: float | None, net=None,
                       dead: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`loss` and the batch's codes."""
        fwd = (net or self.net)(x) if dead is None else (net or self.net)(x, dead=dead)
        total, recon, sparsity = self.objective(x, fwd.h, fwd.y, sigma, **fwd.extra)
        if self.weight_decay > 0:
            m = self.module
            total = total + (0.5 * self.weight_decay) * (m.W1.square().sum()
                                                         + m.W2.square().sum())
        return total, recon, sparsity, fwd.h

    def scale_lr(self, factor: float) -> None:
        """Multiply the learning rate, now and for the stages to come."""
        self.lr *= factor
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr

    def new_stage(self, sigma: float | None) -> None:
        """Start a σ stage: a fresh optimiser from the current parameters (warm start)."""
        self.sigma = sigma
        params = self.module.parameters()
        if self.solver == "adam":
            self.optimizer = adam(params, self.lr)
        else:
            self.optimizer = torch.optim.LBFGS(params, lr=self.lr, max_iter=1, history_size=20,
                                               line_search_fn="strong_wolfe")

    def step(self, x: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
        """One optimiser step on ``x``, between the hooks' ``before_step`` and ``after_step``;
        returns the (total, reconstruction, sparsity) it started from, detached."""
        if self.optimizer is None or sigma != self.sigma:
            self.new_stage(sigma)
        for hook in self.hooks:
            hook.before_step(self)
        dead = self.dead_units() if self.rule.takes_dead else None
        terms, h = self.rule(self, x, sigma, dead)
        self.steps += 1
        if self.solver == "adam" and self.steps % FLUSH_EVERY == 0:
            flush_vanishing_moments(self.optimizer)
        for hook in self.hooks:
            hook.after_step(self, h)
        return terms

    def dead_units(self) -> torch.Tensor | None:
        """The units AuxK trains on this step: the first a hook names (None: none)."""
        for hook in self.hooks:
            dead = hook.dead_units()
            if dead is not None:
                return dead
        return None

    # ------------------------------------------------------------------ epochs and stages
    def epoch(self, batches: Batches, generator: torch.Generator) -> dict:
        """One pass over ``batches`` (one L-BFGS iteration on the whole set); its record."""
        start = _snapshot(self.module)
        # each batch's mean terms weighted by its rows (and summed over the ranks' shares): a
        # short last batch of 1 row weighed as much as a full one of 128
        sums = torch.zeros(4, device=self.module.W1.device)
        first = None
        xs = [batches.full()] if self.solver == "lbfgs" else batches.epoch(generator)
        for x in xs:
            terms = self.step(x, self.sigma)
            first = terms[0] if first is None else first
            sums[:3] += terms * x.shape[0]
            sums[3] += x.shape[0]
        # the epoch's first loss was computed at ``start``: finite means start is sound
        if math.isfinite(float(self.comm.all_mean(first))):
            self._verified = start
        sums = self.comm.all_sum(sums)
        means = sums[:3] / sums[3].clamp(min=1)
        total, recon, sparsity = (float(v) for v in means.cpu())
        if not math.isfinite(total):
            raise self._diverged(total, f"in epoch {len(self.history) + 1}")
        rec = {"stage": self.stage, "sigma": self.sigma, "epoch": len(self.history) + 1,
               "loss": total, "reconstruction": recon, "sparsity": sparsity}
        self.comm.average_buffers(self.module)  # before validation reads them
        for hook in self.hooks:
            hook.epoch_end(self, rec, batches, generator)
        now = time.perf_counter()
        rec.update(seconds=now - self._clock, threads=torch.get_num_threads())
        self._clock = now
        self.history.append(rec)
        return rec

    def fit(self, batches: Batches, sigmas: Sequence[float | None], epochs: Sequence[int],
            generator: torch.Generator, max_epochs: int | None = None) -> list[dict]:
        """Train along the σ stages (``epochs[k]`` epochs at ``sigmas[k]``); returns the
        per-epoch history. With a hook that may end training and ``max_epochs``, the last stage
        runs on until the hook ends it, at most ``max_epochs`` epochs in all. Raises
        :class:`TrainingDivergedError` after restoring the last good parameters if the loss
        stops being finite."""
        self._bar = tqdm(total=sum(epochs), desc=f"fit {self.objective.penalty}",
                         disable=not self.progress, unit="epoch", leave=False)
        self._clock = time.perf_counter()
        self.plan = list(epochs)
        stops = any(hook.ends_training for hook in self.hooks)
        self._extra = max(0, (max_epochs or 0) - sum(self.plan)) if stops else 0
        try:
            for k, sigma in enumerate(sigmas):
                self.stage = k
                self.new_stage(sigma)
                for hook in self.hooks:
                    hook.stage_start(self, k, sigmas, batches)
                if self._run_stage(k, k == len(sigmas) - 1, batches, generator):
                    self.stopped_early = True
                    break
            for hook in self.hooks:
                hook.training_end(self)
            final = self._final_loss(batches, sigmas[-1])
            self.comm.average_buffers(self.module)  # that forward pass tracked its own share
            if not math.isfinite(final):
                raise self._diverged(final, "at the end of training")
        finally:
            self._bar.close()
        return self.history

    def _run_stage(self, k: int, last: bool, batches: Batches,
                   generator: torch.Generator) -> bool:
        """The epochs of stage ``k``; whether a hook ended training. A stage before the last
        that a hook calls over gives its remaining epochs to the last; the last may run
        ``_extra`` epochs past its plan while no hook has ended it."""
        sigma = self.sigma
        for done in range(1, self.plan[k] + 1 + (self._extra if last else 0)):
            rec = self.epoch(batches, generator)
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{rec['loss']:.4g}", sigma=sigma)
            if any([hook.stage_over(self, rec, last) for hook in self.hooks]):
                if last:
                    return True
                self.plan[-1] += self.plan[k] - done
                self.plan[k] = done
                break
        return False

    # ------------------------------------------------------------------ divergence
    def _final_loss(self, batches: Batches, sigma: float | None) -> float:
        """The cost at the final parameters on one batch (the last step's result is never seen
        by the training loop itself)."""
        with torch.no_grad():
            x = next(iter(batches.epoch(torch.Generator().manual_seed(0))))
            # AuxK's term with the dead units the last step's forward pass carried, if any
            total, _, _ = self.loss(x, sigma, net=self.module, dead=self.rule.dead)
            finite = all(bool(torch.isfinite(p).all()) for p in self.module.parameters())
            return float(self.comm.all_mean(total.detach())) if finite else math.nan

    def _diverged(self, total: float, where: str) -> TrainingDivergedError:
        self.module.load_state_dict(self._verified)
        err = TrainingDivergedError(
            f"loss became {total} {where} (stage {self.stage}, sigma={self.sigma}); the model "
            "keeps the last parameters whose loss was finite. Lower the learning rate or the "
            "penalty weight, or check the input scale."
        )
        err.history = self.history
        return err
