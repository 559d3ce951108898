"""Figures, claims and report of a reproduction, on a small synthetic results dict."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from psae.reproduce.paper.claims import evaluate_claims
from psae.reproduce.paper.figures import make_figures
from psae.reproduce.report import write_report

MODELS = ["rae", "l1", "kl", "psae", "l0"]
LABELS = {"rae": "RAE", "l1": "SAE+L1", "kl": "SAE+Ber", "psae": "PSAE",
          "l0": "SAE+L0 (unsquared)"}
SEEDS = [0, 1]
# per-model test means that satisfy every claim: RE rae < psae < l1, kl; S/CA highest for psae,
# SSD lowest for psae, every sparse model's CA above RAE's, psae's SSD below l0's
GOOD = {
    "rae": {"RE": 0.003, "FVU": 0.10, "S": 0.20, "SSD": 0.10, "CA": 0.90, "L0_mean": 300.0,
            "L0_std": 9.0, "dead_units": 0.0},
    "l1": {"RE": 0.006, "FVU": 0.20, "S": 0.50, "SSD": 0.12, "CA": 0.93, "L0_mean": 60.0,
           "L0_std": 7.0, "dead_units": 0.1},
    "kl": {"RE": 0.007, "FVU": 0.23, "S": 0.45, "SSD": 0.11, "CA": 0.92, "L0_mean": 80.0,
           "L0_std": 8.0, "dead_units": 0.05},
    "psae": {"RE": 0.004, "FVU": 0.13, "S": 0.70, "SSD": 0.04, "CA": 0.96, "L0_mean": 20.0,
             "L0_std": 2.0, "dead_units": 0.0},
    "l0": {"RE": 0.005, "FVU": 0.17, "S": 0.65, "SSD": 0.15, "CA": 0.94, "L0_mean": 25.0,
           "L0_std": 6.0, "dead_units": 0.2},
}
# image data (grey and colour) and data without an image shape (drawn as plots)
DATASETS = {"digits": [8, 8], "tiny_rgb": [4, 4, 3], "series": None}
N_FEATURES = {"digits": 64, "tiny_rgb": 48, "series": 30}


def _history(model: str) -> list[dict]:
    sigmas = [1.0, 0.5, 0.2] if model in ("psae", "l0") else [None]
    hist, epoch = [], 0
    for stage, sigma in enumerate(sigmas):
        for e in range(3):
            epoch += 1
            hist.append({"stage": stage, "sigma": sigma, "epoch": e + 1,
                         "loss": 4.0 / epoch, "reconstruction": 0.8 / epoch,
                         "sparsity": 0.01, "seconds": 0.1})
    return hist


def _results(out_dir: Path, means: dict | None = None, quick: bool = False) -> dict:
    means = means or GOOD
    rng = np.random.default_rng(0)
    n_test, k = 40, 12
    datasets, grid, final, summary = {}, [], [], {}
    for ds, shape in DATASETS.items():
        D = N_FEATURES[ds]
        datasets[ds] = {
            "label": ds.upper(), "shape": shape, "n_train": 100, "n_test": n_test, "n_val": 20,
            "n_features": D, "note": "synthetic <test> | data",
            "protocol": {"n_components": 16, "epochs": 3, "batch_size": 32, "grid_train": 80},
            "grid": {"psae": [{"lam": 3.0, "sigmas": [1.0, 0.5, 0.2]},
                              {"lam": 10.0, "sigmas": [1.0, 0.5, 0.2]}],
                     "l0": [{"lam": 3.0, "sigmas": [1.0, 0.5, 0.2]}],
                     "l1": [{"beta": 0.001}, {"beta": 0.01}], "kl": [{"beta": 0.1, "rho": 0.05}],
                     "rae": [{}]},
        }
        summary[ds] = {}
        for m in MODELS:
            mu = means[m]
            # a spread of 0.1 %: every good claim is clear by Welch's test on these seeds
            summary[ds][m] = {key: {"mean": v, "std": 0.001 * abs(v), "n": len(SEEDS)}
                              for key, v in mu.items()}
            pts = datasets[ds]["grid"][m]
            for p, params in enumerate(pts):
                for seed in SEEDS:
                    val = {key: v * (1 + 0.05 * p) for key, v in mu.items()} | {"zero_codes": 0}
                    val["L0_mean"] = mu["L0_mean"]
                    grid.append({"kind": "grid", "dataset": ds, "model": m, "point": p,
                                 "params": params, "seed": seed, "val": val,
                                 "fit_seconds": 1.0, "n_epochs": 3, "selected": p == 0})
            for seed in SEEDS:
                rel = f"cells/{ds}__{m}__final__seed{seed}.npz"
                (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                S = np.clip(rng.normal(mu["S"], mu["SSD"], n_test), 0, 1)
                S[0] = np.nan
                np.savez(out_dir / rel, S=S.astype(np.float64),
                         L0=rng.poisson(mu["L0_mean"] / 20 + 1, n_test).astype(np.int64),
                         filters=rng.normal(size=(k, D)).astype(np.float32),
                         inputs=rng.uniform(0.1, 0.9, (8, D)).astype(np.float32),
                         recons=rng.uniform(0.1, 0.9, (8, D)).astype(np.float32))
                test = {key: v for key, v in mu.items() if key not in ("L0_mean", "L0_std")}
                test |= {"zero_codes": 1, "L0": {"mean": mu["L0_mean"], "std": mu["L0_std"],
                                                 "min": 0, "max": 9, "threshold": 0.01}}
                final.append({"kind": "final", "dataset": ds, "model": m, "point": 0,
                              "seed": seed, "params": pts[0],
                              "test": test, "fit_seconds": 2.0, "n_epochs": 3,
                              "history": _history(m), "arrays": rel})
    return {
        "psae_version": "0.1.0", "command": "psae reproduce --out <dir> & more",
        "started": "2024-01-01T00:00:00", "finished": "2024-01-01T00:10:00", "seconds": 600.0,
        "quick": quick, "machine": {"cores": 2, "device": "cpu", "torch": "2.x",
                                    "platform": "linux"},
        "seeds": SEEDS, "models": MODELS, "model_labels": LABELS, "datasets": datasets,
        "threshold": 0.01, "grid": grid, "final": final, "summary": summary,
    }


def _explorer(out_dir: Path) -> dict:
    """Explorer entries as the runner writes them: pages for digits' PSAE and RAE, none for
    the rest (PSAE on tiny_rgb says why)."""
    entries = {ds: {} for ds in DATASETS}
    for m in ("psae", "rae"):
        page = out_dir / "explore" / f"digits__{m}" / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("<!DOCTYPE html><title>explorer</title>")
        entries["digits"][m] = {"page": f"explore/digits__{m}/index.html", "bytes": 1234,
                                "samples": 40, "of": 40, "model_dir": f"models/digits__{m}"}
    entries["tiny_rgb"]["psae"] = {"missing": "no seed-0 final model saved (the fit failed)"}
    return entries


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> tuple[dict, Path, dict, tuple[Path, Path]]:
    out = tmp_path_factory.mktemp("run")
    res = _results(out)
    res["explorer"] = _explorer(out)
    res["claims"] = evaluate_claims(res)  # as the runner does: the report only renders them
    json.dumps(res)  # the dict must be JSON-serialisable like results.json
    figs = make_figures(res, out)
    paths = write_report(res, out, figs)
    return res, out, figs, paths


def test_every_figure_is_a_png(full_run):
    _, out, figs, _ = full_run
    assert len(figs["fig2"]) == 5
    for kind in ("sparseness", "l0", "filters", "recons", "curves", "sweep"):
        assert len(figs[kind]) == len(DATASETS), kind
    files = sorted((out / "figures").glob("*.png"))
    listed = sorted(p for paths in figs.values() for p in paths)
    assert [f"figures/{f.name}" for f in files] == listed
    for f in files:
        assert f.stat().st_size > 5000, f
        with Image.open(f) as im:
            im.verify()
        with Image.open(f) as im:
            assert im.format == "PNG" and min(im.size) > 200
    assert [p.name for p in (out / "figures").glob(".*")] == [".psae-manifest.json"]  # no temp


def test_html_is_self_contained(full_run):
    _, out, figs, (html_path, md_path) = full_run
    assert html_path == out / "report.html" and md_path == out / "report.md"
    page = html_path.read_text(encoding="utf-8")
    n_figs = sum(len(v) for v in figs.values())
    assert page.count("data:image/png;base64,") == n_figs
    low = page.lower()
    assert 'src="http' not in low and "<link" not in low and "<script" not in low
    assert "url(http" not in low
    # text is escaped: the command and the note contain HTML metacharacters
    assert "&lt;dir&gt; &amp; more" in page and "synthetic &lt;test&gt;" in page
    assert "<test>" not in page
    assert "class=\"banner\"" not in page  # not a quick run
    for heading in ("Protocol", "Results", "claims", "Selected hyperparameters", "Figures"):
        assert heading in page
    # what a reader came for first: headline figure, results, claims; metadata last, collapsed
    order = [page.index(s) for s in ('class="headline"', 'class="results"', "paper&#x27;s claims",
                                     "<h2>Figures", "<summary>Run metadata", 'id="run"',
                                     "Preprocessing:")]
    assert order == sorted(order)
    assert page.index("<details>") > page.index("paper&#x27;s claims")
    assert page.count("<details>") == page.count("</details>") == 3


def test_markdown_links_every_figure(full_run):
    _, out, figs, (_, md_path) = full_run
    md = md_path.read_text(encoding="utf-8")
    for paths in figs.values():
        for p in paths:
            assert f"]({p})" in md
            assert (out / p).is_file()
    assert "| PSAE |" in md and "**" in md  # results rows with bold best values
    assert "synthetic \\<test\\> \\| data" in md  # pipes and tags escaped in tables


def test_claims_hold_on_good_numbers():
    res = _results_no_files()
    rows = evaluate_claims(res)
    assert {r["id"] for r in rows} == {1, 2, 3, 4, 5, 6}
    assert len(rows) == 6 * len(DATASETS)
    for r in rows:
        assert r["held"] is True, r
        assert r["clear"] is True, r
        assert set(r) >= {"claim", "dataset", "held", "detail", "clear"}
    re_row = next(r for r in rows if r["id"] == 1)
    assert "RAE 0.003" in re_row["detail"] and "PSAE 0.004" in re_row["detail"]


def _results_no_files(means: dict | None = None) -> dict:
    """Claims need only summary/final; write the npz files to a throwaway folder."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return _results(Path(d), means)


