"""PSAE (eq. 9): the squared smoothed L0 norm of each code, and its unsquared ablation.

Squaring the per-sample count makes the optimiser prefer codes whose sparsity is even across
samples (the paper's toy example, SPEC.md); σ follows a decreasing schedule (graduated
non-convexity) so the smoothed count approaches the true one.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..penalties import smoothed_l0
from .mechanism import Mechanism

_SCHEDULES = ((1.0, 0.5, 0.2, 0.1), (0.5, 0.2, 0.1, 0.05))


def _squared(h, sigma, settings, **extra):
    """Eq. (7) per sample, averaged: ``mean_j L0σ(h_j)²``."""
    return smoothed_l0(h, sigma).square().mean()


def _unsquared(h, sigma, settings, **extra):
    return smoothed_l0(h, sigma).mean()


def _grads(squared: bool):
    def grad(h, sigma, settings):
        """``mean_j L0σ(h_j)^p`` and, SPEC.md's corrected eq. (11),
        ``∂/∂h_ij = p · L0σ(h_j)^(p−1) · (h_ij/σ²) · exp(−h_ij²/2σ²) / N`` (p = 2, or 1)."""
        n, m = h.shape
        e = h.square().mul_(-0.5 / sigma**2).exp_()
        l0 = m - e.sum(dim=1, keepdim=True)
        value = (l0.square() if squared else l0).sum() / n
        scale = (2.0 * l0 if squared else torch.ones_like(l0)).div_(n * sigma**2)
        return value, e.mul_(h).mul_(scale)
    return grad


def _weights(s):
    return 0.5 * float(s["lam"]), 0.5


SQL0 = Mechanism(
    name="sql0", label="PSAE",
    summary="PSAE: squared smoothed L0 of each code (the paper's model, eq. 9)",
    formula="(1/2N) Σ_j L0σ(h_j)² + (λ/2N) Σ_j ‖x_j − y_j‖²",
    params=("lam", "sigmas", "target_l0"),
    penalty=_squared,
    penalty_grad=_grads(squared=True),
    weights=_weights,
    uses_sigma=True,
    knob=("lam", -1.0),
    grid=tuple({"lam": lam, "sigmas": list(s)} for lam in (3.0, 10.0, 30.0) for s in _SCHEDULES),
    quick_grid=tuple({"lam": lam, "sigmas": list(_SCHEDULES[0])} for lam in (3.0, 30.0)),
    key="psae",
)

L0 = replace(
    SQL0,
    name="l0", label="SAE+L0 (unsquared)",
    key="l0",
    summary="ablation: PSAE without the square",
    formula="(1/2N) Σ_j L0σ(h_j) + (λ/2N) Σ_j ‖x_j − y_j‖²",
    penalty=_unsquared,
    penalty_grad=_grads(squared=False),
    grid=tuple({"lam": lam} for lam in (1.0, 3.0, 10.0)),
    quick_grid=tuple({"lam": lam} for lam in (1.0, 10.0)),
)
