"""AuxK (Gao et al., 2024): the auxiliary loss that keeps TopK-style units from dying.

With the residual ``e = x − x̂`` held constant (no gradient through it), the ``k_aux`` largest
pre-activations among the units dead for the last ``dead_window`` samples reconstruct it,
``ê = W_dec z`` (without the pre-encoder bias), and ``L_aux = mean_j ‖e_j − ê_j‖²`` joins the cost
with weight α = 1/32; ``k_aux = 2k``, capped by the number of dead units. MODERN.md lists two
bugs of public code this avoids: the residual not detached, the bias counted twice in ê.
"""

from __future__ import annotations

import torch

__all__ = ["AUXK_COEF", "aux_reconstruction", "auxk_penalty"]

AUXK_COEF = 1.0 / 32


def aux_reconstruction(code, a: torch.Tensor, net, dead: torch.Tensor | None = None) -> dict:
    """``{"aux_y": ê}`` while training with dead units, else nothing (the code layer's
    ``extra``). ``dead`` is the trainer's dead mask (None: the layer's own ``code.dead``, a
    fixed mask for direct use), ``code.k`` the code's k."""
    if dead is None:
        dead = getattr(code, "dead", None)
    if not code.training or dead is None:
        return {}
    n_dead = int(dead.sum())
    if n_dead == 0:
        return {}
    vals, idx = a.masked_fill(~dead, float("-inf")).topk(min(2 * code.k, n_dead), dim=1)
    z = torch.zeros_like(a).scatter(1, idx, vals.relu())
    return {"aux_y": net._linear(z, net.W2, torch.zeros_like(net.b2))}


def auxk_penalty(h, sigma, settings, x=None, y=None, aux_y=None, **extra):
    """``mean_j ‖e_j − ê_j‖²`` with ``e = (x − x̂)`` detached; 0 without dead units."""
    if aux_y is None:
        return h.new_zeros(())
    return ((x - y).detach() - aux_y).square().sum(dim=1).mean()
