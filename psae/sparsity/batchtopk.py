"""BatchTopK (Bussmann, Leask & Nanda, 2024): while training, the k·B largest activations of
the whole batch are kept (samples share the budget, mean L0 = k); for inference a threshold θ,
a running mean over training batches of the smallest activation kept, gives
``h = a · 1[a > θ]``, so a sample's code never depends on the rest of its batch.

Same recipe as TopK otherwise: pre-encoder bias, tied start, unit-norm decoder, AuxK.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from .auxk import aux_reconstruction
from .topk import TOPK


class BatchTopK(nn.Module):
    """Batch-level top-k·B while training; the learned threshold θ when encoding."""

    def __init__(self, k: int, momentum: float = 0.01):
        super().__init__()
        self.k, self.momentum = int(k), momentum
        self.register_buffer("threshold", torch.zeros(()))
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))
        self.dead: torch.Tensor | None = None

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return a * (a > self.threshold)
        flat = a.relu().flatten()
        vals, idx = flat.topk(min(self.k * a.shape[0], flat.numel()))
        self._track(vals)
        return torch.zeros_like(flat).scatter(0, idx, vals).view_as(a)

    @torch.no_grad()
    def _track(self, kept: torch.Tensor) -> None:
        positive = kept[kept > 0]
        if positive.numel() == 0:
            return
        low = positive.min()
        # a running mean that forgets the untrained start: exact for the first batches,
        # then exponential with the given momentum
        m = max(self.momentum, 1.0 / float(self.batches + 1))
        self.threshold.mul_(1 - m).add_(low * m)
        self.batches += 1

    def extra(self, a: torch.Tensor, h: torch.Tensor, net) -> dict:
        return aux_reconstruction(self, a, net)


BATCHTOPK = replace(
    TOPK, name="batchtopk", label="BatchTopK",
    summary="BatchTopK: k·B largest units per batch in training, a learned threshold after",
    formula="mean_j ‖x_j − x̂_j‖² / 2 + (α/2) L_aux, top k·B of ReLU(W(x − b_pre) + b) per batch",
    params=("k",),
    code=lambda m, s: BatchTopK(s["k"]),
    key="",
)
