"""End-to-end: ``psae reproduce --quick`` on the bundled digits, resume after a kill, bad names."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from psae.cli import main
from psae.reproduce import models

MODELS = list(models())  # every registered mechanism: the default of --models


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "run"
    res = subprocess.run([sys.executable, "-m", "psae", "reproduce", "--quick", "--out",
                          str(out), "--quiet", "--device", "cpu"],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text())


def test_quick_run_writes_every_output(quick_run):
    out, results = quick_run
    for name in ("results.json", "results.csv", "report.html", "report.md", "log.txt"):
        assert (out / name).stat().st_size > 0, name
    assert results["quick"] is True and results["models"] == MODELS
    assert list(results["datasets"]) == ["digits"]
    finals = {(c["model"], c["seed"]) for c in results["final"]}
    assert finals == {(m, 0) for m in MODELS}
    csv_lines = (out / "results.csv").read_text().strip().splitlines()
    assert len(csv_lines) == 1 + len(results["grid"]) + len(results["final"])
    assert {"FVU", "L0_std"} <= set(csv_lines[0].split(","))


def test_each_model_is_saved_and_explorable(quick_run):
    """The seed-0 final model of each (data set, model) reloads and gives the recorded codes;
    its explorer page shows every test row (fewer than the cap) and is small."""
    import numpy as np

    import psae
    from psae.metrics import l0_counts

    out, results = quick_run
    for c in results["final"]:
        entry = results["explorer"]["digits"][c["model"]]
        model = psae.load(out / entry["model_dir"])
        assert entry["page"] == f"explore/digits__{c['model']}/index.html"
        assert (out / entry["page"]).is_file() and entry["bytes"] < 3e6
        assert entry["samples"] == entry["of"] == results["datasets"]["digits"]["n_test"]
        assert model[-1].n_components == results["datasets"]["digits"]["protocol"][
            "n_components"]
        # the saved model is the scored one: its L0 on the stored inputs matches the arrays'
        a = np.load(out / c["arrays"], allow_pickle=False)
        H = model[-1].transform(a["inputs"])
        assert np.array_equal(l0_counts(H), a["L0"][: len(H)])
    assert results["summary"]["digits"]["psae"]["L0_std"]["n"] == 1


def test_every_metric_finite_and_in_range(quick_run):
    _, results = quick_run
    for c in results["final"]:
        t = c["test"]
        assert "error" not in c
        assert 0 <= t["RE"] < 0.0178, c["model"]  # below the variance of the normalised data
        assert 0 <= t["S"] <= 1 and 0 <= t["SSD"] <= 0.5
        assert 0.5 < t["CA"] <= 1
        assert 0 <= t["dead_units"] <= 1 and t["zero_codes"] == 0
        assert 0 <= t["L0"]["min"] <= t["L0"]["mean"] <= t["L0"]["max"] <= 80
        assert all(math.isfinite(h["loss"]) for h in c["history"])
    for c in results["grid"]:
        assert all(math.isfinite(v) for v in c["val"].values())
    # the selected point is the one with the best validation CA for each model
    for m in MODELS:
        pts = [c for c in results["grid"] if c["model"] == m]
        best = max(c["val"]["CA"] for c in pts)
        assert [c["val"]["CA"] for c in pts if c["selected"]] == [best]


def test_stored_reconstructions_are_reconstructions(quick_run):
    """M (80) differs from D (64) in the quick digits run: the arrays hold real decodings."""
    import numpy as np

    out, results = quick_run
    for c in results["final"]:
        a = np.load(out / c["arrays"], allow_pickle=False)
        assert a["inputs"].shape == a["recons"].shape == (8, 64)
        assert np.mean((a["inputs"] - a["recons"]) ** 2) < 0.0178
        assert a["filters"].shape[1] == 64 and a["L0"].shape == a["S"].shape == (450,)


def test_report_renders_every_figure(quick_run):
    out, results = quick_run
    figures = [f for group in results["figures"].values() for f in group]
    assert len(figures) >= 10
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    for f in figures:
        with Image.open(out / f) as im:
            im.verify()
        assert f in md
    assert html.count("data:image/png;base64,") == len(figures)
    assert "src=\"http" not in html
    for claim in ("RE", "SSD", "CA"):
        assert claim in html
    assert "quick" in html.lower()


def test_bad_names_are_clear_errors(tmp_path, capsys):
    assert main(["reproduce", "--datasets", "mnist,imagenet", "--out", str(tmp_path / "a"),
                 "--quiet"]) == 2
    assert "imagenet" in capsys.readouterr().err
    assert main(["reproduce", "--models", "psae,vae", "--out", str(tmp_path / "b"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "vae" in err and "rae,l1,kl,psae,l0" in err.replace(", ", ",")


def _cells(out: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("[!.]*.json")}


def test_resume_after_kill_repeats_no_finished_cell(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "psae", "reproduce", "--quick", "--epochs", "8",
           "--models", "rae,l1,psae", "--out", str(out), "--quiet", "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while len(_cells(out) if (out / "cells").exists() else {}) < 3:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = _cells(out)
    assert 3 <= len(done) < 8 and not (out / "results.json").exists()
    # a different configuration may not resume into this directory
    other = [*cmd[:6], "12", *cmd[7:], "--resume"]  # --epochs 12 instead of 8
    bad = subprocess.run(other, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "different settings" in bad.stderr
    res = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    after = _cells(out)
    assert len(after) == 8  # 5 grid points + 3 finals
    for name, mtime in done.items():
        assert after[name] == mtime, f"{name} was run again"
    log = (out / "log.txt").read_text()
    assert log.count("already done, skipped") == len(done)
    results = json.loads((out / "results.json").read_text())
    assert results["final"]
    for m in ("rae", "l1", "psae"):  # models saved before the kill still give their pages
        assert (out / results["explorer"]["digits"][m]["page"]).is_file()


def test_settings_a_fit_would_refuse_are_refused_before_any_cell(tmp_path, capsys):
    """PSAE cannot spread 3 epochs over its 4 σ stages: said before RAE's cells run, with
    nothing written, rather than after them."""
    out = tmp_path / "run"
    assert main(["reproduce", "--quick", "--models", "rae,psae", "--epochs", "3", "--quiet",
                 "--out", str(out)]) == 2
    assert "psae on digits: epochs=3 is fewer than the 4 sigma stages" in capsys.readouterr().err
    assert not out.exists()


def test_a_damaged_cell_is_run_again_not_a_crash(tmp_path):
    from psae.reproduce.cell_runner import Cells
    from psae.reproduce.runner import RunConfig

    cfg = RunConfig(datasets=["digits"], models=["rae"], out=tmp_path / "x", quick=True)
    cells = Cells(cfg, {"digits": cfg.splits("digits")}, [0])
    path = cells.path("k")
    path.parent.mkdir(parents=True)
    for bad in (b"\xff\xfe not UTF-8", b"[1, 2]", b'{"params": {}, "seed": 0', b"null"):
        path.write_bytes(bad)
        assert not cells.resumed("k", {}, 0), bad
    path.write_text(json.dumps({"params": {}, "seed": 0}))
    assert cells.resumed("k", {}, 0) and "k" in cells.done


def test_a_log_that_cannot_be_recorded_is_not_left_attached(tmp_path, monkeypatch):
    from psae.reproduce import runner

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner, "record_file", full)
    before = list(runner.log.handlers)
    with pytest.raises(OSError):
        runner._setup_logging(tmp_path)
    assert runner.log.handlers == before


def test_cli_findings_epochs_seeds_and_an_empty_report(tmp_path, capsys):
    """A helper's review of the CLI: --epochs reached the paper protocol only, --report-only
    reported 3 seeds of a 5-seed run."""
    from psae.cli.reproduce import _recorded_seeds
    from psae.reproduce.matched.settings import matched_for

    proto = matched_for("mnist", False, epochs=5)
    assert (proto.epochs, proto.max_epochs) == (5, 5)
    assert matched_for("mnist", False).epochs != 5
    (tmp_path / "run.json").write_text(json.dumps({"fingerprint": {"seeds": 5}}))
    assert _recorded_seeds(str(tmp_path)) == 5 and _recorded_seeds(str(tmp_path / "x")) is None
    out = tmp_path / "none"
    assert main(["reproduce", "--quick", "--quiet", "--out", str(out), "--report-only"]) == 2
    assert "needs a run in" in capsys.readouterr().err and not out.exists()


def test_review_findings_bad_widths_empty_models_and_dangling_out(tmp_path, capsys):
    """A negative --n-components ended in a raw KeyError, an empty --models ran all nine
    models, and a dangling symlink --out failed after the data were read with a bare errno."""
    assert main(["reproduce", "--quick", "--models", "rae", "--n-components", "-5",
                 "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert "--n-components must be an integer >= 1" in capsys.readouterr().err
    assert main(["reproduce", "--quick", "--models", ",", "--out", str(tmp_path / "b"),
                 "--quiet"]) == 2
    assert "unknown model(s) (none)" in capsys.readouterr().err
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere")
    assert main(["reproduce", "--quick", "--models", "rae", "--out", str(link), "--quiet"]) != 0
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "nowhere").exists()


def test_a_run_stopped_before_any_cell_takes_new_settings(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["reproduce", "--quick", "--models", "rae", "--out", str(out), "--quiet"]
    assert main([*args, "--epochs", "6"]) == 0
    for p in (out / "cells").glob("*"):  # as if stopped before its first cell finished
        p.unlink()
    assert main([*args, "--epochs", "5", "--force"]) == 0, capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["fingerprint"]
    assert any((out / "cells").glob("*.json"))


def test_a_one_seed_report_shows_percentages_without_a_spread_and_trimmed_grids(tmp_path):
    out = tmp_path / "run"
    assert main(["reproduce", "--quick", "--protocol", "both", "--models", "topk",
                 "--n-components", "10", "--epochs", "6", "--out", str(out), "--quiet"]) == 0
    report = (out / "report.md").read_text()
    assert "± 0.00 %" not in report
    assert "Matched protocol" in report  # with --protocol both too
    grid = json.loads((out / "results.json").read_text())["datasets"]["digits"]["grid"]
    assert grid["topk"] == [{"k": 5}]  # k = 15 does not fit 10 units, and was not fitted


def test_a_report_of_an_unfinished_run_says_so_and_counts_what_is_missing(tmp_path):
    out = tmp_path / "run"
    base = ["reproduce", "--quick", "--protocol", "matched", "--out", str(out), "--quiet"]
    assert main([*base, "--models", "rae"]) == 0
    assert main([*base, "--models", "rae,topk", "--report-only"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["finished"] is None and results["cells_missing"]["missing"] > 0
    assert "the run has not finished: " in (out / "report.md").read_text()


def test_the_report_accounts_for_every_sitting_not_only_the_last(tmp_path):
    """A resume with nothing left to fit reported 'wall time 0.1 s' and its own command for a
    run that took all its sittings."""
    out = tmp_path / "run"
    args = ["reproduce", "--quick", "--models", "rae", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert main([*args, "--resume"]) == 0
    assert main([*args, "--report-only"]) == 0  # a report is no sitting
    run = json.loads((out / "run.json").read_text())
    assert len(run["sittings"]) == 2 and all(s["started"] for s in run["sittings"])
    results = json.loads((out / "results.json").read_text())
    assert len(results["sittings"]) == 2 and results["cell_seconds"] > 0
    report = (out / "report.md").read_text()
    assert "| sittings | 2, the first started" in report and "cell time (every finished" in report
