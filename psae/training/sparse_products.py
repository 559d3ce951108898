"""The products of a sparse-code step taken on the codes' non-zeros.

With k of M units on per sample, a dense step pays N·M·D for each of its products, although
all but N·k of the code's entries are zero. Three of them only ever meet the code:

- the decode ``h W2ᵀ`` and the gradients ``hᵀ δ2`` (decoder) and ``δ1ᵀ x`` (encoder) are sums
  of rows picked by the code: a bag of atoms per sample or a bag of samples per unit, which
  ``embedding_bag`` adds at N·k·D;
- ``δ2 W2``, the code's gradient, is needed only where the code is on (its chain rule has a
  zero elsewhere): a CSR ``sampled_addmm`` computes just those entries.

Only the encoder's product ``x W1ᵀ`` stays dense, since every pre-activation takes part in the
selection. :func:`use_sparse_products` says when this pays: on a CPU, in float32 or float64
(bf16 products on AMX are already faster than gathering), for codes at most 1/8 full and
products large enough that the gathers' overhead is repaid (measured in benchmarks/README).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["CodePattern", "decode_rows", "sparse_capable", "use_sparse_products"]

MAX_DENSITY = 1 / 8
"""The fullest code that takes the sparse path: past it the gathers cost more than the dense
products they replace (a TopK step at k/M = 1/8 measured about even)."""
MIN_PRODUCT = 1e7
"""The smallest ``N·M·D`` that takes it: below, fixed costs (sorting, building the pattern)
outweigh the saving (3,000 rows at 256 → 100 → 128 ran 1.0–1.2× slower sparse)."""


def sparse_capable(a: torch.Tensor, precision: str, n_features: int) -> bool:
    """Whether a step on pre-activations ``a`` (N × M) may take its products sparse at all:
    a CPU tensor, float32 or float64 products (not bf16), ``N·M·D`` at least
    :data:`MIN_PRODUCT`."""
    return (a.device.type == "cpu" and precision != "bf16"
            and a.dtype in (torch.float32, torch.float64)
            and a.numel() * n_features >= MIN_PRODUCT)


def use_sparse_products(a: torch.Tensor, nnz: int, precision: str, n_features: int) -> bool:
    """Whether a code with ``nnz`` non-zeros among ``a``'s entries takes the sparse path."""
    return sparse_capable(a, precision, n_features) and nnz <= MAX_DENSITY * a.numel()


