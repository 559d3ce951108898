"""Where training batches come from: a tensor on the device, or an array streamed from disk.

Both shuffle every epoch from a torch generator, so the same seed gives the same batches, and
both can hand each data-parallel rank its slice of every global batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import torch

from ..distributed import SINGLE, Comm
from ..errors import ParameterError
from ..streaming import is_streamed

__all__ = ["TensorBatches", "StreamedBatches", "make_batches"]


def n_batches(n: int, batch_size: int, comm: Comm = SINGLE) -> int:
    """Batches an epoch yields: ``ceil(n / batch_size)``, less the short last one where it is
    smaller than the world (every rank skips it)."""
    full, rest = divmod(n, batch_size)
    return full + (rest >= comm.world)


class TensorBatches:
    """Mini-batches sliced from a whole data set held as one tensor on the device.

    Each epoch draws a permutation; global batch ``b`` is ``perm[b*B:(b+1)*B]`` and rank ``r`` of
    ``world`` takes rows ``r, r + world, …`` of it (so ``B`` divisible by ``world`` gives every
    rank the same share and the averaged gradient equals the single-process one).
    """

    def __init__(self, X: torch.Tensor, batch_size: int, comm: Comm = SINGLE):
        self.X = X
        self.batch_size = min(batch_size, X.shape[0])
        self.comm = comm

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    def __len__(self) -> int:
        return n_batches(self.n_samples, self.batch_size, self.comm)

    def epoch(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        perm = torch.randperm(self.n_samples, generator=generator).to(self.X.device)
        for start in range(0, self.n_samples, self.batch_size):
            idx = perm[start : start + self.batch_size]
            world = self.comm.world
            if world > 1:
                if idx.numel() < world:  # every rank skips it: collectives stay in step
                    continue
                idx = idx[self.comm.rank :: world]
            yield self.X.index_select(0, idx)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Up to ``n`` random rows (for resampling dead units)."""
        idx = torch.randperm(self.n_samples, generator=generator)[:n].to(self.X.device)
        return self.X.index_select(0, idx)

    def full(self) -> torch.Tensor:
        """The whole (local) data set, for full-batch solvers."""
        if self.comm.world > 1:
            return self.X[self.comm.rank :: self.comm.world]
        return self.X


class StreamedBatches:
    """Mini-batches streamed from an array that need not fit in memory (``np.memmap``, shards).

    The rows are cut into blocks of ``batch_size`` contiguous rows. Each epoch deals the blocks
    out in a random order, ``chunk_rows // batch_size`` of them to a chunk; a chunk's blocks are
    read (each one contiguous read, in file order), its rows shuffled and sliced into batches.
    So memory holds one chunk, never the whole array, and a batch draws its rows from up to 64
    places across the file. Contiguous chunks, as before, gave a file stored class by class (or
    document by document) batches of one or two classes: on MNIST binarised to 16 x 16 and
    stored class by class, a TopK fit (M = 128, k = 10, 8 epochs) reached held-out FVU 0.314
    streamed that way, 0.264 streamed by blocks, 0.267 in memory.
    """

    def __init__(
        self,
        X,
        batch_size: int,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        chunk_rows: int | None = None,
        comm: Comm = SINGLE,
    ):
        self.X = X
        self.batch_size = min(batch_size, X.shape[0])
        self.device, self.dtype = device, dtype
        self.blocks_per_chunk = max(1, (chunk_rows or 64 * self.batch_size) // self.batch_size)
        self.chunk_rows = self.blocks_per_chunk * self.batch_size
        self.comm = comm

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    def __len__(self) -> int:
        # a chunk of k blocks, one of them perhaps the file's short last block, is k batches
        return n_batches(self.n_samples, self.batch_size, self.comm)

    def _tensor(self, rows: np.ndarray) -> torch.Tensor:
        """Rows already copied out of the file (a fancy index, a concatenation) as a tensor
        on the device, with no second copy where they are float32 already."""
        return torch.from_numpy(np.asarray(rows, np.float32)).to(device=self.device,
                                                                  dtype=self.dtype)

    def epoch(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        B, n, k = self.batch_size, self.n_samples, self.blocks_per_chunk
        order = torch.randperm(-(-n // B), generator=generator)  # the blocks
        for c in range(0, len(order), k):
            blocks = order[c : c + k].sort().values.tolist()  # file order: reads go forward
            if self.comm.world == 1:
                chunk = np.concatenate([self.X[b * B : min(b * B + B, n)] for b in blocks],
                                       dtype=np.float32)  # the one copy out of the file
                yield from TensorBatches(self._tensor(chunk), B).epoch(generator)
            else:
                rows = np.concatenate([np.arange(b * B, min(b * B + B, n)) for b in blocks])
                yield from self._rank_batches(rows, generator)

    def _rank_batches(self, rows: np.ndarray, generator: torch.Generator
                      ) -> Iterator[torch.Tensor]:
        """This rank's share of each batch of the chunk made of ``rows``: the very rows
        :class:`TensorBatches` would slice from the whole chunk (same permutation, same
        shares), read alone. A rank read the whole chunk to keep ``1/world`` of it, so
        ``world`` ranks read the data ``world`` times over."""
        perm = torch.randperm(len(rows), generator=generator)
        world, B = self.comm.world, self.batch_size
        shares = [perm[s : s + B][self.comm.rank :: world] for s in range(0, len(rows), B)
                  if perm[s : s + B].numel() >= world]  # a smaller one: every rank skips it
        if not shares:
            return
        wanted, where = np.unique(rows[torch.cat(shares).numpy()], return_inverse=True)
        mine = self._tensor(self.X[wanted])  # in file order: the disk reads forward
        at = torch.from_numpy(where).to(self.device)
        start = 0
        for share in shares:
            yield mine.index_select(0, at[start : start + share.numel()])
            start += share.numel()

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """About ``min(n, chunk_rows)`` rows drawn from the whole array (the pre-encoder
        bias's mean, the recentring, resampling dead units). One chunk's rows, as before, were
        one class's wherever the rows are stored class by class; the cap keeps the promise that
        memory holds one chunk. Drawn with replacement and deduplicated: a permutation of
        every row index would itself outgrow the memory on a large array."""
        m = min(n, self.chunk_rows, self.n_samples)
        idx = torch.randint(self.n_samples, (m,), generator=generator).numpy()
        return self._tensor(self.X[np.unique(idx)])  # sorted: the disk reads in order

    def full(self) -> torch.Tensor:
        raise ParameterError(
            "the L-BFGS solver needs the whole data set in memory; use solver='adam' for "
            "streamed (memory-mapped or sharded) data"
        )


def make_batches(
    X, batch_size: int, device: torch.device, comm: Comm = SINGLE
) -> TensorBatches | StreamedBatches:
    """Tensor batches for in-memory arrays; streamed batches for ``np.memmap`` input."""
    if is_streamed(X):
        return StreamedBatches(X, batch_size, device, comm=comm)
    A = np.ascontiguousarray(X, dtype=np.float32)
    with warnings.catch_warnings():
        # a read-only array (pandas' to_numpy, np.load's mmap) is shared, not copied: nothing
        # writes into it (batches are index_select copies), so torch's warning does not apply
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        Xt = torch.as_tensor(A).to(device)
    return TensorBatches(Xt, batch_size, comm)
