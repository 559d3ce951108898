"""The matched-sparsity protocol of psae reproduce, and the convergence criterion."""

import json
import math
import os

import numpy as np
import pytest
import torch

from psae import metrics
from psae.cli import main
from psae.reproduce.cells import load_atoms
from psae.reproduce.matched.claims import matched_claims, shown_measures
from psae.training.stopping import Plateau

MODELS = "rae,psae,l0,topk,jumprelu,sqjumprelu"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("matched") / "run"
    assert main(["reproduce", "--quick", "--protocol", "matched", "--models", MODELS,
                 "--quiet", "--out", str(out)]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_every_model_at_every_target_with_figures_and_claims(run):
    out, res = run
    targets = res["matched_protocol"]["digits"]["targets"]
    cells = {(c["model"], c["point"]) for c in res["matched"]}
    for m in MODELS.split(","):
        for t in (None,) if m == "rae" else targets:
            assert (m, t) in cells, (m, t)
    summary = res["matched_summary"]["digits"]
    assert summary["topk"][str(targets[0])]["L0_std"]["mean"] == 0.0  # k per sample, exactly
    for kind in ("matched", "matched_curves", "matched_sweep"):
        assert (out / "figures" / f"{kind}_digits.png").stat().st_size > 10_000
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2
    assert html.index("Matched sparsity") < html.index("Run, protocol and data")
    claims = res["matched_claims"]
    assert {c["id"] for c in claims} >= {"a", "c", "d", "e"} and all(c["detail"] for c in claims)
    assert matched_claims(res) == claims
    assert any(c["history"] and "val_re" in c["history"][-1] for c in res["matched"])


def test_resumed_matched_run_redoes_no_finished_cell(run, tmp_path):
    out, _ = run
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("[!.]*.json")}
    assert main(["reproduce", "--quick", "--protocol", "matched", "--models", MODELS,
                 "--quiet", "--out", str(out), "--resume"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("[!.]*.json")} == stamps
    log = (out / "log.txt").read_text()
    assert log.count("already done, skipped") >= len(stamps)


def test_a_resumed_run_may_add_seeds_and_runs_only_theirs(run, tmp_path):
    out, _ = run
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("[!.]*.json")}
    assert main(["reproduce", "--quick", "--protocol", "matched", "--models", MODELS,
                 "--seeds", "2", "--quiet", "--out", str(out), "--resume"]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("[!.]*.json")}
    assert {k: after[k] for k in stamps} == stamps  # nothing redone
    new = sorted(set(after) - set(stamps))
    assert new and all("__seed1" in k for k in new)
    assert len(new) == sum("__seed0" in k for k in stamps if "__matched" in k)
    # each second seed's atoms are compared with the first's: stability in (0, 1)
    # and so is the share of distinct atoms the second seed reproduces, in [0, 1]
    for name in new:
        cell = json.loads((out / "cells" / name).read_text())
        stab, distinct = cell["stability"], cell["stability_distinct"]
        assert set(stab) == {"seed0"} and 0.0 < stab["seed0"] < 0.999, (name, stab)
        assert set(distinct) == {"seed0"}, (name, distinct)
        # recomputed from the atoms the two cells saved
        atoms = [load_atoms(out / "atoms" / f"{name[:-len('1.json')]}{s}.npz") for s in (0, 1)]
        assert distinct["seed0"] == metrics.distinct_atom_share(atoms[1], atoms[0]), name
    md = (out / "report.md").read_text()
    assert "| atom stability | distinct atoms kept |" in md  # two seeds: their columns


