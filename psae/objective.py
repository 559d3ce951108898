"""Training costs: eq. (9) for PSAE and reconstruction + β·penalty for the baselines.

Every term is a mean over the samples of a batch, so a mini-batch cost is an unbiased estimate of
the full-data cost and gradients average correctly across data-parallel workers (KL's batch mean
ρ̂ is the one exception: it is taken over each worker's batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .network import Autoencoder
from .penalties import PENALTIES, kl_penalty, l1_penalty, smoothed_l0

__all__ = ["Objective", "uses_sigma"]


def uses_sigma(penalty: str) -> bool:
    """Whether ``penalty`` is a smoothed-L0 cost with a σ (GNC) schedule."""
    return penalty in ("sql0", "l0")


@dataclass(frozen=True)
class Objective:
    """One penalty and its weights; call it on a batch to get (total, reconstruction, sparsity).

    - ``"sql0"`` (PSAE), eq. (9): ``(1/2N) Σ_j L0σ(h_j)² + (λ/2N) Σ_j ‖x_j − y_j‖²``
    - ``"l0"`` (ablation): the same with ``L0σ(h_j)`` unsquared
    - ``"none"`` (RAE): ``(1/2N) Σ_j ‖x_j − y_j‖²``
    - ``"l1"`` (SAE+L1): ``(1/2N) Σ_j ‖x_j − y_j‖² + (β/N) Σ_j Σ_i |h_ij|``
    - ``"kl"`` (SAE+Ber): ``(1/2N) Σ_j ‖x_j − y_j‖² + β Σ_i KL(ρ ‖ ρ̂_i)``

    plus ``(weight_decay/2)(‖W1‖² + ‖W2‖²)`` when ``weight_decay > 0``.
    The returned reconstruction is the per-sample ``‖x − y‖²`` averaged over the batch, and the
    sparsity is the penalty term before its weight.
    """

    penalty: str = "sql0"
    lam: float = 1.0
    beta: float = 0.0
    rho: float = 0.05
    weight_decay: float = 0.0

    def __post_init__(self):
        if self.penalty not in PENALTIES:
            raise ValueError(f"unknown penalty {self.penalty!r}; choose one of {PENALTIES}")

    def __call__(
        self, model: Autoencoder | torch.nn.Module, x: torch.Tensor, sigma: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h, y = model(x)
        recon = (x - y).square().sum(dim=1).mean()
        p = self.penalty
        if p == "none":
            sparsity = recon.new_zeros(())
            total = 0.5 * recon
        elif p in ("sql0", "l0"):
            l0 = smoothed_l0(h, sigma)
            sparsity = (l0.square() if p == "sql0" else l0).mean()
            total = 0.5 * sparsity + (0.5 * self.lam) * recon
        elif p == "l1":
            sparsity = l1_penalty(h).mean()
            total = 0.5 * recon + self.beta * sparsity
        else:  # "kl"
            sparsity = kl_penalty(h, self.rho)
            total = 0.5 * recon + self.beta * sparsity
        if self.weight_decay > 0:
            ae = getattr(model, "module", model)  # unwrap DistributedDataParallel
            total = total + (0.5 * self.weight_decay) * (
                ae.W1.square().sum() + ae.W2.square().sum()
            )
        return total, recon, sparsity