@pytest.mark.parametrize(
    ("model", "metric", "value", "claim"),
    [("l1", "RE", 0.0035, 1),    # SAE+L1 reconstructs better than PSAE
     ("psae", "RE", 0.002, 1),   # PSAE below RAE
     ("kl", "S", 0.9, 2),        # SAE+Ber sparser than PSAE
     ("rae", "SSD", 0.01, 3),    # RAE more even than PSAE
     ("l1", "CA", 0.99, 4),      # SAE+L1 more accurate
     ("kl", "CA", 0.85, 5),      # SAE+Ber below RAE
     ("l0", "SSD", 0.03, 6)],    # unsquared ablation more even
)
def test_claims_fail_on_violating_numbers(model, metric, value, claim):
    means = copy.deepcopy(GOOD)
    means[model][metric] = value
    rows = evaluate_claims(_results_no_files(means))
    for r in rows:
        if r["id"] == claim:
            assert r["held"] is False, r
            assert r["clear"] is False
        elif not (claim == 4 and r["id"] == 5):
            assert r["held"] is True, r


def test_claims_overlap_is_not_clear():
    res = _results_no_files()
    for ds in res["summary"]:
        res["summary"][ds]["psae"]["CA"]["std"] = 0.05  # 0.96 ± 0.05 overlaps 0.93
    rows = [r for r in evaluate_claims(res) if r["id"] == 4]
    assert all(r["held"] is True and r["clear"] is False for r in rows)


