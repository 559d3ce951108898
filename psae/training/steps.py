"""One optimiser step of the :class:`~psae.training.trainer.Trainer`, taken one of three ways,
chosen once per trainer by :func:`choose_step`:

- :class:`LbfgsStep`: one L-BFGS iteration on the full batch (autograd inside the closure its
  line search calls);
- the hand-derived gradients: :class:`FusedStep` for the paper's sigmoid models
  (:mod:`psae.training.fused`), :class:`SparseStep` for the sparse codes
  (:mod:`psae.training.fused_sparse`), each with fused Adam;
- :class:`AutogradStep`: the forward pass, the objective and autograd's backward, for
  everything else.

A step is called as ``step(trainer, x, sigma, dead)`` (``dead``: the units AuxK trains, for the
steps that take it) and returns ``(terms, h)``: the batch's (total, reconstruction, sparsity)
at the parameters it started from, detached, and its codes (None where the codes are not
watched: L-BFGS).
"""

from __future__ import annotations

import torch

from .fused import fusable, fused_gradients
from .fused_sparse import sparse_fusable, sparse_gradients
from .network import Autoencoder
from .objective import Objective

__all__ = ["Step", "LbfgsStep", "FusedStep", "SparseStep", "AutogradStep", "choose_step"]


class Step:
    """One way of taking a step (subclasses define ``__call__``)."""

    hand_derived = False
    """Whether the gradients are written out by hand (no autograd graph)."""
    takes_dead = False
    """Whether the step trains AuxK on the dead units it is handed."""
    dead: torch.Tensor | None = None
    """The dead mask the last step's forward pass carried (the final loss is taken with it)."""

    def __call__(self, trainer, x: torch.Tensor, sigma: float | None,
                 dead: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError


class LbfgsStep(Step):
    """One L-BFGS iteration on ``x`` (the whole data set)."""

    def __call__(self, trainer, x, sigma, dead):
        opt = trainer.optimizer
        evals = []

        def closure():
            opt.zero_grad(set_to_none=True)
            total, recon, sparse = trainer.loss(x, sigma)
            total.backward()
            evals.append(torch.stack([total.detach(), recon.detach(), sparse.detach()]))
            return trainer.comm.all_mean(total.detach())

        opt.step(closure)
        # an iteration's first evaluation is at its starting point, not a line-search trial
        return evals[0], None


class FusedStep(Step):
    """The sigmoid models' hand-derived gradients (:func:`fused_gradients`), then Adam."""

    hand_derived = True

    def __call__(self, trainer, x, sigma, dead):
        terms, h = fused_gradients(trainer.module, trainer.objective, x, sigma,
                                   trainer.precision, trainer.weight_decay)
        trainer.comm.average_gradients(trainer.module)
        trainer.optimizer.step()
        return terms, h


class SparseStep(Step):
    """The sparse codes' hand-derived gradients (:func:`sparse_gradients`, AuxK on ``dead``),
    then Adam, on the unit sphere where ``unit_norm`` asks."""

    hand_derived = True
    takes_dead = True

    def __init__(self, unit_norm: bool = False):
        self.unit_norm = unit_norm

    def __call__(self, trainer, x, sigma, dead):
        module = trainer.module
        terms, h = sparse_gradients(module, trainer.objective, x, trainer.precision,
                                    trainer.weight_decay, dead)
        trainer.comm.average_gradients(module)
        if self.unit_norm:
            module.project_decoder_grad()
        trainer.optimizer.step()
        if self.unit_norm:
            module.normalise_decoder()
        return terms, h


class AutogradStep(Step):
    """Forward, objective, autograd's backward, then the optimiser; ``dead`` goes with the
    forward pass to the code layer (AuxK's units), on the unit sphere where ``unit_norm``
    asks."""

    takes_dead = True

    def __init__(self, unit_norm: bool = False):
        self.unit_norm = unit_norm

    def __call__(self, trainer, x, sigma, dead):
        self.dead = dead  # AuxK's dead units
        opt, module = trainer.optimizer, trainer.module
        opt.zero_grad(set_to_none=True)
        total, recon, sparse, h = trainer.loss_and_codes(x, sigma, dead=dead)
        total.backward()
        if self.unit_norm:
            module.project_decoder_grad()
        opt.step()
        if self.unit_norm:
            module.normalise_decoder()
        return torch.stack([total.detach(), recon.detach(), sparse.detach()]), h


def choose_step(module: Autoencoder, objective: Objective, solver: str,
                fused: bool | None = None) -> Step:
    """The step for this model: L-BFGS for ``solver="lbfgs"``; else the hand-derived step
    where it applies (``fused``: None decides, True forces the sigmoid models' one, False
    takes autograd), else autograd."""
    unit_norm = objective.mechanism.unit_norm_decoder
    if solver == "lbfgs":
        return LbfgsStep()
    if fusable(module, objective, solver) if fused is None else fused:
        return FusedStep()
    if fused is not False and sparse_fusable(module, objective, solver):
        return SparseStep(unit_norm)
    return AutogradStep(unit_norm)
