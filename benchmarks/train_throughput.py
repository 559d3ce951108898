"""Training throughput: useful FLOP/s of a training step relative to a plain ``torch.mm``,
in float32 and in bf16.

A PSAE training step (forward, smoothed-L0 penalty, backward, Adam update) does five matrix
products of B·D·M multiply-adds each, so its useful work is ``10·B·D·M`` FLOPs. This script times,
for each shape, in float32 and in bf16 (``precision="bf16"``), interleaved in one run:

* the library's own training step, ``psae.training.trainer.Trainer.step`` (the hand-derived step of
  ``psae.training.fused`` and fused Adam), on batches sliced from a tensor,
* ``SparseAutoencoder.fit`` end to end on a synthetic array (the real loop: shuffling,
  ``index_select`` batching, loss bookkeeping, per-epoch snapshots), per step,
* a plain ``torch.mm`` of (B×D)·(D×M) in the same precision, interleaved round by round with
  the above so that machine load hits both alike,

and reports ``ratio_to_mm = (10·B·D·M / step_time) / (2·B·D·M / mm_time)`` (``fit_ratio_to_mm``
for the float32 fit, ``bf16.fit_ratio_to_bf16_mm`` for the bf16 one) and the bf16 fit's speed-up
over the float32 fit. It also times the pieces of a step (the five products, the autograd
forward+backward, the hand-derived gradients, the Adam variants, batching) and the autograd
step in both precisions, to show where the time goes.

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
from psae.training.fused import fused_gradients
from psae.training.network import Autoencoder
from psae.training.objective import Objective
from psae.training.trainer import Trainer

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


def fused_grad_error(D: int, M: int, B: int, device: torch.device) -> float:
    """Largest relative difference between the library's hand-derived gradients
    (psae.training.fused) and autograd's, in float32 on one batch."""
    X = torch.rand(B, D, generator=torch.Generator().manual_seed(3)).to(device) * 0.8 + 0.1
    m_a, _ = fresh(D, M, device)
    total, _, _ = Trainer(m_a, objective()).loss(X, SIGMA)
    total.backward()
    m_f, _ = fresh(D, M, device)
    fused_gradients(m_f, objective(), X, SIGMA, "fp32")
    errs = []
    for pa, pf in zip(m_a.parameters(), m_f.parameters(), strict=True):
        scale = float(pa.grad.abs().max()) or 1.0
        errs.append(float((pa.grad - pf.grad).abs().max()) / scale)
    return max(errs)


def fresh(D: int, M: int, device: torch.device, **adam_kw) -> tuple[Autoencoder, torch.optim.Adam]:
    """A seeded model and its Adam optimizer (``adam_kw`` picks the implementation)."""
    model = Autoencoder(D, M, generator=torch.Generator().manual_seed(0)).to(device)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3, **adam_kw)


def _trainer(D: int, M: int, device: torch.device, precision: str, fused: bool = True) -> Trainer:
    model = Autoencoder(D, M, generator=torch.Generator().manual_seed(0),
                        precision=precision).to(device)  # the trainer runs in its precision
    return Trainer(model, objective(), lr=1e-3, fused=fused)


def _breakdown(D: int, M: int, B: int, device: torch.device, X: torch.Tensor,
               gen: torch.Generator) -> dict[str, Callable[[], object]]:
    """The pieces of a step: products, forward/backward, the Adam variants, batching."""
    model, _ = fresh(D, M, device)
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

    t_fb = _trainer(D, M, device, "fp32", fused=False)

    def fwd_bwd() -> None:
        t_fb.module.zero_grad(set_to_none=True)
        total, _, _ = t_fb.loss(x0, SIGMA)
        total.backward()

    fns: dict[str, Callable[[], object]] = {"five_mm": five_mm, "fwd_bwd_autograd": fwd_bwd}
    for precision in ("fp32", "bf16"):
        m_f, _ = fresh(D, M, device)
        fns[f"gradients_fused_{precision}"] = (
            lambda m=m_f, p=precision: fused_gradients(m, objective(), x0, SIGMA, p))
    for name, kw in (("adam", {}), ("adam_foreach", {"foreach": True}),
                     ("adam_fused", {"fused": True})):
        m_a, o_a = fresh(D, M, device, **kw)
        for p in m_a.parameters():
            p.grad = torch.randn(p.shape, generator=gen).to(device) * 1e-3
        fns[name] = o_a.step
    idx = torch.randperm(X.shape[0], generator=gen)[:B].to(device)
    fns["index_select"] = lambda: X.index_select(0, idx)
    fns["step_autograd_fp32"] = make_step(_trainer(D, M, device, "fp32", fused=False), X, B)
    fns["step_autograd_bf16"] = make_step(_trainer(D, M, device, "bf16", fused=False), X, B)
    return fns


def _fit_step_ms(D: int, M: int, B: int, device: torch.device, precision: str,
                 args: argparse.Namespace, Xs: np.ndarray) -> tuple[float, float]:
    """(median ms per step of SparseAutoencoder.fit's epochs, fit seconds)."""
    est = SparseAutoencoder(n_components=M, penalty="sql0", lam=LAM, epochs=args.fit_epochs,
                            batch_size=B, device=str(device), random_state=0,
                            precision=precision, threads=torch.get_num_threads())
    est.fit(Xs)
    steps_per_epoch = math.ceil(args.fit_samples / min(B, args.fit_samples))
    return statistics.median(h["seconds"] for h in est.history_) / steps_per_epoch * 1e3, \
        est.fit_time_