def test_claims_missing_model_and_fallback_to_final():
    res = _results_no_files()
    res["models"] = ["rae", "psae"]
    res["final"] = [r for r in res["final"] if r["model"] in ("rae", "psae")]
    del res["summary"]  # recomputed from final
    rows = evaluate_claims(res)
    by_id = {r["id"]: r for r in rows if r["dataset"] == "digits"}
    assert 6 not in by_id  # no ablation requested
    assert by_id[1]["held"] is None  # needs SAE+L1 or SAE+Ber
    assert by_id[5]["held"] is None
    assert by_id[2]["held"] is None and "SAE+L1, SAE+Ber missing" in by_id[2]["detail"]
    assert "PSAE 0.7 > RAE 0.2" in by_id[2]["detail"]  # the partial comparison is kept


def test_claims_fallback_to_final():
    res = _results_no_files()
    del res["summary"]  # recomputed from final: identical seeds -> std 0, so every claim clear
    rows = evaluate_claims(res)
    assert len(rows) == 6 * len(DATASETS)
    assert all(r["held"] is True and r["clear"] is True for r in rows)


def test_quick_banner_and_missing_npz(tmp_path):
    res = _results(tmp_path, quick=True)
    # keep it small (drawing dominates the run time): one data set, three models
    keep = ("rae", "kl", "psae")
    res["models"] = list(keep)
    del res["datasets"]["digits"], res["summary"]["digits"]
    res["grid"] = [g for g in res["grid"] if g["dataset"] == "tiny_rgb" and g["model"] in keep]
    res["final"] = [r for r in res["final"] if r["dataset"] == "tiny_rgb" and r["model"] in keep]
    # a missing npz file, a model without runs, an unfinished run
    (tmp_path / res["final"][0]["arrays"]).unlink()  # rae seed 0: seed 1 is drawn instead
    res["final"] = [r for r in res["final"] if r["model"] != "kl"]
    del res["summary"]["tiny_rgb"]["kl"]
    res["finished"] = None
    html_path, md_path = write_report(res, tmp_path, make_figures(res, tmp_path))
    page = html_path.read_text(encoding="utf-8")
    assert 'class="banner"' in page and "cut-down" in page and "NOT the paper-scale" in page
    assert "cut-down" in md_path.read_text(encoding="utf-8")
    assert "Missing pieces" in page and "missing or unreadable" in page
    assert "no final runs for SAE+Ber" in page
    n_files = len(list((tmp_path / "figures").glob("*.png")))
    assert n_files == 5 + 6
    assert page.count("data:image/png;base64,") == n_files
    assert "not finished" in page


