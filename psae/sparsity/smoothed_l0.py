"""PSAE (eq. 9): the squared smoothed L0 norm of each code, and its unsquared ablation.

Squaring the per-sample count makes the optimiser prefer codes whose sparsity is even across
samples (the paper's toy example, SPEC.md); σ follows a decreasing schedule (graduated
non-convexity) so the smoothed count approaches the true one.
"""

from __future__ import annotations

from dataclasses import replace

from ..penalties import smoothed_l0
from .mechanism import Mechanism

_SCHEDULES = ((1.0, 0.5, 0.2, 0.1), (0.5, 0.2, 0.1, 0.05))


def _squared(h, sigma, settings, **extra):
    """Eq. (7) per sample, averaged: ``mean_j L0σ(h_j)²``."""
    return smoothed_l0(h, sigma).square().mean()


def _unsquared(h, sigma, settings, **extra):
    return smoothed_l0(h, sigma).mean()


def _weights(s):
    return 0.5 * float(s["lam"]), 0.5


SQL0 = Mechanism(
    name="sql0", label="PSAE",
    summary="PSAE: squared smoothed L0 of each code (the paper's model, eq. 9)",
    formula="(1/2N) Σ_j L0σ(h_j)² + (λ/2N) Σ_j ‖x_j − y_j‖²",
    params=("lam", "sigmas"),
    penalty=_squared,
    weights=_weights,
    uses_sigma=True,
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
    grid=tuple({"lam": lam} for lam in (1.0, 3.0, 10.0)),
    quick_grid=tuple({"lam": lam} for lam in (1.0, 10.0)),
)
