"""When training has converged: validation RE on a plateau, twice.

:class:`Plateau` watches the reconstruction error of a held-out part of the training data after
every epoch. When it has not improved by more than ``tol`` (relative) for ``patience`` epochs,
the learning rate drops by ``factor`` and the watch starts again; the second plateau ends
training. Models with a σ schedule stop only in their last stage, and a model steering toward
a target L0 only once its setpoint has arrived and its L0 is on target.

With an inference threshold to come (``target_l0``), the last stage watches the RE of the codes
the fit will be judged on: trimmed to the target's mean L0 on the held-out rows. Their raw RE
can go on falling while the trimmed codes get worse (a sigmoid code spreads its information
into small activations the threshold removes: on OPTDIGITS, PSAE at L0 10 had FVU 0.07 raw
against 0.81 trimmed after 200 epochs).

Each σ stage is watched afresh (:meth:`Plateau.new_stage`): a smaller σ makes codes sparser and
RE higher, so the best RE of an earlier stage says nothing about convergence in this one. An
earlier stage only warm-starts the next (graduated non-convexity needs an approximate minimum,
not a converged one), so it ends once it improves by less than ``stage_tol`` for ``patience``
epochs (:meth:`Plateau.settled`), and the trainer gives its unused epochs to the last stage.
The last stage ends on the parameters of its best epoch on target
(:meth:`Plateau.restore_best`), as scikit-learn's early stopping ends on its best.

No plateau counts before the model has left its start: until the best validation RE of its raw
codes explains at least ``learned`` of the held-out rows' variance (FVU ≤ 1 − ``learned``), a
flat RE is a model that has not begun to learn (an autoencoder on binary images can sit near
its initial FVU of 1 for many epochs), not one that has converged; such a fit runs to its epoch
cap, which its record shows. The trimmed codes' RE may stay near the variance in a model that
has learned (a sigmoid code trimmed to a small L0), so it does not decide this.
"""

from __future__ import annotations

import math

import torch

from ..metrics import calibrated_threshold
from .sparse_products import decode_rows, use_sparse_products

__all__ = ["Plateau"]

FLOOR = 0.1  # progress is measured against at least this share of the held-out variance


