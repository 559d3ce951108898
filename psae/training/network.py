"""The one-hidden-layer autoencoder of eq. (2)/(5) as a small torch module."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ..errors import ParameterError
from .precision import Linear

__all__ = ["ACTIVATIONS", "Activation", "Autoencoder", "Forward", "activation",
           "derivative_from_output"]

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
        raise ParameterError(f"unknown activation {name!r}; choose one of {ACTIVATIONS}")
    return table[name]


def derivative_from_output(name: str, out: torch.Tensor) -> torch.Tensor:
    """``f'(a)`` written in terms of ``out = f(a)``, for the hand-derived training step."""
    if name == "sigmoid":
        return out * (1.0 - out)
    if name == "tanh":
        return 1.0 - out.square()
    if name == "relu":
        return (out > 0).to(out.dtype)
    if name == "softplus":  # out = log(1 + e^a), f'(a) = sigmoid(a) = 1 − e^(−out)
        return -torch.expm1(-out)
    if name == "identity":
        return torch.ones_like(out)
    raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS}")


class Activation(nn.Module):
    """The code layer of the paper's models: ``h = f(a)`` elementwise."""

    def __init__(self, name: str = "sigmoid"):
        super().__init__()
        self.name = name
        self.f = activation(name)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.f(a)

    def extra(self, a: torch.Tensor, h: torch.Tensor, net: Autoencoder) -> dict:
        """What the objective needs besides the codes: nothing for an elementwise code."""
        return {}


class Forward(NamedTuple):
    """One pass: codes ``h``, reconstruction ``y`` and the code layer's extras for the cost."""

    h: torch.Tensor
    y: torch.Tensor
    extra: dict


class Autoencoder(nn.Module):
    """``h = code(x W1ᵀ + b1)``, ``y = g(h W2ᵀ + b2)`` with W1: (M, D) and W2: (D, M), eq. (2).

    The decoder is stored atom by atom, as the parameter ``atoms`` (M × D, W2ᵀ); ``W2`` is its
    view. The sparse-code steps add a sample's atoms as rows and produce the decoder's gradient
    in that layout: stored as W2, each step paid two transposing copies of the decoder (a TopK
    step on MNIST took 16-18 ms against 11 ms now, benchmarks/model_steps.py). The parameter
    itself is contiguous, since fused Adam measured 4x slower on a transposed parameter (its
    gradient transposed alike) than on a contiguous one; every hand-derived gradient is
    written in its parameter's layout. (The bf16 autograd path still hands back W2's gradient
    as D × M, which autograd copies into the atoms' layout.)

    ``code`` is the code layer (an :class:`Activation`, or a sparse layer such as TopK);
    ``precision="bf16"`` runs both products in bf16 with float32 results
    (:class:`psae.training.precision.Linear`): whoever builds the network chooses it, and the
    trainer's hand-derived steps read it from here.
    Weights start uniform in ``±sqrt(6 / (D + M + 1))`` (the usual choice for sigmoid
    autoencoders), biases at zero.
    """

    def __init__(
        self,
        n_features: int,
        n_components: int,
        code: nn.Module | str = "sigmoid",
        decoder_activation: str = "sigmoid",
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        precision: str = "fp32",
        pre_bias: bool = False,
    ):
        super().__init__()
        self.precision = precision
        self.pre_bias = pre_bias
        D, M = n_features, n_components
        r = math.sqrt(6.0 / (D + M + 1))

        def uniform(*shape):
            return (torch.rand(*shape, generator=generator, dtype=dtype) * 2 - 1) * r

        self.W1 = nn.Parameter(uniform(M, D))
        self.b1 = nn.Parameter(torch.zeros(M, dtype=dtype))
        self.atoms = nn.Parameter(uniform(D, M).t().contiguous())  # W2's values, row-major
        self.b2 = nn.Parameter(torch.zeros(D, dtype=dtype))
        self.code = Activation(code) if isinstance(code, str) else code
        self.decoder_activation = decoder_activation
        self.g = activation(decoder_activation)

    @property
    def W2(self) -> torch.Tensor:
        """The decoder, D × M: a view of :attr:`atoms` (its gradient lives on ``atoms``)."""
        return self.atoms.t()

    def _linear(self, x: torch.Tensor, W: torch.Tensor, b: torch.Tensor,
                precision: str | None = None) -> torch.Tensor:
        if (precision or self.precision) == "bf16":
            return Linear.apply(b, x, W)
        return torch.addmm(b, x, W.t())

    def pre_activation(self, x: torch.Tensor, precision: str | None = None) -> torch.Tensor:
        """``a = W1 x + b1`` (``W1 (x − b2) + b1`` with a pre-encoder bias): the one matrix
        multiply of encoding (in ``precision``; None: the module's)."""
        return self._linear(x - self.b2 if self.pre_bias else x, self.W1, self.b1, precision)

    @torch.no_grad()
    def tie(self, mean: torch.Tensor | None = None) -> None:
        """The TopK recipe's start: unit-norm decoder columns, ``W1 = W2ᵀ``, and the decoder
        bias (the pre-encoder bias) at the data ``mean``."""
        self.W2.div_(self.W2.norm(dim=0, keepdim=True).clamp_min(1e-12))
        self.W1.copy_(self.W2.t())
        if mean is not None:
            self.b2.copy_(mean)

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        """Decoder columns back to unit norm (after an optimiser step)."""
        # one pass along each contiguous atom for its norm (a third of square-sum-sqrt's time),
        # then one multiply
        norm = torch.linalg.vector_norm(self.atoms, dim=1, keepdim=True)
        self.atoms.mul_(norm.clamp_min_(1e-12).reciprocal_())

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove from each decoder column's gradient its component along the column, so the
        step moves along the unit sphere."""
        if self.atoms.grad is not None:
            g, w = self.atoms.grad, self.atoms
            g.addcmul_(w, torch.linalg.vecdot(g, w, dim=1).unsqueeze(1), value=-1.0)

    def folded_encoder_bias(self) -> torch.Tensor:
        """``b1 − W1 b2`` with a pre-encoder bias (else ``b1``): the bias of the same encoder
        written as one matrix multiply, ``h = code(W1 x + b)``."""
        if not self.pre_bias:
            return self.b1
        return self.b1 - self.W1 @ self.b2

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``h = code(W1 x + b1)``."""
        return self.code(self.pre_activation(x))

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``y = g(W2 h + b2)``."""
        return self.g(self._linear(h, self.W2, self.b2))

    def forward(self, x: torch.Tensor, dead: torch.Tensor | None = None) -> Forward:
        """Codes, reconstruction and the code layer's extras; ``dead``: the units AuxK trains
        on, handed to the code layer's ``extra`` (only layers with AuxK take it)."""
        a = self.pre_activation(x)
        h = self.code(a)
        extra = self.code.extra(a, h, self) if dead is None else \
            self.code.extra(a, h, self, dead=dead)
        return Forward(h, self.decode(h), extra)
