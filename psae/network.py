"""The one-hidden-layer autoencoder of eq. (2)/(5) as a small torch module."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "Autoencoder", "activation"]

ACTIVATIONS = ("sigmoid", "tanh", "relu", "softplus", "identity")


def activation(name: str):
    """The elementwise function called ``name`` (one of :data:`ACTIVATIONS`)."""
    table = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "softplus": nn.functional.softplus,
        "identity": lambda a: a,
    }
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS}")
    return table[name]


class Autoencoder(nn.Module):
    """``h = f(x W1ᵀ + b1)``, ``y = g(h W2ᵀ + b2)`` with W1: (M, D) and W2: (D, M), eq. (2).

    Weights start uniform in ``±sqrt(6 / (D + M + 1))`` (the usual choice for sigmoid
    autoencoders), biases at zero.
    """

    def __init__(
        self,
        n_features: int,
        n_components: int,
        encoder_activation: str = "sigmoid",
        decoder_activation: str = "sigmoid",
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        D, M = n_features, n_components
        r = math.sqrt(6.0 / (D + M + 1))

        def uniform(*shape):
            return (torch.rand(*shape, generator=generator, dtype=dtype) * 2 - 1) * r

        self.W1 = nn.Parameter(uniform(M, D))
        self.b1 = nn.Parameter(torch.zeros(M, dtype=dtype))
        self.W2 = nn.Parameter(uniform(D, M))
        self.b2 = nn.Parameter(torch.zeros(D, dtype=dtype))
        self.f = activation(encoder_activation)
        self.g = activation(decoder_activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``h = f(W1 x + b1)``: one matrix multiply and an activation."""
        return self.f(torch.addmm(self.b1, x, self.W1.t()))

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``y = g(W2 h + b2)``."""
        return self.g(torch.addmm(self.b2, h, self.W2.t()))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encode(x)
        return h, self.decode(h)
