"""A matched reproduction fitted in turn against the same run on ``--jobs`` worker processes:
the wall seconds of each, on the same cores (``--threads`` in all; each worker gets its share).

Both runs are ``psae.reproduce.compare`` on one named data set, the matched protocol, the
models and seeds asked for, into fresh folders; the second is timed right after the first.
Reported: each run's wall seconds, the sum of its cells' seconds, its cells, the speed-up (in
turn / parallel) and the largest relative difference of any cell's test RE between the two
(the workers fit with fewer threads, so the last bits may differ). The load average before and
after says what else ran.

Prints one JSON object on stdout; progress goes to stderr. ``--smoke`` runs a tiny version.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from psae.reproduce import compare


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def one(out: Path, args, jobs: int) -> dict:
    t0 = time.perf_counter()
    res = compare(args.dataset, protocol="matched", models=args.models.split(","),
                  seeds=args.seeds, quick=args.smoke, out=out, data_dir=args.data_dir,
                  threads=args.threads, jobs=jobs)
    wall = time.perf_counter() - t0
    rows = res.rows()
    return {"jobs": jobs, "wall_s": round(wall, 2), "cells": len(rows),
            "cell_s_sum": round(sum(c["seconds"] for c in res.data["matched"]), 2),
            "re": {f"{r['model']}/{r['target']}/{r['seed']}": r["RE"] for r in rows}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--dataset", default="optdigits")
    p.add_argument("--models", default="rae,l1,kl,psae,l0,topk,batchtopk,jumprelu,sqjumprelu")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    if args.smoke:
        args.dataset, args.models, args.seeds = "digits", "rae,topk", 1
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for jobs in (1, args.jobs):
            log(f"--jobs {jobs} ...")
            runs.append(one(Path(tmp) / f"jobs{jobs}", args, jobs))
            log(f"--jobs {jobs}: {runs[-1]['wall_s']} s")
    a, b = (r.pop("re") for r in runs)
    both = [k for k in a if k in b and a[k] and b[k]]  # a failed fit's RE is None or NaN
    diff = max((abs(a[k] - b[k]) / abs(a[k]) for k in both), default=None)
    print(json.dumps({
        "benchmark": "reproduce_jobs", "dataset": args.dataset, "models": args.models,
        "seeds": args.seeds, "threads": args.threads, "cores": os.cpu_count(),
        "loadavg_1min_before": load_before, "loadavg_1min": os.getloadavg()[0],
        "runs": runs, "speedup": round(runs[0]["wall_s"] / runs[1]["wall_s"], 3),
        "same_cells": sorted(a) == sorted(b), "max_rel_re_diff": diff}))


if __name__ == "__main__":
    main()
