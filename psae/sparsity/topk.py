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

BLOCK = 8
"""Columns per block in :func:`row_top_k`'s first pass."""


def row_top_k(a: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest entries of each row of ``a`` (values, columns; unsorted), exactly as
    ``a.topk(k, dim=1)`` gives them up to the order and to which of equal values is taken.

    ``topk`` on the CPU costs about 7 µs a row of 1,000 (1.8 ms for a batch of 256 on one
    thread: three of the step's products). The columns are cut into blocks of :data:`BLOCK`;
    the k blocks with the largest maxima hold the k largest entries (any entry outside them is
    at most the k-th largest block maximum, which is at most the k-th largest entry), so one
    ``topk`` over the block maxima and one over those k blocks' entries (k·8 of them) find them:
    1.0 ms against 1.8 at k = 25 of 1,000. Where the k blocks would be more than a quarter of the
    row, and off the CPU (a GPU's ``topk`` is a radix select; not measured here), plain
    ``topk``."""
    n, m = a.shape
    k = min(int(k), m)
    whole = m - m % BLOCK
    if 4 * k * BLOCK > whole or a.device.type != "cpu":
        return a.topk(k, dim=1, sorted=False)
    blocks = a[:, :whole].reshape(n, whole // BLOCK, BLOCK)
    top = blocks.amax(dim=2).topk(k, dim=1, sorted=False).indices
    cand = blocks.gather(1, top.unsqueeze(2).expand(n, k, BLOCK)).reshape(n, k * BLOCK)
    if whole < m:  # the last few columns, a block of their own, always candidates
        cand = torch.cat([cand, a[:, whole:]], dim=1)
    vals, j = cand.topk(k, dim=1, sorted=False)
    in_blocks = top.gather(1, (j // BLOCK).clamp_max_(k - 1)) * BLOCK + j % BLOCK
    idx = torch.where(j < k * BLOCK, in_blocks, j - k * BLOCK + whole)
    return vals, idx


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
        vals, idx = row_top_k(a, k)
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
