"""The paper's square on JumpReLU's exact L0: ``β Σ_j (Σ_i H(a_ji − θ_i))²``.

PSAE's idea is the square: penalising ``Σ_j L0(h_j)²`` rather than ``Σ_j L0(h_j)`` makes the
optimiser prefer codes whose sparsity is even across samples (SPEC.md's toy example). PSAE
reaches it through a smoothed L0 on sigmoid units; here it is put on the exact count of JumpReLU
units, with JumpReLU's straight-through pseudo-derivatives (docs/SPEC.md, next to eq. 10-11):
``∂L0_j²/∂θ_i := 2 · L0_j · (−1/ε) · K((a_ji − θ_i)/ε)``. No sparse-autoencoder toolkit offers it.
"""

from __future__ import annotations

from dataclasses import replace

from .jumprelu import JUMPRELU


def squared_l0_penalty(h, sigma, settings, gate=None, **extra):
    """``mean_j (Σ_i H(a_ji − θ_i))²``: the exact per-sample L0, squared, averaged."""
    return gate.sum(dim=1).square().mean()


SQJUMPRELU = replace(
    JUMPRELU, name="sqjumprelu", label="JumpReLU + squared L0",
    summary="JumpReLU with the paper's square on the exact per-sample L0",
    formula="(1/2N) Σ_j ‖x_j − x̂_j‖² + (β/N) Σ_j (Σ_i H(a_ji − θ_i))²",
    penalty=squared_l0_penalty,
    # an L0² of ~L0 times the L0 term's size: the weight scales down by the count (~20)
    defaults={"beta": 5e-5, "bandwidth": JUMPRELU.defaults["bandwidth"]},
    grid=tuple({"beta": b} for b in (1.5e-5, 5e-5, 1.5e-4)),
    quick_grid=tuple({"beta": b} for b in (5e-5, 5e-4)),
    key="",
)
