"""The training step of the sparse-code models (TopK, BatchTopK, JumpReLU and its squared-L0
form) with its gradient written out, as :mod:`psae.training.fused` does for the paper's sigmoid
models.

Autograd records a scatter, a mask, AuxK's masked top-k and a dense ``N × M`` product through
the whole decoder for the few dead units, each with its own backward; by hand the step is four
products on the live path (bf16 where the precision asks) plus AuxK's products restricted to the
dead columns (``D × n_dead`` instead of ``D × M``). The tests check every gradient here against
autograd's.

Forward, with the pre-encoder bias ``b_pre = b2``: ``a = (x − b_pre) W1ᵀ + b1``,
``h = code(a)``, ``y = h W2ᵀ + b_pre``; cost ``w_r · mean_j ‖x_j − y_j‖² + w_s · S``.
Backward: ``δ2 = (2 w_r / N)(y − x)``, ``∂W2 = δ2ᵀ h``; ``g = δ2 W2`` (∂cost/∂h);
``δ1 = g ⊙ ∂h/∂a`` (the kept units: h > 0 for TopK, a > θ for JumpReLU); ``∂W1 = δ1ᵀ (x − b_pre)``,
``∂b1 = Σ_j δ1``, ``∂b_pre = Σ_j δ2 − (Σ_j δ1) W1``. JumpReLU's threshold takes the
straight-through pseudo-derivatives of :mod:`psae.sparsity.jumprelu`.
"""

from __future__ import annotations

import torch

from ..sparsity.auxk import auxk_penalty
from ..sparsity.batchtopk import BatchTopK, kth_largest
from ..sparsity.jumprelu import JumpReLU, _kernel, l0_penalty
from ..sparsity.sqjumprelu import squared_l0_penalty
from ..sparsity.topk import TopK
from .fused import add_weight_decay, casts
from .network import Autoencoder
from .objective import Objective

__all__ = ["sparse_fusable", "sparse_gradients"]

_GATE_PENALTIES = (l0_penalty, squared_l0_penalty)


def sparse_fusable(module: Autoencoder, objective: Objective, solver: str) -> bool:
    """Whether :func:`sparse_gradients` computes this model's step."""
    code = module.code
    if solver != "adam" or not module.pre_bias or module.decoder_activation != "identity":
        return False
    if isinstance(code, TopK | BatchTopK):
        return objective.mechanism.penalty is auxk_penalty
    return isinstance(code, JumpReLU) and objective.mechanism.penalty in _GATE_PENALTIES


def _codes(code, a: torch.Tensor) -> torch.Tensor:
    """``h`` of the top-k codes, as their forward makes it (BatchTopK's threshold tracked)."""
    if isinstance(code, TopK):
        vals, idx = a.topk(min(code.k, a.shape[1]), dim=1, sorted=False)
        return torch.zeros_like(a).scatter_(1, idx, vals.relu_())
    # the batch's k·B largest are those at or above its (k·B)-th largest value (ties between
    # distinct float32 pre-activations aside), found without a top-k of the whole batch
    tau = kth_largest(a.flatten(), min(code.k * a.shape[0], a.numel()))
    h = a.relu() * (a >= tau)
    code.track_low(tau if bool(tau > 0) else _min_positive(a))
    return h


def _min_positive(a: torch.Tensor) -> torch.Tensor:
    """The smallest positive entry (zero where there is none)."""
    pos = a[a > 0]
    return pos.min() if pos.numel() else a.new_zeros(())