@dataclass
class CodePattern:
    """Where an ``n_rows × n_cols`` code is on: its entries in row-major order (``rows``,
    ``cols``, row offsets ``crow``), and the column-major order of the same entries (``order``,
    their rows in it ``col_rows``, column offsets ``ccol``) for the products that sum per unit.
    Values live outside, in one 1-D tensor per quantity, in row-major order."""

    rows: torch.Tensor
    cols: torch.Tensor
    crow: torch.Tensor
    n_rows: int
    n_cols: int
    order: torch.Tensor
    col_rows: torch.Tensor
    ccol: torch.Tensor

    @classmethod
    def of(cls, rows: torch.Tensor, cols: torch.Tensor, n_rows: int, n_cols: int
           ) -> CodePattern:
        """From the row and column of every entry, listed row by row (columns ascending
        within a row, as CSR asks)."""
        crow = _offsets(rows, n_rows)
        order = torch.argsort(cols, stable=True)
        return cls(rows, cols, crow, n_rows, n_cols, order, rows[order],
                   _offsets(cols[order], n_cols))

    @classmethod
    def from_topk(cls, idx: torch.Tensor, n_cols: int) -> tuple[CodePattern, torch.Tensor]:
        """From a top-k's indices (N × k, any order within a row); also the permutation of the
        flattened top-k entries into the pattern's order, to carry their values along."""
        n, k = idx.shape
        cols, perm = idx.sort(dim=1)
        flat = perm + torch.arange(0, n * k, k, device=idx.device).unsqueeze(1)
        rows = torch.arange(n, device=idx.device).repeat_interleave(k)
        return cls.of(rows, cols.flatten(), n, n_cols), flat.flatten()

    @classmethod
    def from_dense(cls, mask: torch.Tensor) -> CodePattern:
        """From an ``N × M`` mask (bool, or 0/1 floats) of the entries that are on."""
        rows, cols = mask.nonzero(as_tuple=True)
        return cls.of(rows, cols, *mask.shape)

    def renumbered(self, units: torch.Tensor, n_cols: int) -> CodePattern:
        """The same entries with column ``c`` renamed ``units[c]`` among ``n_cols`` (``units``
        strictly increasing, so each row's columns stay ascending and the column-major order
        holds)."""
        cols = units[self.cols]
        return CodePattern(self.rows, cols, self.crow, self.n_rows, n_cols, self.order,
                           self.col_rows, _offsets(cols[self.order], n_cols))

    @property
    def nnz(self) -> int:
        """The number of entries that are on."""
        return int(self.cols.numel())

    def gather(self, dense: torch.Tensor) -> torch.Tensor:
        """The entries of an ``N × M`` tensor on the pattern."""
        return dense[self.rows, self.cols]

    def decode(self, values: torch.Tensor, atoms: torch.Tensor) -> torch.Tensor:
        """``H A`` for the code ``H`` with these values and ``atoms`` ``A`` (M × D, rows
        contiguous): each sample's bag of atoms, N × D."""
        return _bag_sums(self.cols, atoms, self.crow, values)

    def left_product(self, values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``Hᵀ X`` for ``X`` (N × D): each unit's bag of samples, M × D."""
        return _bag_sums(self.col_rows, x, self.ccol, values[self.order])

    def sampled(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """The entries of ``left @ right`` (N × D by D × M) on the pattern only; a column-major
        ``right`` (the transpose of a row-major M × D) saves the product a copy."""
        with warnings.catch_warnings():  # CSR's "beta" notice, once per process
            warnings.simplefilter("ignore", UserWarning)
            # zeros, not empty: on the CPU beta = 0 still multiplies the old values, and 0 · NaN
            # from uninitialised memory would poison the product
            csr = torch.sparse_csr_tensor(self.crow, self.cols, left.new_zeros(self.nnz),
                                          (self.n_rows, self.n_cols), check_invariants=False)
            return torch.sparse.sampled_addmm(csr, left, right, beta=0.0).values()

    def column_sums(self, values: torch.Tensor) -> torch.Tensor:
        """Each unit's sum over samples (M)."""
        return values.new_zeros(self.n_cols).index_add_(0, self.cols, values)


def decode_rows(h: torch.Tensor, atoms: torch.Tensor) -> torch.Tensor:
    """``h @ atoms`` for a code ``h`` (N × M) with few non-zeros and ``atoms`` (M × D, rows
    contiguous): each row's bag of atoms, without the column-major order a step's pattern
    also builds."""
    rows, cols = h.nonzero(as_tuple=True)
    return _bag_sums(cols, atoms, _offsets(rows, h.shape[0]), h[rows, cols])


def _bag_sums(ids: torch.Tensor, table: torch.Tensor, offsets: torch.Tensor,
              weights: torch.Tensor) -> torch.Tensor:
    """One weighted sum of ``table``'s rows ``ids`` per bag, the bags cut by CSR ``offsets``."""
    return F.embedding_bag(ids, table, offsets, mode="sum", per_sample_weights=weights,
                           include_last_offset=True)


def _offsets(sorted_ids: torch.Tensor, n: int) -> torch.Tensor:
    """CSR offsets (n + 1) of ids listed in ascending order."""
    out = torch.zeros(n + 1, dtype=torch.long, device=sorted_ids.device)
    out[1:] = torch.bincount(sorted_ids, minlength=n).cumsum(0)
    return out