def _fits(D: int, M: int, B: int, device: torch.device, args: argparse.Namespace,
          mms: dict[str, Callable[[], object]], sync) -> dict[str, float]:
    """fp32 and bf16 fits, alternated ``fit_rounds`` times, each with the matching mm timed
    right before and after it (the machine's load drifts)."""
    Xs = np.random.default_rng(0).uniform(0.1, 0.9, size=(args.fit_samples, D)) \
        .astype(np.float32)
    step: dict[str, list[float]] = {"fp32": [], "bf16": []}
    mm: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(args.fit_rounds):
        for precision in ("fp32", "bf16"):
            ref = {"mm": mms["fp32" if precision == "fp32" else "bf16"]}
            log(f"  fit {args.fit_samples}x{D} in {precision}, {args.fit_epochs} epochs")
            mm[precision] += time_rounds(ref, args.repeats, args.calls, 1, sync)["mm"]
            step[precision].append(_fit_step_ms(D, M, B, device, precision, args, Xs)[0])
            mm[precision] += time_rounds(ref, args.repeats, args.calls, 0, sync)["mm"]
    return {f"{k}_step_ms": statistics.median(v) for k, v in step.items()} | \
        {f"{k}_mm_ms": statistics.median(v) * 1e3 for k, v in mm.items()}


def bench_shape(
    D: int, M: int, B: int, device: torch.device, args: argparse.Namespace
) -> dict:
    """All figures for one (D, M, B)."""
    sync = synchronizer(device)
    gen = torch.Generator().manual_seed(1)
    X = (torch.rand(8 * B, D, generator=gen) * 0.8 + 0.1).to(device)
    a = torch.rand(B, D, generator=gen).to(device)
    w = torch.rand(D, M, generator=gen).to(device)
    a16, w16 = a.to(torch.bfloat16), w.to(torch.bfloat16)
    fns: dict[str, Callable[[], object]] = {
        "mm": lambda: torch.mm(a, w),
        "mm_bf16": lambda: torch.mm(a16, w16),
        "step": make_step(_trainer(D, M, device, "fp32"), X, B),
        "step_bf16": make_step(_trainer(D, M, device, "bf16"), X, B),
    }
    if not args.no_breakdown:
        fns.update(_breakdown(D, M, B, device, X, gen))
    log(f"shape D={D} M={M} B={B}: timing {len(fns)} kernels x {args.repeats} rounds")
    times = time_rounds(fns, args.repeats, args.calls, args.warmup, sync)
    med = {k: statistics.median(v) for k, v in times.items()}
    mm_flops, step_flops = 2.0 * B * D * M, 10.0 * B * D * M
    ratios = [(step_flops / s) / (mm_flops / m) for s, m in zip(times["step"], times["mm"],
                                                                 strict=True)]
    fit = _fits(D, M, B, device, args, {"fp32": fns["mm"], "bf16": fns["mm_bf16"]}, sync)
    mm_t, step_t = med["mm"], med["step"]
    row = {
        "shape": [D, M, B],
        "ratio_to_mm": statistics.median(ratios),
        "step_ms": step_t * 1e3,
        "fit_step_ms": fit["fp32_step_ms"],
        "fit_ratio_to_mm": (step_flops / fit["fp32_step_ms"]) / (mm_flops / fit["fp32_mm_ms"]),
        "mm_gflops": mm_flops / mm_t / 1e9,
        "step_gflops": step_flops / step_t / 1e9,
        "mm_ms": mm_t * 1e3,
        "mm_ms_around_fit": fit["fp32_mm_ms"],
        "ratio_rounds": ratios,
        "bf16": {
            "step_ms": med["step_bf16"] * 1e3,
            "ratio_to_bf16_mm": (step_flops / med["step_bf16"]) / (mm_flops / med["mm_bf16"]),
            "mm_gflops": mm_flops / med["mm_bf16"] / 1e9,
            "mm_speedup_vs_fp32_mm": mm_t / med["mm_bf16"],
            "fit_step_ms": fit["bf16_step_ms"],
            "fit_ratio_to_bf16_mm": (step_flops / fit["bf16_step_ms"])
            / (mm_flops / fit["bf16_mm_ms"]),
            "speedup_vs_fp32_fit": fit["fp32_step_ms"] / fit["bf16_step_ms"],
        },
    }
    if not args.no_breakdown:
        row["fused_grad_max_rel_error"] = fused_grad_error(D, M, B, device)
        row["breakdown_ms"] = {k: v * 1e3 for k, v in med.items()
                               if k not in ("mm", "mm_bf16", "step", "step_bf16")}
        row["variants_ratio_to_mm"] = {
            k: (step_flops / v) / (mm_flops / mm_t) for k, v in med.items()
            if k.startswith("step_")
        }
    log(f"  fp32: step {row['step_ms']:.2f} ms, fit step {row['fit_step_ms']:.2f} ms, "
        f"fit/mm {row['fit_ratio_to_mm']:.2f}; bf16: fit step {fit['bf16_step_ms']:.2f} ms, "
        f"fit/bf16 mm {row['bf16']['fit_ratio_to_bf16_mm']:.2f}, "
        f"{row['bf16']['speedup_vs_fp32_fit']:.2f}x the fp32 fit")
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
    p.add_argument("--fit-rounds", type=int, default=2,
                   help="fp32/bf16 fit pairs, alternated (median kept)")
    p.add_argument("--shapes", default=None,
                   help="D,M,B triples separated by ';' (default: the three of the issue)")
    p.add_argument("--no-breakdown", action="store_true", help="time only mm, step and fit")
    p.add_argument("--smoke", action="store_true", help="tiny shapes, one round (for tests)")
    args = p.parse_args(argv)
    if args.smoke:
        args.repeats, args.calls, args.warmup = 1, 1, 1
        args.fit_samples, args.fit_epochs, args.fit_rounds = 64, 4, 1
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
