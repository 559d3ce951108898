"""0/1 masks as floating-point tensors, and their counts.

A bool mask multiplies slowly on the CPU: it is converted to the other operand's dtype on every
use (0.6 against 0.1 ms for 256 × 1,000 on one thread), while comparing into a float tensor
costs no more than into a bool one. Counting is the same story the other way round: a float
mask's sum takes 0.01 ms where ``count_nonzero`` takes 0.2–1.0 ms (it depends on the density)
and a bool sum 0.3 ms.
"""

from __future__ import annotations

import torch

__all__ = ["indicator", "at_least", "count_ones"]

EXACT_SUM = 2 ** 24
"""Below this many entries a float32 sum of ones is exact (every partial sum is an integer
float32 holds)."""


def indicator(a: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """``1[a > threshold]`` in ``a``'s dtype (0 where ``a`` is NaN); ``threshold`` may be a
    tensor that broadcasts (a per-unit threshold)."""
    return torch.gt(a, threshold, out=torch.empty_like(a))


def at_least(a: torch.Tensor, threshold: torch.Tensor | float) -> torch.Tensor:
    """``1[a ≥ threshold]`` in ``a``'s dtype (0 where ``a`` is NaN)."""
    return torch.ge(a, threshold, out=torch.empty_like(a))


def count_ones(mask: torch.Tensor) -> int:
    """The number of ones in a 0/1 float mask, exactly (float64 past float32's exact range, and
    for half-precision masks)."""
    exact = mask.dtype in (torch.float32, torch.float64) and mask.numel() < EXACT_SUM
    return int(mask.sum() if exact else mask.sum(dtype=torch.float64))
