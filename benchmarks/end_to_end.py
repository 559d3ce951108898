"""Wall time and peak memory of whole ``psae`` commands, each run as a child process.

Jobs:

* ``reproduce``: ``psae reproduce --quick --out <tmp>`` (the cut-down Fig. 2 reproduction);
* ``fit_mnist``: ``psae fit --data mnist --n-components 1000 --epochs N`` on all 60 000 MNIST
  training images (its JSON line gives the training seconds, hence the time per epoch).

Each job runs as ``sys.executable -m psae ...`` in its own process group; ``os.wait4`` gives its
resource usage, whose ``ru_maxrss`` is the peak resident memory of the job (the largest of the
child and the descendants it waited for). A job that fails (for instance a ``psae`` without the
``reproduce`` command) gets an entry with its return code and the tail of its stderr instead of
stopping the benchmark.

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOBS = ("reproduce", "fit_mnist")


def log(msg: str) -> None:
    """Progress message on stderr."""
    print(msg, file=sys.stderr, flush=True)


def run_job(name: str, argv: list[str], timeout: float, cwd: Path,
            env: dict[str, str] | None = None) -> dict:
    """Run ``argv``, wait with ``os.wait4`` and return wall time, peak RSS and the outcome."""
    log(f"[{name}] {shlex.join(argv)}")
    out_path, err_path = cwd / f"{name}.stdout", cwd / f"{name}.stderr"
    entry: dict = {"name": name, "command": shlex.join(argv)}
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=cwd,
                                    env=env, start_new_session=True)
        except OSError as e:
            return {**entry, "wall_s": None, "peak_rss_mb": None, "returncode": None,
                    "error": f"could not start: {e}"}
        deadline = t0 + timeout
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.perf_counter() > deadline and not timed_out:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)  # the job's own process group
            time.sleep(0.05)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    entry.update({
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024.0,  # Linux reports KiB
        "returncode": proc.returncode,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
    })
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    if timed_out:
        entry["error"] = f"timed out after {timeout:g} s (killed)"
    elif proc.returncode != 0:
        tail = stderr.strip().splitlines()[-5:]
        entry["error"] = " | ".join(tail) or "non-zero exit status"
        if "invalid choice: 'reproduce'" in stderr:
            entry["error"] = "this psae has no 'reproduce' command yet: " + entry["error"]
    last_json = None
    for line in reversed(stdout.strip().splitlines()):
        try:
            last_json = json.loads(line)
            break
        except ValueError:
            continue
    if isinstance(last_json, dict):
        entry["output"] = last_json
    log(f"[{name}] rc={entry['returncode']} wall={wall:.1f}s "
        f"peak_rss={entry['peak_rss_mb']:.0f} MB")
    return entry


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", default=",".join(JOBS), help=f"comma-separated, from {JOBS}")
    p.add_argument("--data-dir", default=os.environ.get("PSAE_DATA", "/work/shared/data"))
    p.add_argument("--epochs", type=int, default=4,
                   help="epochs of the MNIST fit (>= 4: one per sigma stage)")
    p.add_argument("--n-components", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=1800, help="seconds per job before a kill")
    p.add_argument("--threads", type=int, default=None,
                   help="OMP_NUM_THREADS for the jobs (default: inherit, i.e. torch's choice)")
    p.add_argument("--workdir", default=None, help="keep outputs here (default: a temp dir)")
    args = p.parse_args(argv)
    jobs = [j.strip() for j in args.jobs.split(",") if j.strip()]
    unknown = set(jobs) - set(JOBS)
    if unknown:
        p.error(f"unknown jobs {sorted(unknown)}; choose from {JOBS}")

    py = [sys.executable, "-m", "psae"]
    env = dict(os.environ)
    if args.threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory(prefix="psae-e2e-") as tmp:
        work = Path(args.workdir or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        results = []
        for job in jobs:
            # a fresh output directory: reproduce keeps finished cells of an earlier run
            shutil.rmtree(work / job, ignore_errors=True)
            if job == "reproduce":
                cmd = py + ["reproduce", "--quick", "--quiet", "--out", str(work / job)]
                entry = run_job(job, cmd, args.timeout, work, env)
                if entry.get("returncode") == 2 and "--quiet" in entry.get("error", ""):
                    # an older reproduce without --quiet
                    cmd = [c for c in cmd if c != "--quiet"]
                    entry = run_job(job, cmd, args.timeout, work, env)
            else:
                cmd = py + ["fit", "--data", "mnist", "--data-dir", args.data_dir,
                            "--n-components", str(args.n_components),
                            "--epochs", str(args.epochs), "--quiet",
                            "--out", str(work / job)]
                entry = run_job(job, cmd, args.timeout, work, env)
                out = entry.get("output", {})
                if entry["returncode"] == 0 and out.get("seconds") and out.get("epochs"):
                    entry["train_s"] = out["seconds"]
                    entry["epochs"] = out["epochs"]
                    entry["per_epoch_s"] = out["seconds"] / out["epochs"]
            results.append(entry)
    print(json.dumps({"cores": os.cpu_count(), "python": sys.version.split()[0],
                      "omp_num_threads": env.get("OMP_NUM_THREADS"),
                      "loadavg_1min": os.getloadavg()[0], "jobs": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
