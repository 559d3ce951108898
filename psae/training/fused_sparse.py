"""The training step of the sparse-code models (TopK, BatchTopK, JumpReLU and its squared-L0
form) with its gradient written out, as :mod:`psae.training.fused` does for the paper's sigmoid
models.

Autograd records a scatter, a mask, AuxK's masked top-k and a dense ``N × M`` product through
the whole decoder for the few dead units, each with its own backward; by hand the step is four
products on the live path (bf16 where the precision asks) plus AuxK's products restricted to the
dead columns that are positive somewhere in the batch (``D × n_firing_dead`` instead of
``D × M``: AuxK's ReLU gives the others nothing). The tests check every gradient here against
autograd's.

Forward, with the pre-encoder bias ``b_pre = b2``: ``a = (x − b_pre) W1ᵀ + b1``,
``h = code(a)``, ``y = h W2ᵀ + b_pre``; cost ``w_r · mean_j ‖x_j − y_j‖² + w_s · S``.
Backward: ``δ2 = (2 w_r / N)(y − x)``, ``∂W2 = δ2ᵀ h``; ``g = δ2 W2`` (∂cost/∂h);
``δ1 = g ⊙ ∂h/∂a`` (the kept units: h > 0 for TopK, a > θ for JumpReLU); ``∂W1 = δ1ᵀ (x − b_pre)``,
``∂b1 = Σ_j δ1``, ``∂b_pre = Σ_j δ2 − (Σ_j δ1) W1``. JumpReLU's threshold takes the
straight-through pseudo-derivatives of :mod:`psae.sparsity.jumprelu`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..sparsity.auxk import auxk_penalty
from ..sparsity.batchtopk import BatchTopK, kth_largest
from ..sparsity.jumprelu import JumpReLU, _kernel, in_kernel, l0_penalty
from ..sparsity.sqjumprelu import squared_l0_penalty
from ..sparsity.topk import TopK, row_top_k
from .fused import add_weight_decay, casts, product_grad
from .masks import at_least, count_ones, indicator
from .network import Autoencoder
from .objective import Objective
from .sparse_products import CodePattern, sparse_capable, use_sparse_products

__all__ = ["sparse_fusable", "sparse_gradients", "padded_width"]

_GATE_PENALTIES = (l0_penalty, squared_l0_penalty)


def sparse_fusable(module: Autoencoder, objective: Objective, solver: str) -> bool:
    """Whether :func:`sparse_gradients` computes this model's step."""
    code = module.code
    if solver != "adam" or not module.pre_bias or module.decoder_activation != "identity":
        return False
    if isinstance(code, TopK | BatchTopK):
        return objective.mechanism.penalty is auxk_penalty
    return isinstance(code, JumpReLU) and objective.mechanism.penalty in _GATE_PENALTIES