def _auxk(code, a, e, W2, dead, w_s, n, cast, grad):
    """AuxK on the dead columns only: its value, ∂W2 for those columns and ∂a for them.

    ``e = x − y`` (held constant): the ``2k`` largest dead pre-activations reconstruct it
    through their own decoder columns, ``ê = z W2[:, dead]ᵀ``; cost ``mean_j ‖e_j − ê_j‖²``."""
    cols = torch.nonzero(dead).flatten()
    if cols.numel() == 0:
        return e.new_zeros(()), None
    ad = a.index_select(1, cols)
    vals, j = ad.topk(min(2 * code.k, cols.numel()), dim=1, sorted=False)
    z = torch.zeros_like(ad).scatter_(1, j, vals.relu_())
    W2d = W2.index_select(1, cols)
    zc, W2dc = cast(z), cast(W2d)
    r = e - torch.mm(zc, W2dc.t())
    value = torch.dot(r.view(-1), r.view(-1)) / n
    r.mul_(-2.0 * w_s / n)  # ∂(w_s · value)/∂ê
    rc = cast(r)
    dW2 = grad(torch.mm(rc.t(), zc))
    da = grad(torch.mm(rc, W2dc)).mul_(z > 0)
    return value, (cols, dW2, da)


def _jump_theta_grad(code: JumpReLU, a, gate, g, objective, w_s, n) -> torch.Tensor:
    """∂cost/∂log θ: the reconstruction's through ``h`` and the L0 term's through the gates,
    both with the rectangle kernel's straight-through derivative."""
    theta, eps = code.threshold, code.bandwidth
    k = _kernel(a, theta, eps)
    if objective.mechanism.penalty is squared_l0_penalty:
        per_row = gate.sum(dim=1, keepdim=True).mul_(2.0 / n)  # ∂ mean_j L0_j² / ∂H_ji
        pen = (k * per_row).sum(dim=0)
    else:
        pen = k.sum(dim=0) / n
    d_theta = -(theta / eps) * (g * k).sum(dim=0) - (w_s / eps) * pen
    return d_theta * theta  # θ = exp(log θ)


@torch.no_grad()
def sparse_gradients(module: Autoencoder, objective: Objective, x: torch.Tensor,
                     precision: str = "fp32", weight_decay: float = 0.0,
                     dead: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Set the ``.grad`` of every parameter for the cost of ``x``; return its (total,
    reconstruction, sparsity), as :meth:`Trainer.loss` gives them, and the codes ``h``.
    ``dead``: the units AuxK revives (TopK and BatchTopK)."""
    W1, b1, W2, b2 = module.W1, module.b1, module.W2, module.b2
    code, n = module.code, x.shape[0]
    w_r, w_s = objective.mechanism.weights(objective.settings)
    cast, grad = casts(precision)

    xc = x - b2
    xcc, W1c, W2c = cast(xc), cast(W1), cast(W2)
    a = torch.add(torch.mm(xcc, W1c.t()), b1)
    jump = isinstance(code, JumpReLU)
    if jump:
        gate = a > code.threshold
        h = a * gate
    else:
        h = _codes(code, a)
        gate = h > 0
    hc = cast(h)
    y = torch.add(torch.mm(hc, W2c.t()), b2)
    delta2 = y - x
    recon = torch.dot(delta2.view(-1), delta2.view(-1)) / n
    aux = None
    if jump:
        gf = gate.to(a.dtype)
        sparsity = objective.mechanism.penalty(h, None, objective.settings, gate=gf)
    elif dead is not None and bool(dead.any()):
        sparsity, aux = _auxk(code, a, -delta2, W2, dead, w_s, n, cast, grad)
    else:
        sparsity = recon.new_zeros(())
    delta2.mul_(2.0 * w_r / n)
    d2c = cast(delta2)
    W2.grad = grad(torch.mm(d2c.t(), hc))
    g = grad(torch.mm(d2c, W2c))  # ∂cost/∂h
    delta1 = g * gate
    if aux is not None:
        cols, dW2, da = aux
        W2.grad.index_add_(1, cols, dW2)
        delta1.index_add_(1, cols, da)
    if jump:
        code.log_threshold.grad = _jump_theta_grad(code, a, gf, g, objective, w_s, n)
    W1.grad = grad(torch.mm(cast(delta1).t(), xcc))
    b1.grad = delta1.sum(dim=0)
    b2.grad = delta2.sum(dim=0) - torch.mv(W1.t(), b1.grad)
    total = add_weight_decay(module, w_r * recon + w_s * sparsity, weight_decay)
    return torch.stack([total, recon, sparsity]), h
