"""JumpReLU (Rajamanoharan et al., 2024): ``h_i = a_i · H(a_i − θ_i)`` with a learned threshold
θ_i > 0 per unit (stored as log θ) and an exact L0 penalty ``β Σ_i H(a_i − θ_i)``.

H has zero derivative almost everywhere, so θ learns through straight-through
pseudo-derivatives with the rectangle kernel K(u) = 1[|u| ≤ 1/2] and bandwidth ε:
``∂h_i/∂θ_i := −(θ_i/ε) K((a_i − θ_i)/ε)`` and ``∂H(a_i − θ_i)/∂θ_i := −(1/ε) K((a_i − θ_i)/ε)``;
the gradients with respect to a_i are the true ones (``H(a_i − θ_i)`` for h_i, 0 for the L0
term). The threshold is applied once (MODERN.md: public code has applied it twice).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .mechanism import Mechanism

THETA_INIT = 1e-3
BANDWIDTH = 0.05


def in_kernel(a: torch.Tensor, theta: torch.Tensor, eps: float) -> torch.Tensor:
    """Where the rectangle kernel ``K((a − θ)/ε)`` is 1 (a boolean mask)."""
    return (a - theta).abs() <= 0.5 * eps


def _kernel(a: torch.Tensor, theta: torch.Tensor, eps: float) -> torch.Tensor:
    """``K((a − θ)/ε)`` for the rectangle kernel."""
    return in_kernel(a, theta, eps).to(a.dtype)


class _Jump(torch.autograd.Function):
    """``a · H(a − θ)`` with the straight-through θ-gradient."""

    @staticmethod
    def forward(ctx, a, theta, eps):
        ctx.save_for_backward(a, theta)
        ctx.eps = eps
        return a * (a > theta)

    @staticmethod
    def backward(ctx, g):
        a, theta = ctx.saved_tensors
        g_theta = -(theta / ctx.eps) * (g * _kernel(a, theta, ctx.eps)).sum(dim=0)
        return g * (a > theta), g_theta, None


class _Step(torch.autograd.Function):
    """``H(a − θ)``: no gradient to a, the straight-through one to θ."""

    @staticmethod
    def forward(ctx, a, theta, eps):
        ctx.save_for_backward(a, theta)
        ctx.eps = eps
        return (a > theta).to(a.dtype)

    @staticmethod
    def backward(ctx, g):
        a, theta = ctx.saved_tensors
        return None, -(g * _kernel(a, theta, ctx.eps)).sum(dim=0) / ctx.eps, None


class JumpReLU(nn.Module):
    """JumpReLU units; ``extra`` hands the objective the gates ``H(a − θ)`` for the L0 count."""

    def __init__(self, n_components: int, bandwidth: float = BANDWIDTH,
                 theta_init: float = THETA_INIT):
        super().__init__()
        self.bandwidth = float(bandwidth)
        self.log_threshold = nn.Parameter(torch.full((n_components,), math.log(theta_init)))

    @property
    def threshold(self) -> torch.Tensor:
        return self.log_threshold.exp()

    @torch.no_grad()
    def start_firing(self, a: torch.Tensor, fraction: float) -> None:
        """Thresholds where each unit fires on ``fraction`` of the inputs whose pre-activations
        are ``a``: training starts near the sparsity it is asked for, instead of climbing to it
        at Adam's pace from θ = 0.001."""
        q = torch.quantile(a.float(), 1.0 - fraction, dim=0)
        self.log_threshold.copy_(q.clamp_min(THETA_INIT).log())

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return _Jump.apply(a, self.threshold.to(a.dtype), self.bandwidth)

    def extra(self, a: torch.Tensor, h: torch.Tensor, net) -> dict:
        return {"gate": _Step.apply(a, self.threshold.to(a.dtype), self.bandwidth)}


def l0_penalty(h, sigma, settings, gate=None, **extra):
    """``mean_j Σ_i H(a_ji − θ_i)``: the exact per-sample L0, averaged."""
    return gate.sum(dim=1).mean()


JUMPRELU = Mechanism(
    name="jumprelu", label="JumpReLU",
    summary="JumpReLU: learned per-unit thresholds, exact L0 penalty (straight-through)",
    formula="(1/2N) Σ_j ‖x_j − x̂_j‖² + (β/N) Σ_j Σ_i H(a_ji − θ_i)",
    params=("beta", "bandwidth", "target_l0"),
    defaults={"beta": 1e-3, "bandwidth": BANDWIDTH},
    penalty=l0_penalty,
    weights=lambda s: (0.5, float(s["beta"])),
    code=lambda m, s: JumpReLU(m, s["bandwidth"]),
    decoder="identity", pre_bias=True, tied_init=True,
    knob=("beta", +1.0),
    grid=tuple({"beta": b} for b in (3e-4, 1e-3, 3e-3)),
    quick_grid=tuple({"beta": b} for b in (1e-3, 1e-2)),
)