def _top_k(a: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``k`` largest pre-activations per row, rectified: the dense code ``h``, the kept
    values (N × k) and their columns."""
    vals, idx = row_top_k(a, k)
    vals.relu_()
    return torch.zeros_like(a).scatter_(1, idx, vals), vals, idx


def _codes(code, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``h`` of the top-k codes, as their forward makes it (BatchTopK's threshold tracked),
    and TopK's kept columns (N × k; None for BatchTopK)."""
    if isinstance(code, TopK):
        h, _, idx = _top_k(a, code.k)
        return h, idx
    # the batch's k·B largest are those at or above its (k·B)-th largest value, found without
    # a top-k of the whole batch; where values tie at it (duplicate rows) that keeps more than
    # k·B, and the forward's own top-k decides which
    kb = min(code.k * a.shape[0], a.numel())
    tau = kth_largest(a.flatten(), kb)
    if not bool(tau > 0):  # fewer than k·B positive entries: every one of them is kept
        code.track_low(_min_positive(a))
        return a.relu(), None
    keep = at_least(a, tau)
    h = a * keep  # the kept entries are positive; a NaN stays NaN
    if count_ones(keep) > kb:
        flat = a.relu().flatten()
        idx = flat.topk(kb).indices
        h = torch.zeros_like(flat).scatter_(0, idx, flat[idx]).view_as(a)
    code.track_low(tau)
    return h, None


def _min_positive(a: torch.Tensor) -> torch.Tensor:
    """The smallest positive entry (zero where there is none)."""
    pos = a[a > 0]
    return pos.min() if pos.numel() else a.new_zeros(())


def _firing_dead(a: torch.Tensor, dead: torch.Tensor) -> torch.Tensor:
    """The dead units whose pre-activation is positive on some row of the batch.

    AuxK's code is a ReLU, so a dead unit negative on every row is 0 in every ``z``: it adds
    nothing to ``ê``, its atom's gradient or ``∂a``, and leaving it out is exact. On MNIST
    most dead units of a fitted TopK are negative everywhere (the products shrink with them)."""
    return torch.nonzero(dead & (a.amax(dim=0) > 0)).flatten()


def _aux_codes(a_dead: torch.Tensor, k: int) -> torch.Tensor:
    """``z``: each row's ``k`` largest entries of ``a_dead``, rectified. A row with at most ``k``
    positive entries keeps all of them, so where every row has, ``z`` is ``ReLU(a_dead)``
    without a top-k (the usual case once units are dead)."""
    if int(indicator(a_dead, 0.0).sum(dim=1).max()) <= k:
        return a_dead.clamp_min(0)
    z, _, _ = _top_k(a_dead, k)
    return z


def _auxk(code, a, delta2, W2c, dead, w_s, n, cast, grad, pad=False):
    """AuxK on the dead columns only: its value, ∂W2ᵀ's rows for those units and ∂a for them.

    ``e = x − y = −delta2`` (held constant): the ``2k`` largest dead pre-activations
    reconstruct it through their own decoder columns, ``ê = z W2[:, dead]ᵀ``; cost
    ``mean_j ‖e_j − ê_j‖²``. ``W2c``: the decoder as the step's products take it (bf16 where
    the precision asks), so the dead columns are gathered from the copy already made, not
    cast again. ``pad``: run the products on :func:`padded_width` columns (bf16 on the CPU)."""
    cols = _firing_dead(a, dead)
    if cols.numel() == 0:  # ê = 0
        return torch.dot(delta2.view(-1), delta2.view(-1)) / n, None
    z = _aux_codes(a.index_select(1, cols), 2 * code.k)
    # bf16 products on the CPU build a kernel for each new shape, which cost more than the
    # product itself where the count of firing dead units moved every step: there they run
    # on a padded width (zero codes for atoms already among them), a few shapes per fit
    n_cols = cols.numel()
    width = padded_width(n_cols) if pad else n_cols
    zp, rows = z, cols
    if width > n_cols:
        zp = z.new_zeros(n, width)
        zp[:, :n_cols] = z
        rows = torch.cat([cols, cols[:1].expand(width - n_cols)])
    # the dead atoms as rows of W2ᵀ (contiguous, the decoder's storage): a gather of whole
    # rows, where picking columns of W2 went element by element
    zc, W2dc = cast(zp), W2c.t().index_select(0, rows).t()
    r = torch.add(delta2, torch.mm(zc, W2dc.t()))  # ê − e, in float32
    value = torch.dot(r.view(-1), r.view(-1)) / n
    r.mul_(2.0 * w_s / n)  # ∂(w_s · value)/∂ê
    rc = cast(r)
    dW2t = grad(torch.mm(zc.t(), rc))[:n_cols]
    da = grad(torch.mm(rc, W2dc))[:, :n_cols].mul_(indicator(z, 0.0))
    return value, (cols, dW2t, da)


def padded_width(n: int) -> int:
    """``n`` rounded up to a multiple of 64, or from 1,024 on to an eighth of the power of two
    below it: eight widths an octave at most, and past 512 at most 12.5 % wider."""
    step = max(64, 1 << max(0, n.bit_length() - 4))
    return -(-n // step) * step


def _sparse_auxk(code, a, delta2, W2t, dead, w_s, n):
    """:func:`_auxk` on the dead units' own top-2k: its value, and ∂W2ᵀ's rows, the pattern
    and ∂a's values there for those units (None without dead units that fire)."""
    cols = _firing_dead(a, dead)
    if cols.numel() == 0:
        return torch.dot(delta2.view(-1), delta2.view(-1)) / n, None
    _, vals, j = _top_k(a.index_select(1, cols), 2 * code.k)
    pattern, perm = CodePattern.from_topk(j, cols.numel())  # numbered among the dead
    z = vals.flatten()[perm]
    # the decode and ∂a read the atoms in place, under the units' own numbers (no gathered copy
    # of the dead atoms); the per-unit sums stay among the dead
    units = pattern.renumbered(cols, W2t.shape[0])
    r = units.decode(z, W2t).add_(delta2)  # ê − e
    value = torch.dot(r.view(-1), r.view(-1)) / n
    r.mul_(2.0 * w_s / n)  # ∂(w_s · value)/∂ê
    dW2t = pattern.left_product(z, r)
    da = units.sampled(r, W2t.t()).mul_(indicator(z, 0.0))
    return value, (cols, dW2t, pattern, da)


def _theta_grad(code: JumpReLU, g_kernel: torch.Tensor, pen: torch.Tensor, w_s: float
                ) -> torch.Tensor:
    """∂cost/∂log θ from each unit's ``Σ_j g_ji K_ji`` (the reconstruction's part) and its
    L0 term's ``Σ_j K_ji ∂S/∂H_ji``, with the rectangle kernel's straight-through derivative."""
    theta, eps = code.threshold, code.bandwidth
    d_theta = -(theta / eps) * g_kernel - (w_s / eps) * pen
    return d_theta * theta  # θ = exp(log θ)


def _jump_theta_grad(code: JumpReLU, a, gate, g, objective, w_s, n) -> torch.Tensor:
    """:func:`_theta_grad` on dense ``N × M`` tensors."""
    k = _kernel(a, code.threshold, code.bandwidth)
    if objective.mechanism.penalty is squared_l0_penalty:
        per_row = gate.sum(dim=1, keepdim=True).mul_(2.0 / n)  # ∂ mean_j L0_j² / ∂H_ji
        pen = (k * per_row).sum(dim=0)
    else:
        pen = k.sum(dim=0) / n
    return _theta_grad(code, (g * k).sum(dim=0), pen, w_s)


def _sparse_theta_grad(code: JumpReLU, a, gate, delta2, W2t, objective, w_s, n
                       ) -> torch.Tensor:
    """:func:`_theta_grad` with ``g`` sampled on the kernel's entries only."""
    kern = CodePattern.from_dense(in_kernel(a, code.threshold, code.bandwidth))
    g_kernel = kern.column_sums(kern.sampled(delta2, W2t.t()))
    if objective.mechanism.penalty is squared_l0_penalty:
        per_row = gate.sum(dim=1, dtype=a.dtype).mul_(2.0 / n)  # ∂ mean_j L0_j² / ∂H_ji
        pen = kern.column_sums(per_row[kern.rows])
    else:
        pen = kern.column_sums(a.new_ones(kern.nnz)) / n
    return _theta_grad(code, g_kernel, pen, w_s)


@torch.no_grad()
def sparse_gradients(module: Autoencoder, objective: Objective, x: torch.Tensor,
                     precision: str = "fp32", weight_decay: float = 0.0,
                     dead: torch.Tensor | None = None, sparse: bool = True
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Set the ``.grad`` of every parameter for the cost of ``x``; return its (total,
    reconstruction, sparsity), as :meth:`Trainer.loss` gives them, and the codes ``h``.
    ``dead``: the units AuxK revives (TopK and BatchTopK). The code's products are taken on
    its non-zeros where ``sparse`` and :func:`use_sparse_products` say so, else dense."""
    W1, b1, b2, code = module.W1, module.b1, module.b2, module.code
    cast, _ = casts(precision)
    xc = x - b2
    xcc = cast(xc)
    a = torch.add(torch.mm(xcc, cast(W1).t()), b1)
    idx = None
    if isinstance(code, JumpReLU):
        gate = indicator(a, code.threshold)
        h = a * gate
    else:
        h, idx = _codes(code, a)
        gate = indicator(h, 0.0)
    fwd = _Forward(x, xc, xcc, a, h, gate)
    if sparse and sparse_capable(a, precision, x.shape[1]):  # before counting the code's entries
        nnz = idx.numel() if idx is not None else count_ones(gate)
        if use_sparse_products(a, nnz, precision, x.shape[1]):
            return _sparse_path_gradients(module, objective, fwd, idx, weight_decay, dead)
    return _dense_gradients(module, objective, fwd, precision, weight_decay, dead)


@dataclass
class _Forward:
    """The step's forward pass up to the code: input, centred input (and its cast),
    pre-activations, code and gate (:mod:`.masks`: ``1[h > 0]`` for the top-k codes,
    ``1[a > θ]`` for JumpReLU)."""

    x: torch.Tensor
    xc: torch.Tensor
    xcc: torch.Tensor
    a: torch.Tensor
    h: torch.Tensor
    gate: torch.Tensor


def _dense_gradients(module, objective, fwd: _Forward, precision, weight_decay, dead):
    """The rest of the step with dense ``N × M`` products (bf16 where ``precision`` asks)."""
    W1, b1, W2, b2 = module.W1, module.b1, module.W2, module.b2
    x, a, h, gate = fwd.x, fwd.a, fwd.h, fwd.gate
    code, n = module.code, x.shape[0]
    w_r, w_s = objective.mechanism.weights(objective.settings)
    cast, grad = casts(precision)
    W2c = cast(W2)
    jump = isinstance(code, JumpReLU)
    hc = cast(h)
    y = torch.add(torch.mm(hc, W2c.t()), b2)
    delta2 = y - x
    recon = torch.dot(delta2.view(-1), delta2.view(-1)) / n
    aux = None
    if jump:
        sparsity = objective.mechanism.penalty(h, None, objective.settings, gate=gate)
    elif dead is not None and bool(dead.any()):
        sparsity, aux = _auxk(code, a, delta2, W2c, dead, w_s, n, cast, grad,
                              pad=precision == "bf16" and a.device.type == "cpu")
    else:
        sparsity = recon.new_zeros(())
    delta2.mul_(2.0 * w_r / n)
    d2c = cast(delta2)
    dW2t = product_grad(module.atoms, hc.t(), d2c)
    g = grad(torch.mm(d2c, W2c))  # ∂cost/∂h
    delta1 = g * gate
    if aux is not None:
        cols, aux_dW2t, da = aux
        dW2t.index_add_(0, cols, aux_dW2t)
        delta1.index_add_(1, cols, da)
    if jump:
        code.log_threshold.grad = _jump_theta_grad(code, a, gate, g, objective, w_s, n)
    product_grad(W1, cast(delta1).t(), fwd.xcc)
    b1.grad = delta1.sum(dim=0)
    b2.grad = delta2.sum(dim=0) - torch.mv(W1.t(), b1.grad)
    total = add_weight_decay(module, w_r * recon + w_s * sparsity, weight_decay)
    return torch.stack([total, recon, sparsity]), h


def _sparse_path_gradients(module, objective, fwd: _Forward, idx, weight_decay, dead):
    """The rest of the step (float32 or float64) with the code's products on its non-zeros
    (:class:`CodePattern`): decode, ∂W2 and ∂W1 as bags, ``g`` only where the code is on."""
    W1, b1, b2 = module.W1, module.b1, module.b2
    x, a, h, gate = fwd.x, fwd.a, fwd.h, fwd.gate
    code, n = module.code, x.shape[0]
    w_r, w_s = objective.mechanism.weights(objective.settings)
    if idx is not None:  # TopK: its k columns per row, some of them rectified to zero
        pattern, perm = CodePattern.from_topk(idx, a.shape[1])
    else:
        pattern, perm = CodePattern.from_dense(gate), None
    values = pattern.gather(h)
    W2t = module.atoms  # the atoms as rows, for the bags
    delta2 = pattern.decode(values, W2t).add_(b2).sub_(x)
    recon = torch.dot(delta2.view(-1), delta2.view(-1)) / n
    aux = None
    jump = isinstance(code, JumpReLU)
    if jump:
        sparsity = objective.mechanism.penalty(h, None, objective.settings, gate=gate)
    elif dead is not None and bool(dead.any()):
        sparsity, aux = _sparse_auxk(code, a, delta2, W2t, dead, w_s, n)
    else:
        sparsity = recon.new_zeros(())
    delta2.mul_(2.0 * w_r / n)
    dW2t = pattern.left_product(values, delta2)
    delta1 = pattern.sampled(delta2, W2t.t())  # g = ∂cost/∂h on the pattern
    if perm is not None:
        delta1.mul_(values > 0)  # TopK's rectified entries pass no gradient
    dW1 = pattern.left_product(delta1, fwd.xc)
    db1 = pattern.column_sums(delta1)
    if aux is not None:
        cols, aux_dW2t, aux_pattern, da = aux
        dW2t.index_add_(0, cols, aux_dW2t)
        dW1.index_add_(0, cols, aux_pattern.left_product(da, fwd.xc))
        db1.index_add_(0, cols, aux_pattern.column_sums(da))
    if jump:
        code.log_threshold.grad = _sparse_theta_grad(code, a, gate, delta2, W2t, objective,
                                                     w_s, n)
    module.atoms.grad = dW2t
    W1.grad, b1.grad = dW1, db1
    b2.grad = delta2.sum(dim=0) - torch.mv(W1.t(), b1.grad)
    total = add_weight_decay(module, w_r * recon + w_s * sparsity, weight_decay)
    return torch.stack([total, recon, sparsity]), h
