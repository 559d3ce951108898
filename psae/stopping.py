"""When training has converged: validation RE on a plateau, twice.

:class:`Plateau` watches the reconstruction error of a held-out part of the training data after
every epoch. When it has not improved by more than ``tol`` (relative) for ``patience`` epochs,
the learning rate drops by ``factor`` and the watch starts again; the second plateau ends
training. Models with a σ schedule stop only in their last stage, and a model steering toward
a target L0 only once its setpoint has arrived and its L0 is within 5 % of the target.

No plateau counts before the model has left its start: until the best validation RE explains
at least ``learned`` of the held-out rows' variance (FVU ≤ 1 − ``learned``), a flat RE is a model
that has not begun to learn (an autoencoder on binary images can sit near its initial FVU of 1
for many epochs), not one that has converged; such a fit runs to its epoch cap, which its
record shows.
"""

from __future__ import annotations

import math

import torch

__all__ = ["Plateau"]


class Plateau:
    """Reduce-on-plateau, then stop on the next plateau, from validation RE."""

    def __init__(self, X_val: torch.Tensor, tol: float = 0.005, patience: int = 3,
                 factor: float = 0.3, batch: int = 8192, learned: float = 0.1):
        self.X_val, self.tol, self.patience, self.factor = X_val, tol, patience, factor
        self.batch = batch
        self.best = math.inf
        self.waited = 0
        self.reduced = False
        # RE of predicting each held-out row by the held-out mean: the FVU denominator
        self.variance = float((X_val - X_val.mean(dim=0)).square().sum()) / max(
            X_val.numel(), 1)
        self.learned = learned

    @property
    def left_start(self) -> bool:
        """Whether the best validation RE is clearly below the variance (FVU ≤ 1 − learned)."""
        return self.best <= (1.0 - self.learned) * self.variance

    @torch.no_grad()
    def validation_re(self, module) -> float:
        """Mean per-sample ‖x − y‖² / D of the held-out rows, with the code in inference mode."""
        was_training = module.training
        module.eval()
        total = 0.0
        for s in range(0, self.X_val.shape[0], self.batch):
            x = self.X_val[s:s + self.batch]
            total += float((x - module(x).y).square().sum())
        module.train(was_training)
        return total / self.X_val.numel()

    def after_epoch(self, trainer, may_stop: bool) -> tuple[float, bool]:
        """(validation RE, whether to stop); lowers the trainer's learning rate once."""
        re = self.validation_re(trainer.module)
        if re < self.best * (1.0 - self.tol):
            self.best, self.waited = re, 0
            return re, False
        self.waited += 1
        if not self.left_start:  # a start that has not been left is no plateau
            self.waited = 0
            return re, False
        if self.waited < self.patience or not may_stop:
            return re, False
        if not self.reduced:
            self.reduced, self.waited, self.best = True, 0, re
            trainer.scale_lr(self.factor)
            return re, False
        return re, True
