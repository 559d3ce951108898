"""SAE+Ber: reconstruction plus β times the KL divergence of each unit's mean activation ρ̂_i
from a Bernoulli target ρ."""

from __future__ import annotations

from ..penalties import kl_penalty
from .mechanism import Mechanism


def _penalty(h, sigma, settings, **extra):
    # ρ̂ is the batch mean: under data parallelism, each worker's own batch
    return kl_penalty(h, float(settings["rho"]))


KL = Mechanism(
    name="kl", label="SAE+Ber",
    summary="KL/Bernoulli-penalised autoencoder (SAE+Ber)",
    formula="(1/2N) Σ_j ‖x_j − y_j‖² + β Σ_i KL(ρ ‖ ρ̂_i)",
    params=("beta", "rho"),
    defaults={"beta": 0.01},
    penalty=_penalty,
    weights=lambda s: (0.5, float(s["beta"])),
    grid=tuple({"beta": b, "rho": r} for b in (0.003, 0.01, 0.1) for r in (0.05, 0.1)),
    quick_grid=tuple({"beta": b, "rho": 0.05} for b in (0.01, 0.1)),
)
