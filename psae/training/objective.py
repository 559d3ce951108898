"""The training cost as a pure function of tensors: ``(x, h, y, σ) → (total, reconstruction,
sparsity)``.

The forward pass, weight decay and the optimiser belong to :mod:`psae.training.trainer`; this
module only weighs reconstruction against a mechanism's sparsity term (:mod:`psae.sparsity`).
Every term is a mean over the samples of a batch, so a mini-batch cost is an unbiased estimate of
the full-data cost and gradients average correctly across data-parallel workers (KL's batch
mean ρ̂ is the one exception: it is taken over each worker's batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .. import sparsity
from ..sparsity import Mechanism

__all__ = ["Objective"]


@dataclass(frozen=True)
class Objective:
    """A mechanism's cost at fixed settings: ``w_r · mean_j ‖x_j − y_j‖² + w_s · sparsity``.

    E.g. PSAE, eq. (9): ``(1/2N) Σ_j L0σ(h_j)² + (λ/2N) Σ_j ‖x_j − y_j‖²``; each mechanism's
    formula is in its record (``psae.sparsity.get(name).formula``). The returned reconstruction
    is the per-sample ``‖x − y‖²`` averaged over the batch, and the sparsity is the penalty
    term before its weight.
    """

    mechanism: Mechanism
    settings: Mapping[str, Any]

    @classmethod
    def of(cls, penalty: str, **params) -> Objective:
        """The objective of the mechanism called ``penalty`` with ``params`` (defaults filled)."""
        mech = sparsity.get(penalty)
        return cls(mech, mech.settings(params))

    @property
    def penalty(self) -> str:
        return self.mechanism.name

    def __call__(
        self, x: torch.Tensor, h: torch.Tensor, y: torch.Tensor, sigma: float | None = None,
        **extra: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        recon = (x - y).square().sum(dim=1).mean()
        w_recon, w_sparsity = self.mechanism.weights(self.settings)
        if self.mechanism.penalty is None:
            return w_recon * recon, recon, recon.new_zeros(())
        sparse = self.mechanism.penalty(h, sigma, self.settings, x=x, y=y, **extra)
        return w_recon * recon + w_sparsity * sparse, recon, sparse
