"""TopK (Makhzani & Frey, 2014; Gao et al., 2024): each sample keeps its k largest
pre-activations, ``h = ReLU(TopK_k(W_enc (x − b_pre) + b_enc))``, ``x̂ = W_dec h + b_pre``.

Every sample's L0 is at most k by construction: the paper's aim without a penalty. The recipe:
a pre-encoder bias started at the data mean, ``W_enc = W_decᵀ`` at the start, unit-norm decoder
columns, and AuxK for dead units (:mod:`.auxk`). ``encode_k`` (default k) is the support kept
when encoding after training.
"""

from __future__ import annotations

import torch
from torch import nn

from .auxk import AUXK_COEF, aux_reconstruction, auxk_penalty
from .mechanism import Computed, Mechanism

default_k = Computed(lambda p: max(1, int(p["n_components"]) // 20),
                     "max(1, n_components // 20)")


class TopK(nn.Module):
    """``h = ReLU(TopK_k(a))`` per sample (``encode_k`` of them in inference mode)."""

    def __init__(self, k: int, encode_k: int | None = None):
        super().__init__()
        self.k, self.encode_k = int(k), int(encode_k or k)
        self.dead: torch.Tensor | None = None  # a fixed AuxK mask; the trainer passes its own

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        k = self.k if self.training else self.encode_k
        vals, idx = a.topk(min(k, a.shape[1]), dim=1)
        return torch.zeros_like(a).scatter(1, idx, vals.relu())

    def extra(self, a: torch.Tensor, h: torch.Tensor, net,
              dead: torch.Tensor | None = None) -> dict:
        return aux_reconstruction(self, a, net, dead)


TOPK = Mechanism(
    name="topk", label="TopK",
    summary="TopK: each sample keeps its k largest units (AuxK revives dead ones)",
    formula="mean_j ‖x_j − x̂_j‖² / 2 + (α/2) L_aux, h = ReLU(TopK_k(W(x − b_pre) + b))",
    params=("k", "encode_k"),
    defaults={"k": default_k},
    penalty=auxk_penalty,
    weights=lambda s: (0.5, 0.5 * AUXK_COEF),
    code=lambda m, s: TopK(s["k"], s.get("encode_k")),
    decoder="identity", pre_bias=True, tied_init=True, unit_norm_decoder=True,
    revive="auxk",
    grid=tuple({"k": k} for k in (10, 25, 50)),
    quick_grid=tuple({"k": k} for k in (5, 15)),
)
