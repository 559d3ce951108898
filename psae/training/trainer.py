"""The training loop: mini-batch Adam or full-batch L-BFGS, stage by stage along the σ schedule.

Graduated non-convexity (section IV-B): stage k trains at σ_k starting from the parameters
stage k−1 ended with. Mechanisms without σ train as a single stage. :class:`Trainer` owns the
forward pass, weight decay, the optimiser and the stages; the cost itself is the pure
:class:`~psae.training.objective.Objective` it is handed.
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
from .fused import fusable, fused_gradients
from .fused_sparse import sparse_fusable, sparse_gradients
from .monitor import FiringTracker, L0Controller, resample_dead
from .network import Autoencoder
from .objective import Objective
from .stopping import Plateau
from .threads import ThreadTuner

__all__ = ["Trainer", "TrainingDivergedError", "adam"]

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


class Trainer:
    """Trains one :class:`~psae.training.network.Autoencoder` in place on an :class:`Objective`.

    ``step(x, sigma)`` is one optimiser step on a batch (one L-BFGS iteration on the full
    batch); ``fit`` runs the σ stages over epochs of batches and returns the per-epoch history.
    ``comm`` carries data parallelism (:class:`~psae.distributed.Comm`); only its main rank
    shows progress. ``tuner`` (a :class:`~psae.training.threads.ThreadTuner`) keeps the faster CPU
    thread count. ``precision`` ("fp32" or "bf16") is where the matrix products run; ``fused``
    takes the hand-derived step of :mod:`psae.training.fused` (default: wherever it applies).
    ``tracker`` watches which units fire (its dead mask feeds AuxK), ``controller`` adapts the
    penalty weight toward a target L0, ``revive="resample"`` re-initialises dead units at each
    epoch's end, and ``unit_norm_decoder`` keeps decoder columns on the unit sphere.
    """

    def __init__(
        self,
        module: Autoencoder,
        objective: Objective,
        *,
        lr: float = 1e-3,
        solver: str = "adam",
        weight_decay: float = 0.0,
        comm: Comm = SINGLE,
        progress: bool = False,
        tuner: ThreadTuner | None = None,
        precision: str = "fp32",
        fused: bool | None = None,
        tracker: FiringTracker | None = None,
        controller: L0Controller | None = None,
        revive: str = "none",
        unit_norm_decoder: bool = False,
        stopper: Plateau | None = None,
    ):
        if solver not in ("adam", "lbfgs"):
            raise ParameterError(f"unknown solver {solver!r}; choose 'adam' or 'lbfgs'")
        self.module, self.objective = module, objective
        self.net = comm.wrap(module)
        self.lr, self.solver, self.weight_decay = lr, solver, weight_decay
        self.comm = comm
        self.progress = progress and comm.is_main
        self.tuner = tuner
        self.precision = precision
        module.precision = precision
        # the hand-derived step where it applies (None: decide), else autograd: the sigmoid
        # models' (psae.training.fused) or the sparse codes' (psae.training.fused_sparse)
        self.fused = fusable(module, objective, solver) if fused is None else fused
        self.sparse_fused = fused is not False and not self.fused and sparse_fusable(
            module, objective, solver)
        self.tracker, self.controller = tracker, controller
        self.revive, self.unit_norm_decoder = revive, unit_norm_decoder
        self.stopper, self.stopped_early = stopper, False
        self._l0_sum, self._l0_n = 0.0, 0
        self.history: list[dict] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self.stage, self.sigma = 0, None
        self._verified = _snapshot(module)  # last parameters known to give a finite cost
        self._clock = time.perf_counter()
        self._bar = None

    # ------------------------------------------------------------------ one step
    def loss(self, x: torch.Tensor, sigma: float | None = None, net=None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(total, reconstruction, sparsity) of a batch; total includes weight decay."""
        return self._loss_and_codes(x, sigma, net)[:3]

    def _loss_and_codes(self, x, sigma, net=None):
        fwd = (net or self.net)(x)
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
        """One optimiser step on ``x``; returns the (total, reconstruction, sparsity) it
        started from, detached."""
        if self.optimizer is None or sigma != self.sigma:
            self.new_stage(sigma)
        opt = self.optimizer
        if self.solver == "lbfgs":
            evals = []

            def closure():
                opt.zero_grad(set_to_none=True)
                total, recon, sparse = self.loss(x, sigma)
                total.backward()
                evals.append(torch.stack([total.detach(), recon.detach(), sparse.detach()]))
                return self.comm.all_mean(total.detach())

            opt.step(closure)
            # an iteration's first evaluation is at its starting point, not a line-search trial
            return evals[0]
        if self.fused:
            terms, h = fused_gradients(self.module, self.objective, x, sigma, self.precision,
                                       self.weight_decay)
            self.comm.average_gradients(self.module)
            opt.step()
        elif self.sparse_fused:
            dead = self.tracker.dead() if self.revive == "auxk" and self.tracker else None
            terms, h = sparse_gradients(self.module, self.objective, x, self.precision,
                                        self.weight_decay, dead)
            self.comm.average_gradients(self.module)
            if self.unit_norm_decoder:
                self.module.project_decoder_grad()
            opt.step()
            if self.unit_norm_decoder:
                self.module.normalise_decoder()
        else:
            if self.revive == "auxk" and self.tracker is not None:
                self.module.code.dead = self.tracker.dead()  # AuxK's dead units
            opt.zero_grad(set_to_none=True)
            total, recon, sparse, h = self._loss_and_codes(x, sigma)
            total.backward()
            if self.unit_norm_decoder:
                self.module.project_decoder_grad()
            opt.step()
            if self.unit_norm_decoder:
                self.module.normalise_decoder()
            terms = torch.stack([total.detach(), recon.detach(), sparse.detach()])
        self._observe(h)
        return terms

    def _observe(self, h: torch.Tensor) -> None:
        if self.tracker is None:
            return
        l0 = self.tracker.observe(h)
        self._l0_sum += l0
        self._l0_n += 1
        if self.controller is not None:
            self.controller.update(l0)

    # ------------------------------------------------------------------ epochs and stages
    def epoch(self, batches: Batches, generator: torch.Generator) -> dict:
        """One pass over ``batches`` (one L-BFGS iteration on the whole set); its record."""
        start = _snapshot(self.module)
        sums = torch.zeros(3, device=self.module.W1.device)
        first, n = None, 0
        xs = [batches.full()] if self.solver == "lbfgs" else batches.epoch(generator)
        for x in xs:
            if self.tuner is not None:
                self.tuner.before_step()
            terms = self.step(x, self.sigma)
            if self.tuner is not None:
                self.tuner.after_step()
            first = terms[0] if first is None else first
            sums += terms
            n += 1
        # the epoch's first loss was computed at ``start``: finite means start is sound
        if math.isfinite(float(self.comm.all_mean(first))):
            self._verified = start
        means = self.comm.all_mean(sums / max(n, 1))
        total, recon, sparsity = (float(v) for v in means.cpu())
        if not math.isfinite(total):
            raise self._diverged(total, f"in epoch {len(self.history) + 1}")
        rec = {"stage": self.stage, "sigma": self.sigma, "epoch": len(self.history) + 1,
               "loss": total, "reconstruction": recon, "sparsity": sparsity}
        rec.update(self._watch(batches, generator))
        now = time.perf_counter()
        rec.update(seconds=now - self._clock, threads=torch.get_num_threads())
        self._clock = now
        self.history.append(rec)
        return rec

    def _watch(self, batches: Batches, generator: torch.Generator) -> dict:
        """The epoch's firing and L0 figures; dead units resampled where asked."""
        if self.tracker is None:
            return {}
        rec = {"l0": self._l0_sum / max(self._l0_n, 1),
               "dead_fraction": self.tracker.dead_fraction()}
        self._l0_sum, self._l0_n = 0.0, 0
        if self.controller is not None:
            rec[self.controller.param] = self.controller.weight
        if self.revive == "resample" and bool(self.tracker.dead().any()):
            n = resample_dead(self.module, self.tracker.dead(), batches.sample(4096, generator),
                              self.optimizer, generator)
            self.tracker.since[self.tracker.dead()] = 0  # a fresh unit gets a fresh window
            rec["resampled"] = n
        return rec

    def fit(self, batches: Batches, sigmas: Sequence[float | None], epochs: Sequence[int],
            generator: torch.Generator, max_epochs: int | None = None) -> list[dict]:
        """Train along the σ stages (``epochs[k]`` epochs at ``sigmas[k]``); returns the
        per-epoch history. With a stopper and ``max_epochs``, the last stage runs on until the
        rule stops it, at most ``max_epochs`` epochs in all. Raises
        :class:`TrainingDivergedError` after restoring the last good parameters if the loss
        stops being finite."""
        self._bar = tqdm(total=sum(epochs), desc=f"fit {self.objective.penalty}",
                         disable=not self.progress, unit="epoch", leave=False)
        self._clock = time.perf_counter()
        self.plan = list(epochs)
        self._extra = max(0, (max_epochs or 0) - sum(self.plan)) if self.stopper else 0
        try:
            for k, sigma in enumerate(sigmas):
                self.stage = k
                self.new_stage(sigma)
                last = k == len(sigmas) - 1
                if self.stopper is not None:
                    self.stopper.new_stage(last=last)
                if self.controller is not None:
                    self._steer(k, sigmas, self.plan, batches)
                if self._run_stage(k, last, batches, generator):
                    self.stopped_early = True
                    break
            final = self._final_loss(batches, sigmas[-1])
            if not math.isfinite(final):
                raise self._diverged(final, "at the end of training")
        finally:
            self._bar.close()
        return self.history

    def _run_stage(self, k: int, last: bool, batches: Batches,
                   generator: torch.Generator) -> bool:
        """The epochs of stage ``k``; whether the stopping rule ended training. A stage before
        the last that has settled gives its remaining epochs to the last; the last may run
        ``_extra`` epochs past its plan while the rule has not stopped it."""
        sigma = self.sigma
        for done in range(1, self.plan[k] + 1 + (self._extra if last else 0)):
            rec = self.epoch(batches, generator)
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{rec['loss']:.4g}", sigma=sigma)
            if last and self._converged(rec):
                self._end_on_best(rec)
                return True
            if not last and self._settled(rec):
                self.plan[-1] += self.plan[k] - done
                self.plan[k] = done
                break
        if last and self.stopper is not None and self.history:
            self._end_on_best(self.history[-1])
        return False

    def _end_on_best(self, rec: dict) -> None:
        """Back to the last stage's best parameters by validation RE; the record says so."""
        if "val_re" in rec and self.stopper.restore_best(self.module, rec["val_re"]):
            rec["restored_best"] = self.stopper.best_state_re

    def _converged(self, rec: dict) -> bool:
        """The stopper's verdict in the last stage (validation RE joins the epoch record)."""
        if self.stopper is None:
            return False
        c = self.controller
        on_target = c is None or (c.ramped and c.on_target(rec.get("l0", 0.0)))
        rec["val_re"], stop = self.stopper.after_epoch(self, on_target)
        rec["lr"] = self.lr
        return stop

    def _settled(self, rec: dict) -> bool:
        """Whether a stage before the last may hand over: it has stopped improving, and no
        controller is steering in it (a steered stage's RE rises with the sparsity it is
        asked for, which is no plateau)."""
        if self.stopper is None or (self.controller is not None and not self.controller.frozen):
            return False
        rec["val_re"] = re = self.stopper.observe(self.module)
        return self.stopper.settled(re)

    def _steer(self, k: int, sigmas, epochs, batches: Batches) -> None:
        """The controller steers in the stages whose σ is within 2x of the last (a wide σ cannot
        make codes exactly sparse); when it first may, it learns how long it has."""
        active = [s is None or s <= 2 * sigmas[-1] for s in sigmas]
        was_frozen = self.controller.frozen or k == 0
        self.controller.frozen = not active[k]
        if active[k] and was_frozen:
            n = len(batches) if self.solver == "adam" else 1
            self.controller.start(n * sum(e for e, a in zip(epochs[k:], active[k:],
                                                            strict=True) if a))

    # ------------------------------------------------------------------ divergence
    def _final_loss(self, batches: Batches, sigma: float | None) -> float:
        """The cost at the final parameters on one batch (the last step's result is never seen
        by the training loop itself)."""
        with torch.no_grad():
            x = next(iter(batches.epoch(torch.Generator().manual_seed(0))))
            total, _, _ = self.loss(x, sigma, net=self.module)
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
