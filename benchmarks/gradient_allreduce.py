"""The data-parallel gradient average: psae's one all-reduce of every gradient laid end to end
(``Comm.average_gradients``) against one all-reduce per parameter, as it was.

Starts ``--ranks`` gloo processes on this machine (``torch.distributed.run``) with one thread
each; each process holds the gradients of an autoencoder of ``--features`` inputs and
``--units`` units (encoder and decoder weights and biases, and a threshold per unit as the
JumpReLUs have). The two ways alternate, in swapped order each round, ``--steps`` calls a
round. Reported: milliseconds per call of each round, and the load average before and after.

Prints one JSON object on stdout. ``--smoke`` runs a tiny version.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def worker(args) -> None:
    import torch
    import torch.distributed as dist

    from psae.distributed import Comm

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    comm = Comm.current()
    m, d = args.units, args.features
    module = torch.nn.ParameterDict({
        name: torch.nn.Parameter(torch.zeros(shape)) for name, shape in
        (("W1", (m, d)), ("b1", (m,)), ("W2", (d, m)), ("b2", (d,)), ("theta", (m,)))})
    for p in module.parameters():
        p.grad = torch.randn_like(p)

    def per_parameter() -> None:
        for p in module.parameters():
            dist.all_reduce(p.grad)
            p.grad /= comm.world

    ways = {"flat": lambda: comm.average_gradients(module), "per_parameter": per_parameter}
    ms: dict[str, list[float]] = {k: [] for k in ways}
    for r in range(args.rounds):
        for name in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
            dist.barrier()
            t = time.perf_counter()
            for _ in range(args.steps):
                ways[name]()
            ms[name].append(round((time.perf_counter() - t) / args.steps * 1e3, 3))
    if comm.is_main:
        print(json.dumps(ms), flush=True)
    dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--units", type=int, default=1000)
    ap.add_argument("--features", type=int, default=784)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.smoke:
        args.units, args.features, args.steps, args.rounds = 8, 4, 3, 2
    if args.worker:
        worker(args)
        return
    load_before = os.getloadavg()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={args.ranks}", __file__, "--worker", "--units", str(args.units),
           "--features", str(args.features), "--steps", str(args.steps), "--rounds",
           str(args.rounds)]
    res = subprocess.run(cmd, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=600)
    if res.returncode != 0:
        sys.exit(res.stderr[-3000:])
    ms = json.loads(next(ln for ln in res.stdout.splitlines() if ln.startswith("{")))
    med = {k: sorted(v)[len(v) // 2] for k, v in ms.items()}
    print(json.dumps({
        "ranks": args.ranks, "threads_per_rank": 1, "units": args.units,
        "features": args.features, "steps_per_round": args.steps, "ms_per_call": ms,
        "median_ms": med, "per_parameter_over_flat": round(med["per_parameter"] / med["flat"], 2),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