def test_nothing_to_draw(tmp_path):
    res = {"models": ["psae"], "datasets": {"x": {"label": "X", "shape": [2, 2]}},
           "final": [{"dataset": "x", "model": "psae", "seed": 0, "arrays": "nope.npz",
                      "test": {"RE": 0.1}}]}
    figs = make_figures(res, tmp_path)
    assert all(kind == "fig2" or not paths for kind, paths in figs.items())
    html_path, md_path = write_report(res, tmp_path, figs)
    assert html_path.is_file() and md_path.is_file()
    assert not list(tmp_path.glob(".*tmp"))


def test_single_seed_is_never_clear():
    res = _results_no_files()
    for ds in res["summary"]:
        for m in res["summary"][ds]:
            for st in res["summary"][ds][m].values():
                st["n"], st["std"] = 1, 0.0
    rows = evaluate_claims(res)
    assert all(r["held"] is True and r["clear"] is False for r in rows)


def _md_row(md: str, first_cell: str) -> dict[str, str]:
    """The Markdown results row that starts with ``first_cell``, keyed by column title."""
    lines = md.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first_cell} |"))
    header = next(lines[j] for j in range(i, -1, -1) if lines[j].startswith("| model |"))
    cells = lambda ln: [c.strip() for c in ln.strip("|").split(" | ")]  # noqa: E731
    return dict(zip(cells(header), cells(lines[i]), strict=True))


def test_results_tables_show_fvu_and_l0_std_and_link_each_model(full_run):
    _, out, _, (html_path, md_path) = full_run
    page, md = html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")
    row = _md_row(md, "[PSAE](explore/digits__psae/index.html)")
    assert row["L0 std"] == "**2 ± 0.002**"  # lowest spread of per-sample L0: PSAE's
    assert row["FVU"] == "0.13 ± 0.00013"  # RAE's 0.1 is best
    assert _md_row(md, "[RAE](explore/digits__rae/index.html)")["FVU"] == "**0.1 ± 0.0001**"
    assert _md_row(md, "SAE+L1")["L0 std"] == "7 ± 0.007"  # no page: no link
    assert '<td><a href="explore/digits__psae/index.html">PSAE</a></td>' in page
    assert '<a href="explore/tiny_rgb__' not in page  # no pages there
    # every link in the report goes to a page that exists
    import re

    hrefs = set(re.findall(r'href="([^"]+)"', page))
    assert hrefs == {"explore/digits__psae/index.html", "explore/digits__rae/index.html"}
    assert all((out / h).is_file() for h in hrefs)


