"""Sparsity penalties on a batch of codes ``H`` of shape (N, M), as differentiable torch functions.

Each returns a tensor that keeps the autograd graph, so the models use these exact functions
(the mechanisms of :mod:`psae.sparsity` are built on them).
"""

from __future__ import annotations

import torch

from .errors import InputError, ParameterError

__all__ = [
    "smoothed_l0",
    "smoothed_l0_cost",
    "l1_penalty",
    "bernoulli_kl",
    "kl_penalty",
]


def _check_batch(H: torch.Tensor) -> None:
    if not isinstance(H, torch.Tensor):
        raise TypeError(f"H must be a torch.Tensor, got {type(H).__name__}")
    if H.ndim != 2:
        raise InputError(f"H must have shape (N, M), got shape {tuple(H.shape)}")


def smoothed_l0(H: torch.Tensor, sigma: float) -> torch.Tensor:
    """Per-sample smoothed L0 norm, eq. (3): ``L0σ(h) = M − Σ_i exp(−h_i² / (2σ²))``.

    Returns a tensor of shape (N,). As σ → 0 it tends to the number of non-zeros of each row.
    """
    _check_batch(H)
    if not sigma > 0:
        raise ParameterError(f"sigma must be > 0, got {sigma}")
    M = H.shape[1]
    return M - torch.exp(H.square() * (-0.5 / sigma**2)).sum(dim=1)


def smoothed_l0_cost(H: torch.Tensor, sigma: float, squared: bool = True) -> torch.Tensor:
    """Sparsity cost summed over samples: eq. (7) ``Cs = Σ_j L0σ(h_j)²`` (or ``Σ_j L0σ(h_j)``)."""
    l0 = smoothed_l0(H, sigma)
    return (l0.square() if squared else l0).sum()


def l1_penalty(H: torch.Tensor) -> torch.Tensor:
    """Per-sample L1 norm ``Σ_i |h_i|`` of the codes (SAE+L1), shape (N,)."""
    _check_batch(H)
    return H.abs().sum(dim=1)


def bernoulli_kl(rho: float, rho_hat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Elementwise ``KL(ρ ‖ ρ̂) = ρ log(ρ/ρ̂) + (1−ρ) log((1−ρ)/(1−ρ̂))`` between Bernoullis.

    ``rho_hat`` is clamped to ``[eps, 1 − eps]`` so the gradient stays finite.
    """
    if not 0.0 < rho < 1.0:
        raise ParameterError(f"rho must lie in (0, 1), got {rho}")
    q = rho_hat.clamp(eps, 1.0 - eps)
    return rho * torch.log(rho / q) + (1.0 - rho) * torch.log((1.0 - rho) / (1.0 - q))


def kl_penalty(H: torch.Tensor, rho: float) -> torch.Tensor:
    """SAE+Ber penalty ``Σ_i KL(ρ ‖ ρ̂_i)``, ``ρ̂_i`` the mean activation of unit i in the batch.

    Meaningful for codes in [0, 1] (sigmoid hidden units).
    """
    _check_batch(H)
    return bernoulli_kl(rho, H.mean(dim=0)).sum()
