"""The benchmark scripts run in their ``--smoke`` mode and print one JSON object with their keys.

No timing is asserted: only that each script runs, prints exactly one valid JSON object on
stdout, and that its documented figures are finite positive numbers.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def run_smoke(script: str, *args: str) -> dict:
    res = subprocess.run([sys.executable, str(BENCH / script), "--smoke", *args],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line of JSON on stdout, got: {res.stdout[:2000]}"
    out = json.loads(lines[0])
    assert isinstance(out, dict)
    return out


def positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and value > 0


def test_train_throughput_smoke():
    out = run_smoke("train_throughput.py")
    assert {"results", "device", "threads", "torch", "cores"} <= out.keys()
    assert out["device"] == "cpu" and positive(out["threads"]) and positive(out["cores"])
    assert isinstance(out["torch"], str) and out["results"]
    for row in out["results"]:
        assert len(row["shape"]) == 3 and all(positive(v) for v in row["shape"])
        for key in ("ratio_to_mm", "step_ms", "fit_step_ms", "fit_ratio_to_mm", "mm_gflops",
                    "step_gflops"):
            assert positive(row[key]), (key, row[key])
        assert all(positive(v) for v in row["breakdown_ms"].values())
        assert all(positive(v) for v in row["variants_ratio_to_mm"].values())
        for key in ("fit_step_ms", "fit_ratio_to_bf16_mm", "speedup_vs_fp32_fit", "step_ms",
                    "ratio_to_bf16_mm", "mm_gflops"):
            assert positive(row["bf16"][key]), (key, row["bf16"].get(key))
        assert row["fused_grad_max_rel_error"] < 1e-4


def test_encode_speed_smoke():
    out = run_smoke("encode_speed.py")
    for key in ("speedup_vs_omp", "speedup_vs_dict_learning", "psae_samples_per_s",
                "omp_samples_per_s", "dl_samples_per_s", "mean_l0", "ca_psae", "ca_omp",
                "ca_dl", "n_train", "n_test_timed", "bf16_speedup_vs_fp32", "fp32_samples_per_s",
                "bf16_samples_per_s"):
        assert positive(out[key]), (key, out.get(key))
    for key in ("ca_psae", "ca_omp", "ca_dl"):
        assert out[key] <= 1.0
    assert out["omp_n_nonzero_coefs"] >= 1


def test_contention_smoke():
    out = run_smoke("contention.py")
    assert positive(out["cores"]) and out["busy"] in ("spin", "torch")
    for job in out["jobs"].values():
        for condition in ("alone", "busy"):
            row = job[condition]
            assert positive(row["default_over_best"])
            assert {"default", "1"} <= row["seconds"].keys()
            assert all(positive(v) for v in row["seconds"].values())


def test_model_epochs_smoke():
    out = run_smoke("model_epochs.py")
    assert positive(out["worst_ratio"]) and positive(out["threads"])
    for name, row in out["results"].items():
        assert positive(row["epoch_s"]) and positive(row["ratio_to_rae"]), name
        assert row["step"] in ("hand-derived", "autograd")
    assert out["results"]["rae"]["ratio_to_rae"] == 1.0
    for name in ("topk", "batchtopk", "jumprelu", "sqjumprelu"):  # issue 19: no autograd step
        assert out["results"][name]["step"] == "hand-derived", name


def test_ca_speed_smoke():
    out = run_smoke("ca_speed.py")
    for name in ("topk", "psae"):
        row = out["results"][name]
        assert positive(row["speedup"]) and 0 < row["density"] < 0.2
        for path in ("sparse", "dense"):
            assert 0 < row[path]["CA"] <= 1 and positive(row[path]["seconds"])
        assert row["ca_difference_points"] <= 0.5


def test_time_to_target_smoke():
    out = run_smoke("time_to_target.py")
    assert set(out["results"]) == {"rae", "topk", "psae"}
    for name, row in out["results"].items():
        assert positive(row["fit_s"]) and row["epochs"] >= 1
        assert isinstance(row["stopped_by_rule"], bool) and row["l0_test"] >= 0
        assert (row["l0_miss"] is None) == (name == "rae")
        assert row["batch_size"] == 128  # "auto" on the smoke's few rows
    assert positive(out["slowest_fit_s"]) and isinstance(out["all_on_target"], bool)


def test_dead_units_smoke():
    out = run_smoke("dead_units.py")
    assert set(out["results"]) == {"topk/auto", "topk/resample", "jumprelu/auto",
                                   "jumprelu/resample"}
    for row in out["results"].values():
        assert 0 <= row["dead_test"] <= 1 and 0 <= row["ca_test"] <= 1
        assert positive(row["fit_s"]) and row["epochs"] >= 1
        share = row["dead_with_negative_preactivation"]
        assert share is None or 0 <= share <= 1


def test_code_spread_smoke():
    out = run_smoke("code_spread.py")
    for split in ("train", "test"):
        row = out["splits"][split]
        assert row["median"] <= row["q90"] <= row["q95"] <= row["q99"] <= row["max"]
        assert 0 < row["top5pct_share"] <= 1 and 0 <= row["zero_share"] <= 1
        assert len(row["bin_share"]) == 5 and abs(sum(row["bin_share"]) - 1) < 1e-3
        assert -1 <= row["corr_l0_brightness"] <= 1
    assert positive(out["test_mean_reweighted_to_train_brightness"])
    assert -1 <= out["atoms"]["mean_cosine"] <= out["atoms"]["mean_nearest_other"] <= 1
    assert abs(out["atoms"]["mean_cosine"]) <= out["atoms"]["mean_abs_cosine"] <= 1


def test_model_steps_smoke():
    out = run_smoke("model_steps.py")
    assert out["results"]["rae/dead0"]["ratio_to_rae"] == 1.0
    for key in ("topk/dead0", "batchtopk/dead8", "jumprelu/dead0", "sqjumprelu/dead0",
                "topk/dead0/dense", "batchtopk/dead8/dense", "sqjumprelu/dead0/dense",
                "topk/dead8/silent", "batchtopk/dead8/silent"):
        row = out["results"][key]
        assert positive(row["step_ms"]) and positive(row["ratio_to_rae"])


def test_ca_anchors_smoke():
    out = run_smoke("ca_anchors.py")
    assert out["benchmark"] == "ca_anchors" and 0.5 < out["pixels"]["CA"] <= 1
    topk, psae = out["results"]
    assert topk["encode_3k"]["l0_test"] > topk["l0_test"]  # a wider support when encoding
    assert psae["raw"]["l0_test"] >= psae["l0_test"]  # the threshold only removes
    assert topk["C_tuned"]["C"] in (0.001, 0.01, 0.1, 1.0, 10.0)
    assert out["best"]["CA"] >= max(topk["protocol"], psae["protocol"])


def test_atom_stability_smoke():
    out = run_smoke("atom_stability.py")
    group = out["groups"]["digits__psae__matched5"]
    assert group["seeds"] == [0, 1] and group["pairs"] == 1
    assert 0 < group["stability"] < 1 and 0 <= group["stability_distinct"] <= 1
    assert -1 <= group["own_mean_cosine"] <= group["own_nearest_other"] <= 1


def test_scoring_share_smoke():
    today = str(BENCH.parent / "psae" / "classifier.py")  # a file: CI's copy may lack git
    out = run_smoke("scoring_share.py", "--against", today)  # the same solver, twice
    assert out["threads"] == [1] and set(out["results"]["1"]) == {"rae", "topk", "psae"}
    assert out["against"] == today
    for row in out["results"]["1"].values():
        for sfx in ("", "_against"):
            assert positive(row["fit_s"]) and positive(row["score_s" + sfx])
            assert 0 < row["share" + sfx] < 1 and 0 < row["CA" + sfx] <= 1
        assert row["epochs"] >= 1
    assert positive(out["max_share"]) and isinstance(out["all_at_most_10pct"], bool)


def test_reproduce_jobs_smoke():
    out = run_smoke("reproduce_jobs.py")
    assert [r["jobs"] for r in out["runs"]] == [1, 2]
    assert all(r["cells"] == 3 and r["wall_s"] > 0 for r in out["runs"])  # RAE, TopK at 2
    assert out["same_cells"] and out["max_rel_re_diff"] < 1e-3
    assert out["speedup"] > 0 and {"threads", "loadavg_1min_before"} <= set(out)


def test_gradient_allreduce_smoke():
    out = run_smoke("gradient_allreduce.py")
    assert set(out["ms_per_call"]) == {"flat", "per_parameter"} and out["ranks"] == 2
    assert out["per_parameter_over_flat"] > 0 and len(out["load_after"]) == 3


def test_scoring_share_of_a_runs_saved_models_smoke(tmp_path):
    """``--run`` scores the seed-0 models a run saved, with the fit seconds its cells hold."""
    from psae import Normalizer, SparseAutoencoder, datasets
    from psae.reproduce.pages import save_final_model

    ds = datasets.load("digits")
    nz = Normalizer().fit(ds.X_train)
    est = SparseAutoencoder(n_components=32, penalty="topk", k=4, epochs=2, random_state=0,
                            device="cpu").fit(nz.transform(ds.X_train))
    key = "digits__topk__matched4__seed0"
    save_final_model(tmp_path, "digits", "topk_matched", nz, est, {"reproduce": key})
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / f"{key}.json").write_text(json.dumps(
        {"fit_seconds": 2.5, "n_epochs": 2, "seconds": 2.75, "test": {"CA": 0.9}}))
    out = run_smoke("scoring_share.py", "--run", str(tmp_path))
    row = out["results"]["1"]["topk"]
    assert set(out["results"]["1"]) == {"topk"}  # only the models the run saved
    assert row["fit_s"] == 2.5 and row["epochs"] == 2 and row["score_s_run"] == 0.25
    assert positive(row["score_s"]) and 0 < row["share"] < 1 and 0 < row["CA"] <= 1
    assert row["CA_run"] == 0.9