def test_figures_link_their_data_sets_explorer_pages(full_run):
    _, _, _, (html_path, md_path) = full_run
    page, md = html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")

    def caption(stem: str) -> str:
        start = page.index(f'alt="{stem}"')
        return page[start:page.index("</figure>", start)]

    # under the picture of the units only: the same nine links under every figure were noise
    assert 'href="explore/digits__psae/index.html"' in caption("filters_digits")
    for stem in ("fig2", "sweep_digits", "filters_tiny_rgb"):
        assert "explore/" not in caption(stem), stem
    assert md.count("Explore the units") == 1
    after = md.split("![filters_digits](figures/filters_digits.png)", 1)[1].split("![", 1)[0]
    assert "[PSAE](explore/digits__psae/index.html)" in after


def test_report_leads_with_one_line_answers(full_run):
    _, _, _, (html_path, md_path) = full_run
    page, md = html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")
    answer = "Best CA on DIGITS: PSAE 96.0 % (next SAE+L0 (unsquared) 94.0 %)"
    assert answer in md and answer in page
    assert "best CA: PSAE (DIGITS, TINY_RGB, SERIES)" in md
    assert "Of 18 claim checks (claim × data set), 18 held (18 clearly" in md
    assert md.index(answer) < md.index("### Run metadata") < md.index("Preprocessing:")
    assert "no seed-0 final model saved (the fit failed)" in md  # the explorer table says why


def test_data_without_image_shape_is_drawn_as_plots(full_run):
    res, out, _, (_, md_path) = full_run
    md = md_path.read_text(encoding="utf-8")

    def ink(name: str) -> float:  # share of pixels that are not near-white
        with Image.open(out / "figures" / f"{name}.png") as im:
            a = np.asarray(im.convert("L"), dtype=float)
        return float((a < 200).mean())

    for kind in ("filters", "recons"):
        plots = md.split(f"![{kind}_series]", 1)[1].split("\n\n")[1]
        assert "drawn as line plots (the data have no image shape)" in plots
        images = md.split(f"![{kind}_digits]", 1)[1].split("\n\n")[1]
        assert "line plots" not in images
    # the digits atoms are a mosaic of grey tiles; the series atoms a few lines on white
    assert ink("filters_digits") > 2 * ink("filters_series")


def test_results_csv_has_fvu_and_l0_std(tmp_path):
    import csv
    import io

    from psae.reproduce.results import csv_fields, to_csv

    res = _results(tmp_path)
    res["final"][0]["test"]["CA"] = None  # never computed (data without labels): empty cell
    rows = list(csv.DictReader(io.StringIO(to_csv(res))))
    assert {"FVU", "L0_std", "L0_mean"} <= set(csv_fields()) == set(rows[0])
    finals = [r for r in rows if r["kind"] == "final"]
    assert len(finals) == len(res["final"]) and finals[0]["CA"] == ""
    psae = next(r for r in finals if r["model"] == "psae")
    assert float(psae["L0_std"]) == GOOD["psae"]["L0_std"]
    assert float(psae["FVU"]) == GOOD["psae"]["FVU"]


def test_metric_stats_reads_fvu_and_l0_std_from_summary_and_final():
    from psae.reproduce.paper.claims import metric_stats

    res = _results_no_files()
    assert metric_stats(res, "digits", "psae", "L0_std")[0] == 2.0
    del res["summary"]
    assert metric_stats(res, "digits", "psae", "L0_std") == (2.0, 0.0, 2)
    assert metric_stats(res, "digits", "psae", "FVU") == (0.13, 0.0, 2)


def test_data_without_labels_has_no_ca_and_says_why(tmp_path):
    from psae.reproduce.paper.claims import metric_stats

    res = _results(tmp_path)
    res["datasets"]["series"]["labels"] = False
    for m in MODELS:
        res["summary"]["series"][m]["CA"] = {"mean": None, "std": None, "n": 0}
    for r in res["final"]:
        if r["dataset"] == "series":
            r["test"]["CA"] = None
    assert metric_stats(res, "series", "psae", "CA") is None
    rows = {r["id"]: r for r in evaluate_claims(res) if r["dataset"] == "series"}
    assert rows[4]["held"] is None and rows[4]["detail"] == "CA not computed: no labels"
    assert rows[5]["held"] is None and rows[2]["held"] is True  # the other measures stand
    from psae.reproduce.paper.answers import dataset_answer

    assert dataset_answer(res, "series").startswith("CA not computed on SERIES: no labels · ")
    assert dataset_answer(res, "digits").startswith("Best CA on DIGITS: PSAE")