class Plateau:
    """Reduce-on-plateau, then stop on the next plateau, from validation RE."""

    def __init__(self, X_val: torch.Tensor, tol: float = 0.005, patience: int = 3,
                 factor: float = 0.3, batch: int = 8192, learned: float = 0.1,
                 stage_tol: float = 0.02, target_l0: float | None = None):
        self.X_val, self.tol, self.patience, self.factor = X_val, tol, patience, factor
        self.target_l0 = target_l0
        self.stage_tol = stage_tol
        self.batch = batch
        self.best = math.inf
        self.waited = 0
        self.reduced = False
        # RE of predicting each held-out row by the held-out mean: the FVU denominator
        self.variance = float((X_val - X_val.mean(dim=0)).square().sum()) / max(
            X_val.numel(), 1)
        self.learned = learned
        self.stage_best, self.stage_waited = math.inf, 0
        self.trim = target_l0 is not None  # watch the trimmed codes (only the last stage's)
        # best validation RE of the raw codes over the whole fit: whether it has left its start
        self.lowest_raw = math.inf
        self.best_state, self.best_state_re = None, math.inf

    def _improves(self, re: float, best: float, tol: float) -> bool:
        """Whether ``re`` beats ``best`` by ``tol`` of it, or of a tenth of the held-out variance
        when ``best`` is below that (FVU < 0.1): an overcomplete RAE on MNIST went on gaining
        0.2 % an epoch at FVU 0.017, 3·10⁻⁵ of the variance, for 100 epochs."""
        if not math.isfinite(best):
            return True
        return best - re > tol * max(best, FLOOR * self.variance)

    def new_stage(self, last: bool = True) -> None:
        """Watch a new σ stage from scratch (its RE is not comparable with the last one's); a
        stage before the last is judged on its raw codes: it only has to warm-start the next."""
        self.best, self.waited = math.inf, 0
        self.stage_best, self.stage_waited = math.inf, 0
        self.trim = last and self.target_l0 is not None
        self.best_state, self.best_state_re = None, math.inf

    def keep_if_best(self, module, re: float) -> None:
        """Remember the parameters of the stage's lowest validation RE on target (the fit ends
        on them: trimmed codes can get worse while raw ones still improve)."""
        if re < self.best_state_re:
            self.best_state_re = re
            self.best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def restore_best(self, module, re: float) -> bool:
        """Load the remembered parameters if they beat the last epoch's ``re``."""
        if self.best_state is None or self.best_state_re >= re:
            return False
        module.load_state_dict(self.best_state)
        return True

    def settled(self, re: float) -> bool:
        """Whether a non-final stage has done its part: ``patience`` epochs without a gain of
        ``stage_tol``, after the model has left its start."""
        if self._improves(re, self.stage_best, self.stage_tol):
            self.stage_best, self.stage_waited = re, 0
            return False
        self.stage_waited += 1
        return self.left_start and self.stage_waited >= self.patience

    @property
    def left_start(self) -> bool:
        """Whether the best validation RE of the raw codes is clearly below the variance
        (FVU ≤ 1 − learned). Not the trimmed codes': PSAE's at L0 10 on MNIST (seeds 1, 2)
        never explained 10 % of the held-out variance (test FVU 1.02 and 1.07: the information
        lies in activations under the threshold) while the raw codes explained about 80 %
        (FVU 0.22, 0.20), and the fits, waiting for the trimmed codes, ran to the epoch cap."""
        return self.lowest_raw <= (1.0 - self.learned) * self.variance

    @torch.no_grad()
    def validation_re(self, module) -> float:
        """Mean per-sample ‖x − y‖² / D of the held-out rows, with the code in inference mode;
        with ``target_l0``, of the codes the fit will be judged on: trimmed at the threshold
        that puts the held-out mean L0 on the target, as calibration will trim them."""
        was_training = module.training
        module.eval()
        try:
            if self.trim:
                return self._trimmed_re(module)
            total = 0.0
            for s in range(0, self.X_val.shape[0], self.batch):
                x = self.X_val[s:s + self.batch]
                total += float((x - _decode(module, module.encode(x))).square().sum())
            return total / self.X_val.numel()
        finally:
            module.train(was_training)

    def _trimmed_re(self, module) -> float:
        """RE of the held-out codes trimmed as calibration will trim them
        (:func:`psae.metrics.calibrated_threshold`: the held-out mean L0 on the target, never
        a threshold under the default one); that of the raw codes joins ``lowest_raw`` (whether
        the model has left its start is a question about the model, not about the trim)."""
        H = torch.cat([module.encode(self.X_val[s:s + self.batch]).float()
                       for s in range(0, self.X_val.shape[0], self.batch)])
        theta = calibrated_threshold(H.cpu().numpy(), self.target_l0)
        trimmed = H * (H.abs() > theta)
        total = raw = 0.0
        for s in range(0, H.shape[0], self.batch):
            x = self.X_val[s:s + self.batch]
            total += float((x - _decode(module, trimmed[s:s + self.batch])).square().sum())
            raw += float((x - _decode(module, H[s:s + self.batch])).square().sum())
        self.lowest_raw = min(self.lowest_raw, raw / self.X_val.numel())
        return total / self.X_val.numel()

    def observe(self, module) -> float:
        """This epoch's validation RE (of the raw codes, remembered as the fit's lowest if it
        is; of the trimmed ones in a trimmed stage, which remembers the raw RE itself)."""
        re = self.validation_re(module)
        if not self.trim:
            self.lowest_raw = min(self.lowest_raw, re)
        return re

    def after_epoch(self, trainer, may_stop: bool) -> tuple[float, bool]:
        """(validation RE, whether to stop); lowers the trainer's learning rate once."""
        re = self.observe(trainer.module)
        if may_stop:  # only parameters on target may be the ones the fit ends on
            self.keep_if_best(trainer.module, re)
        if self._improves(re, self.best, self.tol):
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


def _decode(module, h: torch.Tensor) -> torch.Tensor:
    """``module.decode(h)``; a code sparse enough for :func:`use_sparse_products` decoded as a
    bag of atoms per row. The held-out codes are decoded up to twice an epoch, and a dense
    decode of 6,000 JumpReLU codes at M = 1,000 cost 55 ms of a 2.4 s MNIST epoch."""
    if module.decoder_activation == "identity" and use_sparse_products(
            h, int(torch.count_nonzero(h)), module.precision, module.atoms.shape[1]):
        return decode_rows(h, module.atoms).add_(module.b2)
    return module.decode(h)
