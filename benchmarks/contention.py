"""The default thread count on a shared machine: each job alone and beside a busy process.

For ``psae reproduce --quick`` and one MNIST fit, times the command (a child process, wall
clock) with the default threads and with each fixed ``--threads 1..cores``, on an idle machine
and beside one busy process (a pure-Python spin loop by default, or a 2-thread torch matrix
loop with ``--busy torch``), interleaving the variants. Reports per job and condition the
default's time over the best fixed setting's (target: at most 1.3).

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSY = {
    "spin": "while True: pass",
    "torch": ("import torch\na = torch.randn(512, 784); w = torch.randn(784, 1000)\n"
              "while True: torch.mm(a, w)"),
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def jobs(args: argparse.Namespace, work: Path) -> dict[str, list[str]]:
    if args.smoke:
        return {"fit_digits": ["fit", "--data", "digits", "--n-components", "20",
                               "--epochs", "4", "--quiet", "--out", str(work / "m")]}
    return {
        "reproduce_quick": ["reproduce", "--quick", "--quiet", "--out", str(work / "r")],
        "fit_mnist": ["fit", "--data", "mnist", "--data-dir", args.data_dir, "--n-components",
                      "1000", "--epochs", str(args.epochs), "--quiet", "--out", str(work / "m")],
    }


def run_once(cmd: list[str], threads: int | None, work: Path) -> float:
    for p in work.iterdir():  # every run writes afresh
        subprocess.run(["rm", "-rf", str(p)], check=True)
    argv = [sys.executable, "-m", "psae"] + (["--threads", str(threads)] if threads else []) + cmd
    t0 = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {res.stderr[-2000:]}")
    return time.perf_counter() - t0


def measure(cmd: list[str], settings: list[int | None], repeats: int, work: Path
            ) -> dict[str, float]:
    times: dict[str, list[float]] = {str(s or "default"): [] for s in settings}
    for _ in range(repeats):
        for s in settings:  # interleaved, so drift in the machine's load hits all alike
            times[str(s or "default")].append(run_once(cmd, s, work))
    return {k: min(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--epochs", type=int, default=4,
                   help="epochs of the MNIST fit (>= 4: one per σ stage)")
    p.add_argument("--repeats", type=int, default=3, help="runs per variant (the fastest kept)")
    p.add_argument("--busy", choices=sorted(BUSY), default="spin")
    p.add_argument("--jobs", default=None, help="comma-separated subset of the jobs")
    p.add_argument("--smoke", action="store_true", help="a tiny digits fit only (for tests)")
    args = p.parse_args(argv)
    if args.smoke:
        args.repeats = 1
    cores = os.cpu_count() or 1
    settings: list[int | None] = [None] + list(range(1, cores + 1))
    out: dict = {"cores": cores, "busy": args.busy, "repeats": args.repeats, "jobs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        chosen = jobs(args, work)
        if args.jobs:
            chosen = {k: v for k, v in chosen.items() if k in args.jobs.split(",")}
        for name, cmd in chosen.items():
            row = {}
            for condition in ("alone", "busy"):
                busy = None
                if condition == "busy":
                    busy = subprocess.Popen([sys.executable, "-c", BUSY[args.busy]])
                    time.sleep(1.0)
                try:
                    log(f"{name} {condition}")
                    t = measure(cmd, settings, args.repeats, work)
                finally:
                    if busy is not None:
                        busy.kill()
                        busy.wait()
                best = min(v for k, v in t.items() if k != "default")
                row[condition] = {"seconds": t, "default_over_best": t["default"] / best,
                                  "loadavg_1min": os.getloadavg()[0]}
                log(f"  {json.dumps(row[condition])}")
            out["jobs"][name] = row
    out["worst_default_over_best"] = max(c["default_over_best"] for r in out["jobs"].values()
                                         for c in r.values())
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
