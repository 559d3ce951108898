"""RAE: the plain autoencoder, reconstruction only (the paper's baseline without sparsity)."""

from __future__ import annotations

from .mechanism import Mechanism

NONE = Mechanism(
    name="none", label="RAE",
    summary="plain autoencoder (RAE): reconstruction only",
    formula="(1/2N) Σ_j ‖x_j − y_j‖²",
    weights=lambda s: (0.5, 0.0),
    penalty_grad=lambda h, sigma, settings: (h.new_zeros(()), None),
    key="rae",
)
