"""Data parallelism on ``torch.distributed``, carried by one small object.

:class:`Comm` holds this process's rank, the world size and the collectives one training run
needs; its default is a single process, where every collective is the identity. The estimator
takes ``Comm.current()`` once in ``fit`` and hands it to the batches and the trainer; nothing
else in psae asks torch.distributed anything.

Run under ``torchrun --nproc_per_node=N -m psae fit ...``: every rank builds the same model from
the same seed, draws the same shuffle, and takes rows ``rank, rank + world, …`` of every global
batch of ``batch_size`` rows; DDP averages the gradients, so with ``batch_size`` divisible by
the world size each full batch's step equals the single-process step on it. Three exceptions:
an epoch's last, short batch is split unevenly and its shares averaged with equal weight (a
batch with fewer rows than ranks is skipped); and SAE+Ber's mean activation and BatchTopK's
batch-wide top-k are taken over each rank's share. Every rank must be given the same ``X``
(``fit`` checks it). gloo on CPU, NCCL on GPU. Only rank 0 should write files. From Python::

    with psae.distributed.process_group():
        model.fit(X)          # under torchrun only; elsewhere it raises ParameterError
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from .errors import ParameterError

__all__ = ["Comm", "SINGLE", "process_group"]


@dataclass(frozen=True)
class Comm:
    """Rank, world size and the all-reduce of one training run (default: one process)."""

    rank: int = 0
    world: int = 1
    backend: str | None = None

    @classmethod
    def current(cls) -> Comm:
        """The default process group when one is initialised, else a single process."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), str(dist.get_backend()))
        return cls()

    def check_device(self, device: torch.device) -> None:
        """Refuse a model on a device the group's collectives cannot move: NCCL takes only
        CUDA tensors, and a CPU model under it failed at the first all-reduce with NCCL's
        words, after the data was loaded (``process_group()`` picks NCCL wherever CUDA is)."""
        if self.world > 1 and self.backend == "nccl" and torch.device(device).type != "cuda":
            raise ParameterError(
                f"the process group uses NCCL, which moves only CUDA tensors, but the model "
                f"trains on {torch.device(device).type}: join it with process_group('cpu') "
                "(gloo) to train on the CPU, or fit with device='cuda'")

    def batch_size(self, requested: int | str, n_samples: int) -> int:
        """The global batch: ``requested`` (at most ``n_samples``), or for ``"auto"`` 256
        from 20,000 rows up, else 128, rounded up to a multiple of the world, or where the
        rows are fewer, their largest multiple of it: every rank takes an equal share of each
        full batch, and a step is the single-process step on the same batch."""
        if requested != "auto":
            return min(n_samples, int(requested))
        base = -(-(256 if n_samples >= 20000 else 128) // self.world) * self.world
        fits = n_samples // self.world * self.world
        return min(base, fits) if fits else n_samples

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that reports progress and writes files."""
        return self.rank == 0

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum of ``t`` over the ranks (``t`` itself in one process)."""
        if self.world > 1:
            t = t.clone()
            dist.all_reduce(t)
        return t

    def all_mean(self, t: torch.Tensor) -> torch.Tensor:
        """Mean of ``t`` over the ranks (``t`` itself in one process)."""
        return self.all_sum(t) / self.world if self.world > 1 else t

    def average_buffers(self, module: torch.nn.Module) -> None:
        """Average the floating buffers over the ranks: state a rank tracks from its own
        share of each batch (BatchTopK's inference threshold), which DDP's forward would
        broadcast but the hand-derived step never passes through."""
        if self.world == 1:
            return
        for b in module.buffers():
            if b.is_floating_point():
                dist.all_reduce(b)
                b /= self.world

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters on every rank (after a change the ranks make on their own,
        as resampling dead units, so that no drift can build up)."""
        if self.world == 1:
            return
        for p in module.parameters():
            dist.broadcast(p.data, src=0)

    def average_gradients(self, module: torch.nn.Module) -> None:
        """Average ``.grad`` over the ranks (what DDP does for an autograd backward pass; the
        hand-derived step of :mod:`psae.training.fused` calls it itself)."""
        if self.world == 1:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        # one all-reduce of every gradient laid end to end, as DDP's buckets do: one per
        # parameter paid the collective's latency four or five times a step
        flat = torch.cat([g.reshape(-1) for g in grads]) if len(grads) > 1 else grads[0]
        dist.all_reduce(flat)
        flat /= self.world
        if len(grads) > 1:
            for g, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
                g.copy_(part.view_as(g))

    def _device(self) -> torch.device:
        """Where this group's collectives take their tensors: CUDA under NCCL, else the CPU."""
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def shared_seed(self, seed: int | None) -> int:
        """Rank 0's ``seed`` on every rank (drawn fresh where None), so that every rank draws
        the same initialisation and shuffles: a ``RandomState`` instance or numpy's global
        state gave each rank its own seed, and the ranks then trained on overlapping rows or
        held out different ones."""
        drawn = int(np.random.default_rng().integers(2**31 - 1)) if seed is None else seed
        if self.world == 1:
            return drawn
        t = torch.tensor([drawn], device=self._device())
        dist.broadcast(t, src=0)
        return int(t.item())

    def same_input(self, X, error: BaseException | None = None) -> None:
        """Stop every rank alike when a rank's ``X`` was refused (``error``) or differs from
        another's in shape or content (a fingerprint of up to 512 rows). Each rank checked its
        own: a refused rank left the others waiting in a collective, and a rank handed its own
        shard trained on part of it while the others went on without it."""
        if self.world == 1:
            if error is not None:
                raise error
            return
        mine = [0.0, 0.0, 0.0, 0.0] if error is not None else [1.0, *_fingerprint(X)]
        lo = torch.tensor(mine, dtype=torch.float64, device=self._device())
        hi = lo.clone()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        if error is not None:
            raise error
        if lo[0] == 0:
            raise ParameterError("another rank's X was refused (that rank's error says why); "
                                 "every rank must be given the same, valid X")
        what = [f"{int(lo[i])} to {int(hi[i])} {unit}" for i, unit in ((1, "rows"),
                                                                     (2, "features"))
                if lo[i] != hi[i]] or (["the same shape but other values"]
                                       if lo[3] != hi[3] else [])
        if what:
            raise ParameterError(
                f"the ranks were given different X ({', '.join(what)}): under data "
                "parallelism every rank passes the same X and takes its own rows of each "
                "batch itself; do not shard the data by rank")

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` as the ranks train it: a DistributedDataParallel wrapper when world > 1."""
        if self.world == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        param = next(module.parameters())
        ids = [param.device.index] if param.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)


def _fingerprint(X) -> tuple[float, float, float]:
    """Rows, features and a position-weighted sum of up to 512 evenly spaced rows (in
    float64: the same array gives the same number on every rank)."""
    n, d = X.shape
    rows = np.unique(np.linspace(0, n - 1, min(n, 512)).astype(np.int64))
    sums = np.asarray(X[rows], dtype=np.float64).sum(axis=1)
    return float(n), float(d), float(sums @ np.arange(1, len(rows) + 1, dtype=np.float64))


SINGLE = Comm()
"""One process: the default everywhere a :class:`Comm` is taken."""


@contextlib.contextmanager
def process_group(device: str | torch.device = "auto", backend: str | None = None
                  ) -> Iterator[Comm]:
    """Join the process group that ``torchrun`` describes in the environment (unless one is
    initialised already), yield its :class:`Comm`, and leave it again on exit."""
    if dist.is_initialized():
        yield Comm.current()
        return
    if "WORLD_SIZE" not in os.environ:
        raise ParameterError("data-parallel training needs a process group: start it with "
                         "torchrun --nproc_per_node=N -m psae fit ...")
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    if dev.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend or ("nccl" if dev.type == "cuda" else "gloo"))
    try:
        yield Comm.current()
    finally:
        dist.destroy_process_group()

