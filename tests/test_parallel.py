"""--jobs: a run's cells fitted in worker processes give the cells a run in turn gives, keep
the cells that depend on each other in order in one worker, resume like any run, and stop on a
worker's error."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from psae.cli import main
from psae.errors import ParameterError, PsaeError
from psae.reproduce import compare, protocols
from psae.reproduce.cell_runner import Cells
from psae.reproduce.cells import Planned
from psae.reproduce.parallel import groups, run_parallel, worker_threads
from psae.reproduce.protocols import CellRules, Protocol
from psae.reproduce.runner import RunConfig

MODELS = ["rae", "topk", "jumprelu"]


def _stamps(out):
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in (out / "cells").glob("[!.]*.json")}


def test_two_workers_give_the_cells_of_one_and_resume(tmp_path):
    one = compare("digits", protocol="matched", models=MODELS, quick=True, seeds=2,
                  threads=1, out=tmp_path / "one")
    two = compare("digits", protocol="matched", models=MODELS, quick=True, seeds=2,
                  threads=2, jobs=2, out=tmp_path / "two")
    a, b = one.rows(), two.rows()
    assert len(a) == len(b) == 2 * (1 + 2 * 2)
    for r, s in zip(a, b, strict=True):  # one thread a fit both ways: the same arithmetic
        for k in ("dataset", "model", "target", "seed", "n_epochs", "RE", "FVU", "CA",
                  "L0_mean"):
            assert r[k] == s[k], (r["model"], k)
    # seed 1 compared its atoms with seed 0's, which its worker had fitted first
    stab = [(c["model"], c["point"], c["stability"]) for c in two.data["matched"]
            if c["seed"] == 1]
    assert stab == [(c["model"], c["point"], c["stability"]) for c in one.data["matched"]
                    if c["seed"] == 1]
    assert all(s and "seed0" in s for m, _, s in stab if m != "rae")
    log = (tmp_path / "two" / "log.txt").read_text()
    assert "10 cells in 5 groups on 2 worker processes of 1 thread(s) each" in log
    assert log.count("digits__topk__matched") == 4  # the workers log into the run's log
    assert two.data["machine"]["jobs"] == 2 and two.report.is_file()
    before = _stamps(tmp_path / "two")
    compare("digits", protocol="matched", models=MODELS, quick=True, seeds=2, threads=2,
            jobs=2, out=tmp_path / "two", resume=True)
    assert _stamps(tmp_path / "two") == before  # every cell taken from disk


def test_cells_that_depend_on_each_other_stay_together_costliest_first(tmp_path):
    cfg = RunConfig(datasets=["digits"], models=["rae", "topk"], out=tmp_path / "x",
                    quick=True, protocol_name="both")
    cells = Cells(cfg, {"digits": cfg.splits("digits")}, [0, 1])
    plan = cells.plan()
    grouped = groups(cells, plan)
    assert sorted(p for g in grouped for p in g) == sorted(plan)
    for g in grouped:
        kinds = {p.kind for p in g}
        if kinds == {"matched"}:  # one model at one target: its seeds in order
            assert len({(p.dataset, p.model, p.point) for p in g}) == 1
            assert [p.seed for p in g] == [0, 1]
        else:  # one model's grid, then the final fits that read it
            assert kinds == {"grid", "final"} and len({p.model for p in g}) == 1
            assert [p.kind for p in g] == sorted((p.kind for p in g), reverse=True)
        assert [plan.index(p) for p in g] == sorted(plan.index(p) for p in g)
    costs = [sum(p.cost for p in g) for g in grouped]
    assert costs == sorted(costs, reverse=True)
    assert len(grouped) == 2 + 1 + 2  # paper: RAE, TopK; matched: RAE, TopK at two targets


def test_worker_threads_share_out_the_runs():
    assert worker_threads(2, 2) == 1
    assert worker_threads(8, 3) == 2
    assert worker_threads(1, 4) == 1
    assert worker_threads("auto", 2) == max(1, torch.get_num_threads() // 2)


def test_jobs_must_be_a_positive_integer(tmp_path):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ParameterError, match="--jobs must be an integer >= 1"):
            RunConfig(datasets=["digits"], models=["rae"], out=tmp_path / "x", jobs=bad)
    assert main(["reproduce", "--quick", "--jobs", "0", "--out", str(tmp_path / "y")]) == 2
    assert not (tmp_path / "y").exists()


# --- a toy protocol whose cells do what their model's name says ------------------------------
COST = {"topk": 10.0, "rae": 9.0}  # the failing group starts first, beside RAE's


def _plan(cells):
    return [Planned(name, m, "toyjobs", None, 0, COST.get(m, 1.0)) for name in cells.cfg.names
            for m in cells.cfg.models]


def _run(cells, planned):
    started = cells.cfg.out / "rae started"
    if planned.model == "topk":
        for _ in range(600):  # fail while RAE's cell is being fitted
            if started.exists():
                break
            time.sleep(0.1)
        raise RuntimeError("this cell cannot be fitted")
    if planned.model == "l0":
        os._exit(3)  # a worker that dies (out of memory, killed)
    if planned.model == "batchtopk":  # a long fit: says which worker fits it
        (cells.cfg.out / "long pid").write_text(str(os.getpid()))
        time.sleep(300)
    if planned.model == "rae":
        started.touch()
        time.sleep(2)  # still fitting when the other worker fails
    key = f"{planned.dataset}__{planned.model}__toyjobs__seed0"
    return cells.write({"dataset": planned.dataset, "model": planned.model, "kind": "toyjobs",
                        "point": None, "seed": 0, "params": {}, "seconds": 0.0, "test": {}},
                       key)


def _nothing(*args):
    return None


def _empty(*args):
    return {}


TOY = Protocol("toyjobs", "toyjobs_claims", holds=bool, claims=_nothing, figures=_empty,
               section=_nothing, cells=CellRules(("toyjobs",), _plan, _nothing, _run,
                                                 _empty, _empty))


@pytest.fixture
def toy():
    protocols.register(TOY)  # registered here only: the workers get it from this process
    try:
        yield
    finally:
        protocols.unregister("toyjobs")


def _written(out):
    return sorted(p.name.split("__")[1] for p in (out / "cells").glob("[!.]*.json"))


def test_a_workers_error_stops_the_run_and_is_raised(tmp_path, toy):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="this cell cannot be fitted"):
        compare("digits", protocol="toyjobs", models=["rae", "topk", "l1", "kl", "psae"],
                threads=2, jobs=2, out=out)
    assert _written(out) == ["rae"]  # the running cell finished and was kept; none started
    assert not (out / "results.json").exists()


def test_a_worker_that_dies_is_an_error_that_says_to_resume(tmp_path, toy):
    with pytest.raises(PsaeError, match="ended abruptly.*run the same command again"):
        compare("digits", protocol="toyjobs", models=["l0", "l1"], threads=2, jobs=2,
                out=tmp_path / "dies")


def test_no_more_workers_than_groups(tmp_path, toy):
    out = tmp_path / "one_group"
    compare("digits", protocol="toyjobs", models=["l1"], threads=2, jobs=2, out=out)
    assert _written(out) == ["l1"]
    log = (out / "log.txt").read_text()
    assert "1 cells in 1 groups on 1 worker processes of 2 thread(s) each" in log
    assert json.loads((out / "results.json").read_text())["machine"]["jobs"] == 2


# --- a toy protocol whose cells are one group: the bar must move before the group ends --------
def _plan_one(cells):
    return [Planned(name, m, "toyone", None, 0, 1.0) for name in cells.cfg.names
            for m in cells.cfg.models]


def _run_one(cells, planned):
    if planned.model == "kl":  # waits for the parent to have shown l1's cell as done
        for _ in range(300):
            if (cells.cfg.out / "l1 shown").exists():
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the progress bar did not move before the group ended")
    key = f"{planned.dataset}__{planned.model}__toyone__seed0"
    return cells.write({"dataset": planned.dataset, "model": planned.model, "kind": "toyone",
                        "point": None, "seed": 0, "params": {}, "seconds": 0.0, "test": {}},
                       key)


def _one_group(planned):
    return (planned.dataset,)


TOY_ONE = Protocol("toyone", "toyone_claims", holds=bool, claims=_nothing, figures=_empty,
                   section=_nothing, cells=CellRules(("toyone",), _plan_one, _nothing, _run_one,
                                                     _empty, _empty, together=_one_group))


def test_the_bar_moves_per_cell_not_per_group(tmp_path):
    protocols.register(TOY_ONE)
    try:
        cfg = RunConfig(datasets=["digits"], models=["l1", "kl"], out=tmp_path / "run",
                        protocol_name="toyone", threads=2, jobs=2)
        cfg.out.mkdir()  # as a run makes it, for its log
        cells = Cells(cfg, {"digits": cfg.splits("digits")}, [0])
        shown = []

        def advance(planned):
            shown.append(planned.model)
            if planned.model == "l1":
                (cfg.out / "l1 shown").touch()

        run_parallel(cells, cells.plan(), 2, advance)
    finally:
        protocols.unregister("toyone")
    assert shown == ["l1", "kl"]  # each once, l1 while kl's cell was still waiting
    assert sorted(cells.done) == ["digits__kl__toyone__seed0", "digits__l1__toyone__seed0"]


# --- the run's end reaches its workers -------------------------------------------------------
SCRIPT = """
import signal
import sys
# as a run started from a terminal has it: a shell's background job (CI's, here) starts with
# SIGINT ignored, and Python then installs no KeyboardInterrupt handler of its own
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {tests!r})
import test_parallel
from psae.reproduce import compare, protocols

