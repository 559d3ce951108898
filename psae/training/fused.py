"""The training step of the paper's models with its gradient written out: fewer passes, no graph.

Autograd records some twenty elementwise kernels per step for the sigmoid autoencoder and its
penalty; written by hand the step is five matrix products (in bf16 where the precision asks for
it, with float32 results) and a handful of in-place float32 passes. It applies when the code
layer is elementwise (``encoder_activation``), the mechanism declares ``penalty_grad`` and the
solver is Adam; otherwise :class:`~psae.training.trainer.Trainer` takes the autograd path.
The tests check this step's gradients against autograd's.
"""

from __future__ import annotations

import torch

from .network import Activation, Autoencoder, derivative_from_output
from .objective import Objective

__all__ = ["fusable", "fused_gradients", "casts", "product_grad", "add_weight_decay"]

_IN_PLACE = {"sigmoid": torch.Tensor.sigmoid_, "tanh": torch.Tensor.tanh_,
             "relu": torch.Tensor.relu_, "identity": lambda t: t}


def _activate(name: str, a: torch.Tensor) -> torch.Tensor:
    """``f(a)`` in place where f has an in-place form (``a`` is a fresh float32 tensor)."""
    if name in _IN_PLACE:
        return _IN_PLACE[name](a)
    return torch.nn.functional.softplus(a)


def fusable(module: Autoencoder, objective: Objective, solver: str) -> bool:
    """Whether :func:`fused_gradients` computes this model's step."""
    return (solver == "adam" and isinstance(module.code, Activation) and not module.pre_bias
            and objective.mechanism.penalty_grad is not None)


def casts(precision: str):
    """``(cast, grad)`` for a hand-derived step: ``cast`` puts an operand in the product's
    precision (once, for every product that needs it), ``grad`` turns a bf16 product back into
    a float32 gradient; both are the identity in float32."""
    if precision != "bf16":
        return (lambda t: t), (lambda t: t)
    return (lambda t: t.to(torch.bfloat16)), (lambda t: t.float())


@torch.no_grad()
def product_grad(param: torch.Tensor, left: torch.Tensor, right: torch.Tensor
                 ) -> torch.Tensor:
    """Set ``param.grad = left @ right`` (float32 from a bf16 product) and return it, written
    into the gradient ``param`` already holds where it has one of this shape.

    A new gradient each step is new memory from the system, whose first touch faults page by
    page: casting a bf16 1000 × 784 gradient into new memory took 0.40–0.49 ms at 2 threads,
    into memory already held 0.06 ms (benchmarks/README.md, "Three costs that were not
    arithmetic")."""
    g = param.grad
    shape = (left.shape[0], right.shape[1])
    if g is None or g.shape != shape or g.dtype != param.dtype or not g.is_contiguous():
        param.grad = torch.mm(left, right).to(param.dtype)
        return param.grad
    if left.dtype == g.dtype:
        return torch.mm(left, right, out=g)
    return g.copy_(torch.mm(left, right))


def add_weight_decay(module: Autoencoder, total: torch.Tensor, weight_decay: float
                     ) -> torch.Tensor:
    """``(λ_wd / 2)(‖W1‖² + ‖W2‖²)`` added to ``total`` and its gradient to W1's and the decoder's
    (``atoms``, W2ᵀ)."""
    if weight_decay <= 0:
        return total
    W1, atoms = module.W1, module.atoms  # ‖W2‖ = ‖W2ᵀ‖
    W1.grad.add_(W1, alpha=weight_decay)
    atoms.grad.add_(atoms, alpha=weight_decay)
    return total + (0.5 * weight_decay) * (W1.square().sum() + atoms.square().sum())


@torch.no_grad()
def fused_gradients(module: Autoencoder, objective: Objective, x: torch.Tensor,
                    sigma: float | None, precision: str = "fp32", weight_decay: float = 0.0
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Set ``.grad`` of W1, b1, atoms (∂W2ᵀ), b2 for the cost of ``x``; return its (total,
    reconstruction, sparsity), as :meth:`Trainer.loss` would give them, and the codes ``h``.

    Forward: ``a = x W1ᵀ + b1``, ``h = f(a)``, ``y = g(h W2ᵀ + b2)``. With
    ``total = w_r · mean_j ‖x_j − y_j‖² + w_s · S(h)`` (eq. 9 for PSAE):
    ``δ2 = (2 w_r / N)(y − x) ⊙ g'``, ``∂W2 = δ2ᵀ h``, ``∂b2 = Σ_j δ2``;
    ``δ1 = (δ2 W2 + w_s ∂S/∂h) ⊙ f'``, ``∂W1 = δ1ᵀ x``, ``∂b1 = Σ_j δ1`` (eq. 11-12).
    """
    W1, b1, W2, b2 = module.W1, module.b1, module.W2, module.b2
    n = x.shape[0]
    w_r, w_s = objective.mechanism.weights(objective.settings)
    cast, grad = casts(precision)

    xc, W1c, W2c = cast(x), cast(W1), cast(W2)
    # bf16 + float32 promotes to float32: the bias add is also the conversion
    h = _activate(module.code.name, torch.add(torch.mm(xc, W1c.t()), b1))
    hc = cast(h)
    y = _activate(module.decoder_activation, torch.add(torch.mm(hc, W2c.t()), b2))
    delta2 = y - x
    recon = torch.dot(delta2.view(-1), delta2.view(-1)) / n
    delta2.mul_(derivative_from_output(module.decoder_activation, y)).mul_(2.0 * w_r / n)
    sparsity, dS = objective.mechanism.penalty_grad(h, sigma, objective.settings)
    d2c = cast(delta2)
    product_grad(module.atoms, hc.t(), d2c)  # ∂W2ᵀ, in the decoder's layout
    b2.grad = delta2.sum(dim=0)
    back = torch.mm(d2c, W2c)
    if dS is not None and w_s:
        delta1 = torch.add(dS.mul_(w_s) if dS.is_contiguous() else dS * w_s, back)
    else:
        delta1 = grad(back)  # float32 back as it is
    delta1.mul_(derivative_from_output(module.code.name, h))
    product_grad(W1, cast(delta1).t(), xc)
    b1.grad = delta1.sum(dim=0)
    total = add_weight_decay(module, w_r * recon + w_s * sparsity, weight_decay)
    return torch.stack([total, recon, sparsity]), h