def test_a_run_keeps_its_seeds_its_record_and_its_folder(run, capsys):
    """A helper's review: ``--resume`` without ``--seeds`` fell back to the default and shrank
    the 2-seed run to 1 (run.json and every later report too); ``--report-only --seeds 1``
    rewrote run.json; ``--device cpu`` was refused on a run that ``auto`` ran on the CPU;
    a second run into the same --out fitted the same cells at once."""
    import fcntl

    from psae.io.ownership import foreign_entries
    from psae.reproduce.runner import RUN_LOCK

    out, _ = run
    args = ["reproduce", "--quick", "--protocol", "matched", "--models", MODELS, "--quiet",
            "--out", str(out)]
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("[!.]*.json")}
    assert main([*args, "--resume", "--device", "cpu"]) == 0
    assert json.loads((out / "run.json").read_text())["fingerprint"]["seeds"] == 2
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("[!.]*.json")} == stamps
    assert {c["seed"] for c in json.loads((out / "results.json").read_text())["matched"]} \
        == {0, 1}
    record = (out / "run.json").read_bytes()
    assert main([*args, "--report-only", "--seeds", "1"]) == 0
    assert (out / "run.json").read_bytes() == record
    capsys.readouterr()
    assert not (out / RUN_LOCK).exists()  # a run removes its lock file when it ends
    fd = os.open(out / RUN_LOCK, os.O_RDONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a live run holds it
        assert main([*args, "--resume"]) == 1
        assert "another psae reproduce is running" in capsys.readouterr().err
        assert main([*args, "--report-only"]) == 0  # a report may be written meanwhile
    finally:
        os.close(fd)
    assert (out / "run.json").read_bytes() == record
    assert foreign_entries(out) == []  # a lock file is not taken for the user's
    (out / RUN_LOCK).unlink()


def test_thresholded_fits_keep_their_raw_view_and_a_threshold_sweep(run):
    out, res = run
    swept = 0
    shown = res["matched_protocol"]["digits"]["explore_target"]
    for c in res["matched"]:
        if c["model"] in ("rae", "topk"):  # exact zeros by construction: nothing to trim
            assert c["test_raw"] is None and not c.get("sweep")
            continue
        if c["point"] != shown:  # swept where the report shows it only
            assert "sweep" not in c and c["test_raw"] is not None
            continue
        raw, trimmed = c["test_raw"], c["test"]
        assert raw["L0_mean"] >= trimmed["L0"]["mean"] - 1e-9  # trimming only removes
        sweep = c["sweep"]
        assert [r["factor"] for r in sweep] == [0.0, 0.5, 1.0, 2.0]
        assert sweep[0]["FVU"] == pytest.approx(raw["FVU"], rel=1e-5)
        assert sweep[2]["L0_mean"] == pytest.approx(trimmed["L0"]["mean"], rel=1e-6)
        assert sweep[2]["CA"] == pytest.approx(trimmed["CA"], abs=1e-9)
        l0s = [r["L0_mean"] for r in sweep]
        assert l0s == sorted(l0s, reverse=True)  # a higher threshold keeps fewer units
        swept += 1
    assert swept
    md = (out / "report.md").read_text()  # both views, and the sweep, in the report
    assert "| FVU, exact | FVU, raw |" in md and "θ: L0 at 0.01 · FVU · CA" in md
    assert "matched_sweep_digits.png" in md
    # one seed (the fixture's results): no pair of seeds to compare, no stability shown
    assert shown_measures(res, "digits", ["CA", "stability"]) == ["CA"]


class _Stub:
    """A trainer whose validation RE follows a given curve (the stopper asks for it)."""

    def __init__(self):
        self.lr, self.module = 1.0, torch.nn.Linear(1, 1)

    def scale_lr(self, f):
        self.lr *= f


def _epochs_until_stop(curve, patience=3, variance=None):
    stopper, trainer = Plateau(torch.zeros(1, 1), tol=0.005, patience=patience), _Stub()
    stopper.variance = max(curve) if variance is None else variance  # an untrained model's RE
    values = iter(curve)
    stopper.validation_re = lambda module: next(values)
    for epoch in range(len(curve)):
        _, stop = stopper.after_epoch(trainer, may_stop=True)
        if stop:
            return epoch + 1, trainer.lr
    return None, trainer.lr


def test_the_criterion_stops_a_flat_curve_and_not_a_falling_one():
    flat = [1.0 / (1 + e) for e in range(10)] + [0.0909] * 30
    stopped, lr = _epochs_until_stop(flat)
    assert stopped is not None and stopped < 25 and lr == pytest.approx(0.3)
    falling = [math.exp(-0.05 * e) for e in range(60)]  # 5 % better every epoch, to the end
    assert _epochs_until_stop(falling) == (None, 1.0)


def test_a_fit_on_its_starting_plateau_is_not_stopped():
    """Issue 19: a dense model on binary images sat at FVU 1.003 -> 0.99 for 8 epochs and was
    stopped there. A plateau counts only once the model explains a tenth of the variance."""
    start = [1.003, 1.0, 0.995, 0.992] + [0.99] * 40  # flat, but never below FVU 0.9
    assert _epochs_until_stop(start, variance=1.0) == (None, 1.0)
    learned = [1.003, 1.0, 0.99, 0.6, 0.4, 0.3] + [0.29] * 30  # then it learns, and settles
    stopped, lr = _epochs_until_stop(learned, variance=1.0)
    assert stopped is not None and lr == pytest.approx(0.3)


def test_report_only_trains_nothing_and_reports_the_finished_cells(run, tmp_path):
    out, _ = run
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("[!.]*.json")}
    before = (out / "results.json").stat().st_mtime_ns
    assert main(["reproduce", "--quick", "--protocol", "matched", "--models", MODELS,
                 "--seeds", "5", "--quiet", "--out", str(out), "--report-only"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("[!.]*.json")} == stamps
    assert (out / "results.json").stat().st_mtime_ns > before
    rows = json.loads((out / "results.json").read_text())["matched"]
    assert rows and {r["seed"] for r in rows} <= {0, 1}  # seeds 2-4 were not run
    assert "cells not run" in (out / "log.txt").read_text()
    assert main(["reproduce", "--quick", "--protocol", "matched", "--quiet",
                 "--out", str(tmp_path / "none"), "--report-only"]) == 2

def _summary(**models):
    """A matched summary at target 10 from {model: (CA, RE, L0 std)}, 3 seeds, on target."""
    def entry(ca, re, spread):
        return {"10": {"CA": {"mean": ca, "std": 0.001, "n": 3},
                       "RE": {"mean": re, "std": 1e-5, "n": 3},
                       "L0_std": {"mean": spread, "std": 0.01, "n": 3},
                       "L0_mean": {"mean": 10.2, "std": 0.1, "n": 3}}}
    return {"matched_summary": {"toy": {m: entry(*v) for m, v in models.items()}},
            "matched_protocol": {"toy": {"targets": [10]}}}


def test_the_squared_jumprelu_ablation_rows():
    res = _summary(psae=(0.95, 0.0010, 3.0), jumprelu=(0.96, 0.0012, 2.6),
                   sqjumprelu=(0.97, 0.0013, 2.4), topk=(0.94, 0.0015, 0.0))
    rows = {(r["id"], r["claim"].split()[-1]): r for r in matched_claims(res)}
    assert rows[("d", "CA")]["held"] and rows[("d", "CA")]["clear"]  # no worse in CA
    assert rows[("d", "RE")]["held"] is False  # RE 0.0013 against 0.0012: the square costs RE
    assert rows[("e", "CA")]["held"] and rows[("e", "RE")]["held"] is False
    assert rows[("e", "L0_std")]["held"]  # 2.4 against PSAE's 3.0
    a_rows = [r for r in matched_claims(res) if r["id"] == "a"]
    assert len(a_rows) == 1 and a_rows[0]["held"]  # JumpReLU pair only: SAE+L0 was not run


def test_claims_need_every_seed_on_target_and_name_what_they_leave_out():
    res = _summary(psae=(0.95, 0.0010, 3.0), topk=(0.94, 0.0015, 0.0),
                   jumprelu=(0.96, 0.0012, 2.6), sqjumprelu=(0.97, 0.0013, 2.4))
    cell = {"dataset": "toy", "point": 10, "stopped_early": True}
    res["matched"] = [{**cell, "model": m, "seed": s, "test": {"L0": {"mean": 10.2}}}
                      for m in ("psae", "topk", "jumprelu", "sqjumprelu") for s in range(3)]
    res["matched"][1]["test"]["L0"]["mean"] = 8.8  # PSAE's seed 1: 12 % under, mean 9.7
    res["matched"][-1]["stopped_early"] = False  # squared JumpReLU's seed 2 hit the cap
    res["matched_summary"]["toy"]["jumprelu"]["10"]["RE"] = {"mean": float("nan"), "std": 0.0,
                                                            "n": 3}
    rows = matched_claims(res)

    def row(cid, metric):
        return next(r for r in rows if r["id"] == cid and f" {metric} " in f"{r['claim']} ")

    c = row("c", "CA")
    assert c["held"] is None and "not at equal L0" in c["detail"]  # the mean alone was on it
    d = row("d", "RE")
    assert d["held"] is None and "a seed of jumprelu failed" in d["detail"]  # labels: keys here
    assert "hit the epoch cap in 1 of 3 seeds" in row("d", "CA")["detail"]
    b = [r for r in rows if r["id"] == "b"]  # PSAE is not on target: said, not dropped
    assert [r["held"] for r in b] == [None, None] and "psae (off target)" in b[0]["detail"]


def test_the_matched_table_counts_all_zero_codes_and_bolds_no_lone_row():
    from psae.reproduce.matched.tables import matched_table

    res = _summary(psae=(0.95, 0.0010, 3.0), topk=(0.94, 0.0015, 0.0))
    for m, z in (("psae", 350.0), ("topk", 0.0)):
        res["matched_summary"]["toy"][m]["10"]["zero_codes"] = {"mean": z, "std": 5.0, "n": 3}
    res["matched_summary"]["toy"]["rae"] = {"dense": {
        "CA": {"mean": 0.9, "std": 0.001, "n": 3}, "L0_mean": {"mean": 90.0, "std": 1, "n": 3}}}
    head, rows = matched_table(res, "toy")
    z = head.index("all-zero codes")
    assert [r[z] for r in rows if r[1].text == "psae"] == [("350 ± 5", False)]
    assert [r[z] for r in rows if r[1].text == "topk"] == [("0 ± 5", True)]  # fewest: bold
    dense = next(r for r in rows if r[0] == "dense")
    assert not any(isinstance(c, tuple) and c[1] for c in dense)  # alone: nothing is best


def test_cells_of_other_training_code_are_reported_not_resumed(run, tmp_path):
    """A run's cells carry the key of the code that fitted them: new code refuses to add cells
    beside them (they would not be comparable) but still reports them."""
    import shutil

    out, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    run_file = copy / "run.json"
    meta = json.loads(run_file.read_text())
    meta["fingerprint"]["training_code"] = "0" * 16
    run_file.write_text(json.dumps(meta))
    from psae.io.ownership import record_file

    record_file(run_file)  # as if psae had written it
    args = ["reproduce", "--quick", "--protocol", "matched", "--models", MODELS, "--quiet",
            "--out", str(copy)]
    assert main(args) == 2  # the options do not fit the folder: a usage error
    assert main([*args, "--report-only"]) == 0
    assert json.loads(run_file.read_text())["fingerprint"]["training_code"] == "0" * 16


def _other_code_copy(run, tmp_path):
    """A copy of the quick run whose run.json says other training code fitted its cells."""
    import shutil

    from psae.io.ownership import record_file

    out, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    meta = json.loads((copy / "run.json").read_text())
    meta["fingerprint"]["training_code"] = "0" * 16
    (copy / "run.json").write_text(json.dumps(meta))
    record_file(copy / "run.json")  # as if psae had written it
    return copy, ["reproduce", "--quick", "--protocol", "matched", "--models", MODELS,
                  "--quiet", "--out", str(copy), "--resume"]


def test_recheck_lets_a_run_go_on_under_code_that_refits_its_cells_identically(run, tmp_path):
    from psae.reproduce.code_key import training_code_key

    copy, args = _other_code_copy(run, tmp_path)
    stamps = {p.name: p.stat().st_mtime_ns for p in (copy / "cells").glob("[!.]*.json")}
    assert main(args) == 2  # refused without --recheck (exit 2: add the option)
    assert main([*args, "--recheck"]) == 0
    meta = json.loads((copy / "run.json").read_text())
    assert meta["fingerprint"]["training_code"] == "0" * 16  # the run keeps its key
    (record,) = meta["rechecked"]
    assert record["code"] == training_code_key()
    assert {json.loads((copy / "cells" / f"{k}.json").read_text())["model"]
            for k in record["cells"]} == set(MODELS.split(","))  # one cell per model
    assert {p.name: p.stat().st_mtime_ns
            for p in (copy / "cells").glob("[!.]*.json")} == stamps  # the run's cells kept
    assert main(args) == 0  # checked once: later resumes need no --recheck
    assert json.loads((copy / "run.json").read_text())["rechecked"] == [record]


def test_recheck_refuses_code_that_fits_differently(run, tmp_path, monkeypatch):
    import tempfile

    import psae.reproduce.matched.cells as matched_cells

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the scratch folder goes
    copy, args = _other_code_copy(run, tmp_path)
    before = (copy / "run.json").read_bytes()
    make = matched_cells.make_matched_model
    monkeypatch.setattr(matched_cells, "make_matched_model",
                        lambda model, target, mp, seed, *a: make(model, target, mp, seed + 7, *a))
    assert main([*args, "--recheck"]) == 1
    assert (copy / "run.json").read_bytes() == before
    assert not list(tmp_path.glob("psae-recheck-*"))


def test_recheck_compares_every_number_but_timings():
    from psae.reproduce.recheck import differences, pick, unchecked

    cell = {"model": "topk", "dataset": "d", "kind": "matched", "seed": 0, "seconds": 3.0,
            "test": {"RE": 0.5, "CA": float("nan")}, "history": [{"loss": 1.0, "seconds": 2}]}
    same = json.loads(json.dumps(cell)) | {"seconds": 9.0}
    same["history"] = [{"loss": 1.0, "seconds": 5}]
    assert differences(cell, same) == []
    other = same | {"test": {"RE": 0.5000001, "CA": float("nan")}}
    assert differences(cell, other) == ["test.RE: 0.5, now 0.5000001"]
    assert differences(cell, same | {"history": []}) == ["history: 1 entries, now 0"]
    # a field that held None and is no longer written moved no number; one that held a value did
    assert differences(cell | {"start_weight": None}, same) == []
    assert differences(cell | {"start_weight": 0.3}, same) == ["start_weight: gone"]
    assert differences(cell, same | {"history": [{"loss": 1.000001}]}) == []  # a logged sum
    assert differences(cell, same | {"history": [{"loss": 1.001}]}) == [
        "history.0.loss: 1.0, now 1.001"]
    cell["point"] = 10
    cells = {"a": cell, "b": cell | {"seconds": 1.0}, "c": cell | {"seed": 1, "seconds": 0.1},
             "e": cell | {"dataset": "e", "seconds": 5.0},
             "f": cell | {"model": "rae", "seconds": 7.0, "error": "diverged"},
             "g": cell | {"kind": "final", "point": None, "seconds": 0.5}}
    # the cheapest first seed per protocol and model (a paper fit does not stand for a matched
    # one: no controller, no plateau), then per data set; later seeds and failed fits never
    assert pick(cells) == ["g", "b", "e"]
    assert unchecked(cells, pick(cells)) == ["matched rae"]


def test_recheck_reads_only_cells(tmp_path):
    from psae.reproduce.recheck import finished_cells

    (tmp_path / "cells").mkdir()
    good = {"dataset": "d", "model": "m", "kind": "matched", "point": 5, "seed": 0}
    (tmp_path / "cells" / "good.json").write_text(json.dumps(good))
    (tmp_path / "cells" / "list.json").write_text("[1, 2]")
    (tmp_path / "cells" / "half.json").write_text('{"model": "m"}')
    (tmp_path / "cells" / "bytes.json").write_bytes(b"\xff\xfe{")
    (tmp_path / "cells" / "cut.json").write_text('{"model": ')
    assert finished_cells(tmp_path) == {"good": good}


def test_training_code_key_ignores_words_not_code():
    from psae.reproduce.code_key import _code_only, training_code_key

    a = 'def f(x):\n    """Say why."""\n    return x + 1  # one more\n'
    b = 'def f(x):\n    """Say why, better."""\n    # a comment\n    return x + 1\n'
    c = 'def f(x):\n    """Say why."""\n    return x + 2\n'
    assert _code_only(a) == _code_only(b) != _code_only(c)
    assert len(training_code_key()) == 16


def test_the_matched_report_has_no_paper_protocol_section(run):
    """Issue 20: a matched-only report listed 'no final runs' for every model, 'Selected
    hyperparameters: No runs', the paper's model-selection text and its protocol table."""
    out, res = run
    assert res["protocol"] == "matched" and not res["final"]
    md = (out / "report.md").read_text()
    for leftover in ("Selected hyperparameters", "Missing pieces", "no final runs",
                     "Model selection:", "Validation grid", "Paper protocol"):
        assert leftover not in md, leftover
    assert "Matched protocol:" in md and "max_epochs" in md


def test_a_group_mixing_cells_without_the_distinct_share_reports_none():
    from psae.reproduce.matched.cells import _group

    def cell(seed, stability, distinct=None):
        c = {"seed": seed, "test": {"L0": {"mean": 5.0, "std": 1.0}}, "test_raw": None,
             "stability": stability}
        if distinct is not None:
            c["stability_distinct"] = distinct
        return c

    new = [cell(0, {}, {}), cell(1, {"seed0": 0.5}, {"seed0": 0.4}),
           cell(2, {"seed0": 0.6, "seed1": 0.7}, {"seed0": 0.2, "seed1": 0.3})]
    assert _group(new)["stability_distinct"]["n"] == 3
    assert _group(new)["stability_distinct"]["mean"] == pytest.approx(0.3)
    old_second = [new[0], cell(1, {"seed0": 0.5}), new[2]]  # seed 1 fitted before the field
    assert _group(old_second)["stability_distinct"]["mean"] is None
    assert _group(old_second)["stability"]["n"] == 3
    old_first = [cell(0, {}), new[1], new[2]]  # seed 0 compares with nothing either way
    assert _group(old_first)["stability_distinct"]["n"] == 3


def test_a_users_matched_schedule_covers_mnists_samples(tmp_path):
    """A user's file gets as many training samples as MNIST's schedule (20 epochs of 60,000
    rows), between 20 and 200 epochs, its cap 5x: the steered fits wait for a setpoint ramped
    over 60 % of the schedule, so 200 fixed epochs made a large file's fits run 120 or more."""
    from psae.reproduce.matched.settings import FULL, matched_for, user_schedule
    from psae.reproduce.runner import RunConfig

    mnist = FULL["mnist"]
    assert user_schedule(60_000, False) == (mnist.epochs, mnist.max_epochs) == (20, 100)
    assert user_schedule(4_000, False) == (200, 1000)  # small files as before
    assert user_schedule(24_000, False) == (50, 250)
    assert user_schedule(10**7, False) == (20, 100)  # the floor
    assert user_schedule(24_000, True) == (50, 50) and user_schedule(4_000, True) == (60, 60)
    p = matched_for("a-file", False, n_features=256, n_rows=24_000)
    assert (p.n_components, p.targets, p.epochs, p.max_epochs) == (100, (5, 10, 20), 50, 250)
    rng = np.random.default_rng(0)  # through the run's config, from the file's own rows
    data = tmp_path / "wide.npz"
    np.savez(data, X_train=rng.random((8_000, 16), dtype=np.float32),
             X_test=rng.random((100, 16), dtype=np.float32))
    cfg = RunConfig(datasets=[], data=[str(data)], models=["topk"], out=tmp_path / "run",
                    protocol_name="matched")
    proto = cfg.matched_protocol(cfg.names[0])
    assert (proto.epochs, proto.max_epochs) == (150, 750)  # 1,200,000 / 8,000