if __name__ == "__main__":
    protocols.register(test_parallel.TOY)
    compare("digits", protocol="toyjobs", models=["batchtopk", "l1"], threads=2, jobs=2,
            out=sys.argv[1])
"""


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in "ZX"  # a zombie whose new parent does not reap it is gone too


def _start_run(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    out = tmp_path / "run"
    run = subprocess.Popen([sys.executable, str(script), str(out)], stderr=subprocess.PIPE,
                           text=True, start_new_session=True)  # no terminal's signal reaches it
    for _ in range(600):
        if (out / "long pid").exists() and (out / "long pid").read_text():
            return run, int((out / "long pid").read_text())
        if run.poll() is not None:
            pytest.fail(f"the run ended early: {run.stderr.read()}")
        time.sleep(0.1)
    run.kill()
    pytest.fail("the long cell did not start")


def _gone_within(pid, seconds):
    for _ in range(int(seconds * 10)):
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_sent_to_the_run_alone_interrupts_its_workers(tmp_path):
    run, worker = _start_run(tmp_path)
    try:
        os.kill(run.pid, signal.SIGINT)  # as `kill -INT`: the workers do not get it themselves
        # well under the 300 s of the cell being fitted (4.6 s on an idle core; CI's load took
        # over 30 s once)
        run.wait(timeout=90)
        assert run.returncode != 0 and "KeyboardInterrupt" in run.stderr.read()
        assert _gone_within(worker, 30)
    finally:
        run.kill()


def test_workers_end_with_their_run(tmp_path):
    run, worker = _start_run(tmp_path)
    try:
        run.kill()  # no Python code runs in the parent: only the worker itself can notice
        run.wait()
        assert _gone_within(worker, 30)
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)
