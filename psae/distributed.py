"""Data-parallel training on ``torch.distributed`` (DistributedDataParallel).

Run under ``torchrun --nproc_per_node=N -m psae fit ...`` (or ``psae fit --distributed``): every
rank builds the same model from the same seed, draws the same shuffle, and takes rows
``rank, rank + world, …`` of every global batch of ``batch_size`` rows; DDP averages the
gradients, so with ``batch_size`` divisible by the world size each step equals the single-process
step on the same global batch. gloo on CPU, NCCL on GPU. Only rank 0 should write files.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .estimator import SparseAutoencoder, resolve_device
from .streaming import check_streamed, is_streamed

__all__ = ["fit_distributed"]


def fit_distributed(model: SparseAutoencoder, X, backend: str | None = None) -> int:
    """Fit ``model`` on ``X`` as one rank of a process group; returns this process's rank.

    Initialises the default process group from the environment (``torchrun`` sets it) unless
    one is already initialised, and tears it down again if it set it up.
    """
    device = resolve_device(model.device)
    own_group = not dist.is_initialized()
    if own_group:
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"))
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        if model.batch_size % world:
            warnings.warn(f"batch_size={model.batch_size} is not divisible by the world size "
                          f"{world}: ranks get unequal shares and steps differ slightly from "
                          "a single process", stacklevel=2)
        model._validate_params()
        if is_streamed(X):
            check_streamed(X)
        else:
            X = np.ascontiguousarray(X, dtype=np.float32)
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
            if not np.isfinite(X).all():
                raise ValueError("Input X contains NaN or infinity")
        model.n_features_in_ = X.shape[1]
        if rank != 0:
            model.verbose = False
        # every rank must draw the same initialisation and shuffles: share rank 0's seed
        seed = None
        if model.random_state is None:
            t = torch.tensor([int(np.random.default_rng().integers(2**31 - 1))], device=device)
            dist.broadcast(t, src=0)
            seed = int(t.item())
        ids = [torch.cuda.current_device()] if device.type == "cuda" else None

        def wrap(module):
            return DistributedDataParallel(module, device_ids=ids)

        model._fit(X, rank=rank, world=world, wrap=wrap, seed=seed)
    finally:
        if own_group:
            dist.destroy_process_group()
    return rank