def test_most_even_sparsity_is_never_the_dense_model():
    """A dense code (RAE) with the lowest SSD was named 'most even sparsity': it is ranked
    among the sparse models only."""
    from psae.reproduce.paper.answers import dataset_answer, headline

    res = _results_no_files({**GOOD, "rae": {**GOOD["rae"], "SSD": 0.001}})
    for text in (dataset_answer(res, "digits"), headline(res)):
        part = text.split("most even sparsity")[1].split("·")[0]
        assert "RAE" not in part and "PSAE" in part, text


def test_a_paper_claim_says_which_other_models_beat_psae():
    """'S highest for PSAE' is judged among the paper's four; TopK with a higher S in the same
    table is named rather than passed over in silence."""
    res = _results_no_files()
    res["models"] = [*res["models"], "topk"]
    res.setdefault("model_labels", {})["topk"] = "TopK"
    for ds in res["summary"]:
        res["summary"][ds]["topk"] = {k: dict(v) for k, v in res["summary"][ds]["psae"].items()}
        res["summary"][ds]["topk"]["S"]["mean"] = 0.99
    rows = {(r["id"], r["dataset"]): r for r in evaluate_claims(res)}
    s_row = rows[(2, "digits")]
    assert "among the paper's four" in s_row["claim"] and s_row["held"] is True
    assert "outside the paper's four models, TopK 0.99 higher than PSAE" in s_row["detail"]
    assert "outside" not in rows[(4, "digits")]["detail"]  # TopK's CA ties PSAE's: not higher


def test_the_headline_says_how_psae_placed():
    from psae.reproduce.paper.answers import headline

    res = _results_no_files({**GOOD, "l1": {**GOOD["l1"], "CA": 0.99}})
    line = headline(res)
    assert "PSAE's place (on DIGITS, TINY_RGB, SERIES): CA 2 of 5, 2 of 5, 2 of 5;" in line


def test_a_choice_at_the_grid_edge_is_said():
    from psae.reproduce.paper.tables import grid_edges

    grid = [{"lam": 1.0}, {"lam": 3.0}, {"lam": 10.0}]
    assert grid_edges(grid, {"lam": 10.0}) == ["lam = 10, the grid's largest"]
    assert grid_edges(grid, {"lam": 3.0}) == []
    assert grid_edges(grid[:2], {"lam": 1.0}) == []  # two points: every choice is an edge
    assert grid_edges([{"beta": b, "rho": 0.05} for b in (0.003, 0.01, 0.1)],
                      {"beta": 0.003, "rho": 0.05}) == ["beta = 0.003, the grid's smallest"]


def test_clear_means_welchs_test_not_intervals_apart():
    from scipy import stats as scipy_stats

    from psae.reproduce.stats import apart, below, welch_p

    # v2's OPTDIGITS CA at L0 20 (claim e): the mean ± std intervals do not overlap, p = 0.17
    a, b = (0.9607, 0.0077, 3), (0.9495, 0.0027, 3)
    assert a[0] - a[1] > b[0] + b[1] and not apart(a, b)
    x, y = np.array([1.0, 1.2, 0.9]), np.array([1.5, 1.7, 1.4])
    sx, sy = (x.mean(), x.std(), 3), (y.mean(), y.std(), 3)
    assert welch_p(sx, sy) == pytest.approx(scipy_stats.ttest_ind(x, y, equal_var=False).pvalue)
    assert below(sx, sy) and not below(sy, sx) and apart(sy, sx)
    assert welch_p(sx, (1.5, 0.1, 1)) is None  # one seed: no spread to judge


def test_equal_means_are_written_equal_not_ordered():
    """Three models at exactly 0.375 read 'PSAE 0.375 > RAE 0.375 > SAE+L1 0.375'."""
    means = copy.deepcopy(GOOD)
    for m in ("psae", "rae", "l1"):
        means[m]["CA"] = 0.375
    rows = [r for r in evaluate_claims(_results_no_files(means)) if r["id"] == 4]
    assert rows and all(r["held"] is False for r in rows)
    assert all(" = RAE 0.375" in r["detail"] or " = PSAE 0.375" in r["detail"] for r in rows), \
        rows[0]["detail"]
