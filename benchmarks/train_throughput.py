"""Training throughput of PSAE: useful FLOP/s of a training step relative to a plain ``torch.mm``.

A PSAE training step (forward, smoothed-L0 penalty, backward, Adam update) does five matrix
products of B·D·M multiply-adds each, so its useful work is ``10·B·D·M`` FLOPs. This script times

* the library's own training step, ``psae.trainer.Trainer.step`` (forward, objective, backward,
  fused Adam), on batches sliced from a tensor,
* ``SparseAutoencoder.fit`` end to end on a synthetic array (the real loop: shuffling,
  ``index_select`` batching, loss bookkeeping, per-epoch snapshots), per step,
* a plain ``torch.mm`` of (B×D)·(D×M) in the same process, interleaved round by round with the
  above so that machine load hits both alike,

and reports ``ratio_to_mm = (10·B·D·M / step_time) / (2·B·D·M / mm_time)``. It also times the
pieces of a step (the five products in the layouts autograd uses, forward+backward, the Adam
update with its three implementations, batching) and whole-step variants (plain Adam, a
hand-written gradient prototype) to show where the time goes.

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from psae import SparseAutoencoder
from psae.network import Autoencoder
from psae.objective import Objective
from psae.trainer import Trainer

SHAPES: tuple[tuple[int, int, int], ...] = ((784, 1000, 256), (3072, 1000, 256), (64, 100, 256))
SMOKE_SHAPES: tuple[tuple[int, int, int], ...] = ((32, 16, 8),)
SIGMA = 0.5
LAM = 10.0


def log(msg: str) -> None:
    """Progress message on stderr."""
    print(msg, file=sys.stderr, flush=True)


def synchronizer(device: torch.device) -> Callable[[], None]:
    """A function that waits for queued work on ``device`` (a no-op on the CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def time_rounds(
    fns: dict[str, Callable[[], object]], rounds: int, calls: int, warmup: int,
    sync: Callable[[], None],
) -> dict[str, list[float]]:
    """Seconds per call of each function, one sample per round, rounds interleaved.

    Every round runs each function ``calls`` times in turn, so slow spells of a shared machine
    fall on all of them alike and per-round ratios stay meaningful.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync()
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            sync()
            out[name].append((time.perf_counter() - t0) / calls)
    return out


def make_step(trainer: Trainer, X: torch.Tensor, batch: int) -> Callable[[], None]:
    """``trainer.step`` (the library's training step) on the next batch sliced from ``X``."""
    n_batches = X.shape[0] // batch
    state = {"i": 0}

    def step() -> None:
        i = state["i"] % n_batches
        state["i"] += 1
        trainer.step(X[i * batch:(i + 1) * batch], SIGMA)

    return step


def objective() -> Objective:
    return Objective.of("sql0", lam=LAM)


def make_manual_step(
    model: Autoencoder, opt: torch.optim.Optimizer, X: torch.Tensor, batch: int, lam: float,
    sigma: float,
) -> Callable[[], None]:
    """Prototype: the same step with the gradient of eq. (9) written out (no autograd).

    Same five products, but the weight gradients come out in the parameters' own (M, D) and
    (D, M) layouts and the elementwise work is a handful of in-place passes.
    """
    n_batches = X.shape[0] // batch
    state = {"i": 0}
    W1, b1, W2, b2 = model.W1, model.b1, model.W2, model.b2
    inv_s2 = 1.0 / sigma**2
    M = W1.shape[0]

    @torch.no_grad()
    def step() -> None:
        i = state["i"] % n_batches
        state["i"] += 1
        x = X[i * batch:(i + 1) * batch]
        n = x.shape[0]
        h = torch.addmm(b1, x, W1.t()).sigmoid_()
        y = torch.addmm(b2, h, W2.t()).sigmoid_()
        e = h.square().mul_(-0.5 * inv_s2).exp_()
        l0 = M - e.sum(dim=1, keepdim=True)
        # d/dz2 of (λ/2N)‖x − y‖²: (λ/N)(y − x)·y(1 − y)
        dz2 = (y - x).mul_(y).mul_(1.0 - y).mul_(lam / n)
        W2.grad = dz2.t().mm(h)
        b2.grad = dz2.sum(dim=0)
        dh = dz2.mm(W2)
        # d/dh of (1/2N) Σ_j L0σ(h_j)²: (1/N) L0σ(h_j) · e_ij · h_ij / σ²
        dh.addcmul_(e.mul_(h), l0, value=inv_s2 / n)
        dz1 = dh.mul_(h).mul_(1.0 - h)
        W1.grad = dz1.t().mm(x)
        b1.grad = dz1.sum(dim=0)
        opt.step()

    return step


def manual_grad_error(D: int, M: int, B: int, device: torch.device) -> float:
    """Largest relative difference between the hand-written and autograd gradients."""
    X = torch.rand(B, D, generator=torch.Generator().manual_seed(3)).to(device) * 0.8 + 0.1
    errs = []
    m_a, _ = fresh(D, M, device)
    total, _, _ = Trainer(m_a, objective()).loss(X, SIGMA)
    total.backward()
    m_m, _ = fresh(D, M, device)
    noop = torch.optim.SGD(m_m.parameters(), lr=0.0)
    make_manual_step(m_m, noop, X, B, LAM, SIGMA)()
    for pa, pm in zip(m_a.parameters(), m_m.parameters(), strict=True):
        scale = float(pa.grad.abs().max()) or 1.0
        errs.append(float((pa.grad - pm.grad).abs().max()) / scale)
    return max(errs)


def fresh(D: int, M: int, device: torch.device, **adam_kw) -> tuple[Autoencoder, torch.optim.Adam]:
    """A seeded model and its Adam optimizer (``adam_kw`` picks the implementation)."""
    model = Autoencoder(D, M, generator=torch.Generator().manual_seed(0)).to(device)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3, **adam_kw)


def bench_shape(
    D: int, M: int, B: int, device: torch.device, args: argparse.Namespace
) -> dict:
    """All figures for one (D, M, B)."""
    sync = synchronizer(device)
    gen = torch.Generator().manual_seed(1)
    n_batches = 8
    X = (torch.rand(n_batches * B, D, generator=gen) * 0.8 + 0.1).to(device)
    a = torch.rand(B, D, generator=gen).to(device)
    w = torch.rand(D, M, generator=gen).to(device)
    model, _ = fresh(D, M, device)
    fns: dict[str, Callable[[], object]] = {
        "mm": lambda: torch.mm(a, w),
        "step": make_step(Trainer(model, objective(), lr=1e-3), X, B),
    }
    if not args.no_breakdown:
        # the five products in the layouts autograd uses for addmm(b, x, W.t())
        W1, b1, W2, b2 = (p.detach() for p in (model.W1, model.b1, model.W2, model.b2))
        x0 = X[:B]
        h0 = torch.rand(B, M, generator=gen).to(device)
        gy = torch.rand(B, D, generator=gen).to(device)
        gz = torch.rand(B, M, generator=gen).to(device)

        def five_mm() -> None:
            torch.addmm(b1, x0, W1.t())  # encoder forward
            torch.addmm(b2, h0, W2.t())  # decoder forward
            torch.mm(gy, W2)  # grad of h
            torch.mm(h0.t(), gy)  # grad of W2ᵀ
            torch.mm(x0.t(), gz)  # grad of W1ᵀ

        m_fb, _ = fresh(D, M, device)
        t_fb = Trainer(m_fb, objective())

        def fwd_bwd() -> None:
            m_fb.zero_grad(set_to_none=True)
            total, _, _ = t_fb.loss(x0, SIGMA)
            total.backward()

        def fwd_only() -> None:
            with torch.no_grad():
                t_fb.loss(x0, SIGMA)

        adams = {}
        for name, kw in (("adam", {}), ("adam_foreach", {"foreach": True}),
                         ("adam_fused", {"fused": True})):
            m_a, o_a = fresh(D, M, device, **kw)
            for p in m_a.parameters():
                p.grad = torch.randn(p.shape, generator=gen).to(device) * 1e-3
            adams[name] = o_a.step
        idx = torch.randperm(X.shape[0], generator=gen)[:B].to(device)
        fns.update({
            "five_mm": five_mm, "forward": fwd_only, "fwd_bwd": fwd_bwd, **adams,
            "index_select": lambda: X.index_select(0, idx),
        })
        m_p, o_p = fresh(D, M, device)
        t_p = Trainer(m_p, objective(), lr=1e-3)
        t_p.new_stage(SIGMA)
        t_p.optimizer = o_p  # the library's step with torch's per-parameter Adam loop
        fns["step_plain_adam"] = make_step(t_p, X, B)
        m_h, o_h = fresh(D, M, device, fused=True)
        fns["step_manual_grad_adam_fused"] = make_manual_step(m_h, o_h, X, B, LAM, SIGMA)

    log(f"shape D={D} M={M} B={B}: timing {len(fns)} kernels x {args.repeats} rounds")
    times = time_rounds(fns, args.repeats, args.calls, args.warmup, sync)
    med = {k: statistics.median(v) for k, v in times.items()}
    mm_flops = 2.0 * B * D * M
    step_flops = 10.0 * B * D * M
    ratios = [(step_flops / s) / (mm_flops / m) for s, m in zip(times["step"], times["mm"],
                                                                 strict=True)]

    # the real loop: SparseAutoencoder.fit on a synthetic array, one epoch per sigma stage
    rng = np.random.default_rng(0)
    Xs = rng.uniform(0.1, 0.9, size=(args.fit_samples, D)).astype(np.float32)
    est = SparseAutoencoder(n_components=M, penalty="sql0", lam=LAM, epochs=args.fit_epochs,
                            batch_size=B, device=str(device), random_state=0)
    log(f"  fit {args.fit_samples}x{D}, {args.fit_epochs} epochs")
    # the mm reference for the fit is timed right before and after it (load drifts)
    mm_fit = time_rounds({"mm": fns["mm"]}, args.repeats, args.calls, 1, sync)["mm"]
    est.fit(Xs)
    mm_fit += time_rounds({"mm": fns["mm"]}, args.repeats, args.calls, 0, sync)["mm"]
    mm_fit_t = statistics.median(mm_fit)
    steps_per_epoch = math.ceil(args.fit_samples / min(B, args.fit_samples))
    epoch_s = statistics.median(h["seconds"] for h in est.history_)
    fit_step = epoch_s / steps_per_epoch
    mm_t, step_t = med["mm"], med["step"]
    row = {
        "shape": [D, M, B],
        "ratio_to_mm": statistics.median(ratios),
        "step_ms": step_t * 1e3,
        "fit_step_ms": fit_step * 1e3,
        "fit_ratio_to_mm": (step_flops / fit_step) / (mm_flops / mm_fit_t),
        "mm_gflops": mm_flops / mm_t / 1e9,
        "step_gflops": step_flops / step_t / 1e9,
        "mm_ms": mm_t * 1e3,
        "mm_ms_around_fit": mm_fit_t * 1e3,
        "ratio_rounds": ratios,
        "fit_seconds": est.fit_time_,
        "fit_steps_per_epoch": steps_per_epoch,
    }
    if not args.no_breakdown:
        row["manual_grad_max_rel_error"] = manual_grad_error(D, M, B, device)
        row["breakdown_ms"] = {k: v * 1e3 for k, v in med.items() if k not in ("mm", "step")}
        row["variants_ratio_to_mm"] = {
            k: (step_flops / v) / (mm_flops / mm_t) for k, v in med.items()
            if k.startswith("step_")
        }
    log(f"  ratio {row['ratio_to_mm']:.3f}  step {row['step_ms']:.2f} ms  "
        f"fit step {row['fit_step_ms']:.2f} ms  mm {row['mm_ms']:.3f} ms")
    return row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--repeats", type=int, default=7, help="interleaved timing rounds (median)")
    p.add_argument("--calls", type=int, default=10, help="calls per function per round")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per function first")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--fit-samples", type=int, default=16384)
    p.add_argument("--fit-epochs", type=int, default=4, help="fit epochs (>= 4 sigma stages)")
    p.add_argument("--shapes", default=None,
                   help="D,M,B triples separated by ';' (default: the three of the issue)")
    p.add_argument("--no-breakdown", action="store_true", help="time only mm, step and fit")
    p.add_argument("--smoke", action="store_true", help="tiny shapes, one round (for tests)")
    args = p.parse_args(argv)
    if args.smoke:
        args.repeats, args.calls, args.warmup = 1, 1, 1
        args.fit_samples, args.fit_epochs = 64, 4
        if args.threads is None:  # tiny ops: skip OpenMP hand-offs on a loaded machine
            args.threads = 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.shapes:
        shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")]
    else:
        shapes = list(SMOKE_SHAPES if args.smoke else SHAPES)
    results = [bench_shape(D, M, B, device, args) for D, M, B in shapes]
    print(json.dumps({
        "results": results,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cores": os.cpu_count(),
        "loadavg_1min": os.getloadavg()[0],
        "repeats": args.repeats,
        "calls_per_round": args.calls,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
