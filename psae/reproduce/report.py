"""Write a reproduction's report: one self-contained HTML page and a Markdown twin.

The page leads with what a reader came for: per protocol, the headline figure, the results
tables and the claim verdicts, each under a one-line answer; then the other figures, the
explorer pages, and, collapsed, the run metadata, protocol, data and grids. ``report.html``
embeds every figure as a base64 PNG and carries its CSS inline (no scripts, no external
assets; links go to the explorer pages beside it); ``report.md`` holds the same content and
links figures and pages by relative path. A later protocol adds a section beside
:func:`_paper_protocol`.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..fileio import atomic_write
from ..ownership import make_dirs
from .answers import claims_answer, data_line, dataset_answer, headline
from .claims import dataset_keys, dataset_label, model_label
from .figures import (
    FIGURE_KINDS,
    figure_caption,
    figure_dataset,
    missing_pieces,
)
from .markup import Doc, Text, data_uri
from .matched_figures import MATCHED_CAPTIONS
from .matched_tables import (
    matched_answer,
    matched_claims_table,
    matched_raw_table,
    matched_sweep_table,
    matched_table,
)
from .protocol import DATA_RULE
from .tables import (
    claims_table,
    dataset_tables,
    explorer_links,
    explorer_table,
    results_table,
    run_info,
    selected_table,
    zero_code_note,
)

__all__ = ["write_report"]

TITLE = "psae reproduction: sparse autoencoders with a squared smoothed-L0 penalty"
HEADLINE_FIGURE = "figures/fig2.png"

PROTOCOL_TEXT = (
    "Preprocessing: a per-dimension z-score fitted on the training data only (a constant "
    "dimension gets std 1), clipped to ±3 and mapped affinely onto [0.1, 0.9]; the same map is "
    "applied to the test data.",
    "Model selection: each model's hyperparameters are chosen by validation CA (softmax "
    "classifier accuracy on the codes) on a validation split carved from the training set; on "
    "data without labels, by the lowest validation RE instead.",
    "Final scoring: the selected point is retrained on the full training set once per seed and "
    "scored once on the test set. The test set never chooses anything.",
    "Metrics: RE = mean per-sample squared error / D; FVU = Σ‖x − x̂‖² / Σ‖x − x̄‖² (1 for "
    "predicting the mean); S = mean Hoyer sparseness of the test codes; SSD = population std of "
    "per-sample S (all-zero codes left out of S and SSD, and counted); CA = accuracy of "
    "multinomial logistic regression trained on the training codes; L0 = active units per "
    "sample (|h| above the threshold), its mean and its std over samples (0 when every sample "
    "is equally sparse); dead units = fraction of units never active on the test set.",
)

QUICK_BANNER = ("QUICK RUN: this is a cut-down reproduction (smaller data, fewer epochs, "
                "smaller grids). Its numbers are NOT the paper-scale result; use them only to "
                "check that the pipeline works.")

SECTION_TITLES = {
    "fig2": "Fig. 2a–d, one measure each",
    "sparseness": "Per-sample sparseness distributions",
    "l0": "Per-sample L0 distributions",
    "filters": "Learned decoder filters",
    "recons": "Reconstructions",
    "curves": "Training curves",
    "sweep": "Validation sweeps (trade-off fronts)",
}

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1150px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; font-size: 1.6em; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
a { color: #1f5fa8; }
.banner { background: #fde2e1; border: 2px solid #c0392b; color: #7b1d14; padding: .8em 1em;
          font-weight: bold; margin: 1em 0; border-radius: 4px; }
.answer { background: #eef4fb; border-left: 4px solid #3b78c4; padding: .4em .8em;
          font-weight: 600; }
.data { color: #555; font-size: .9em; margin-bottom: .2em; }
.ok { color: #1e7e34; font-weight: bold; } .bad { color: #b02a1a; font-weight: bold; }
figure { margin: 1.2em 0 2em; } figure img { max-width: 100%; border: 1px solid #ddd; }
figure.headline img { width: 100%; }
.table-wrap { overflow-x: auto; max-width: 100%; }
figcaption { font-size: 0.9em; color: #444; margin-top: .3em; }
details { margin: .6em 0; border: 1px solid #ddd; border-radius: 4px; padding: .3em .8em; }
summary { cursor: pointer; font-weight: bold; }
code { background: #f4f4f4; padding: 0 .25em; border-radius: 3px; }
"""


def _explore_links(results: dict, links: dict, ds: str | None) -> list:
    """"Explore the units: RAE · PSAE" for one data set's figure; for a figure of every data
    set (ds None), the same per data set."""
    parts: list = []
    for d in [ds] if ds is not None else dataset_keys(results):
        pages = list((links.get(d) or {}).items())
        if not pages:
            continue
        parts.append("; " if parts else "Explore the units: ")
        if ds is None:
            parts.append(f"{dataset_label(results, d)}: ")
        for i, (m, href) in enumerate(pages):
            parts += [" · "] * (i > 0) + [Text(model_label(results, m), href=href)]
    return parts


def _figure(doc: Doc, results: dict, out_dir: Path, rel: str, links: dict, missing: list,
            css: str | None = None) -> None:
    uri = data_uri(out_dir / rel)
    if uri is None:
        missing.append(rel)
        return
    # the units' pages belong under the picture of the units (the learned filters), not
    # under every figure: nine links repeated ten times were noise
    units = Path(rel).name.startswith("filters")
    doc.figure(uri, rel, figure_caption(results, rel),
               _explore_links(results, links, figure_dataset(rel)) if units else [], css=css)


# ---------------------------------------------------------------------------------- sections

def _lead(doc: Doc, results: dict) -> None:
    doc.heading(1, TITLE)
    if results.get("quick"):
        doc.raw_html(f'<div class="banner">⚠ {html.escape(QUICK_BANNER)}</div>',
                     f"> **⚠ {QUICK_BANNER}**\n")
    if not results.get("finished"):
        doc.para("Note: the run has not finished; the report shows partial results.")


def _results_tables(doc: Doc, results: dict, links: dict) -> None:
    doc.heading(3, "Results (test set, mean ± std over seeds)")
    doc.para("Bold marks the best value per column: lowest RE, FVU, SSD, mean L0, L0 std and "
             "dead units; highest S and CA. Each model's name opens its feature explorer "
             "(seed 0).")
    for ds in dataset_keys(results):
        doc.heading(4, dataset_label(results, ds), anchor=f"results-{ds}")
        doc.para(dataset_answer(results, ds), css="answer")
        if line := data_line(results, ds):
            doc.para(line, css="data")
        headers, rows = results_table(results, ds, links.get(ds))
        doc.table(headers, rows, numeric_from=1, empty="No results for this data set.",
                  css="results")
        if note := zero_code_note(results, ds):
            doc.para(note)


def _paper_protocol(doc: Doc, results: dict, figures: dict, out_dir: Path, links: dict,
                    missing: list) -> None:
    """Headline figure, results and claims of the paper's protocol (tuned by validation CA)."""
    doc.heading(2, "Paper protocol: each model tuned on validation, scored once on test")
    doc.para(headline(results), css="answer")
    if HEADLINE_FIGURE in (figures.get("fig2") or []):
        _figure(doc, results, out_dir, HEADLINE_FIGURE, links, missing, css="headline")
    _results_tables(doc, results, links)
    selected = selected_table(results)[1]
    if edges := [f"{r[1]} on {r[0]} ({r[-1]})" for r in selected if r[-1] != "—"]:
        doc.para(f"⚠ {len(edges)} of {len(selected)} models were chosen at "
                 "the edge of their validation grid, where a better point may lie beyond it: "
                 + "; ".join(edges) + ".")
    doc.heading(3, "The paper's claims")
    claims = results.get("claims") or []
    doc.para(claims_answer(claims), css="answer")
    doc.para("Held: the means over seeds are ordered as the paper claims (n/a: a model or a "
             "measure is missing). Clear: in addition, the mean ± std intervals of the decisive "
             "pair (the claimed winner and its closest rival) do not overlap (never with a "
             "single seed).")
    headers, rows = claims_table(results)
    doc.table(headers, rows, empty="No claims could be evaluated.")


MATCHED_TEXT = (
    "Every model is trained to each target mean L0 (|h| > 0.01 on the test set): TopK and "
    "BatchTopK take the target as k; the penalised models steer their penalty weight toward it "
    "during training (target_l0); RAE, dense, is the reference. Every fit stops when its "
    "validation RE has converged (a plateau lowers the step size, the next ends training). A "
    "model that missed a target by more than 10 % is marked ✗ and left out of that target's "
    "comparisons. Mean ± std over seeds.")


def _exact_and_raw(doc: Doc, results: dict, ds: str) -> None:
    """The second view: the fits with an inference threshold on their raw codes, and what
    the threshold does to RE and CA (seed 0's sweep at the explorer's target)."""
    head, rows = matched_raw_table(results, ds)
    if rows:
        doc.para("Exact-sparse codes (the comparison above) against the raw codes of the same "
                 "fits, before the inference threshold θ zeroes the activations at or under it:",
                 css="note")
        doc.table(head, rows, numeric_from=2)
    target = ((results.get("matched_protocol") or {}).get(ds) or {}).get("explore_target")
    head, rows = matched_sweep_table(results, ds, str(target))
    if rows:
        doc.para(f"The threshold swept at target L0 {target} (seed 0): mean L0 · FVU · CA of "
                 "the codes trimmed at 0 (raw), θ/2, θ and 2θ.", css="note")
        doc.table(head, rows, numeric_from=1)


def _matched_protocol(doc: Doc, results: dict, figures: dict, out_dir: Path, links: dict,
                      missing: list) -> None:
    """The matched view first: every model at the same sparsity."""
    doc.heading(2, "Matched sparsity: every model at the same mean L0")
    doc.para(MATCHED_TEXT)
    for ds in (results.get("matched_summary") or {}):
        label = dataset_label(results, ds)
        doc.heading(3, label, anchor=f"matched-{ds}")
        doc.para(matched_answer(results, ds), css="answer")
        for kind in ("matched", "matched_sweep", "matched_curves"):
            rel = f"figures/{kind}_{ds}.png"
            if rel in (figures.get(kind) or []):
                uri = data_uri(out_dir / rel)
                if uri is None:
                    missing.append(rel)
                    continue
                target = ((results.get("matched_protocol") or {}).get(ds) or {}) \
                    .get("explore_target")
                doc.figure(uri, rel, MATCHED_CAPTIONS[kind].format(ds=label, t=target),
                           _explore_links(results, links, ds))
        doc.table(*matched_table(results, ds, links.get(ds)), numeric_from=2,
                  empty="No matched results for this data set.")
        _exact_and_raw(doc, results, ds)
    doc.heading(3, "The claims at equal sparsity")
    doc.para("(a) does the square lower the spread of per-sample L0 at equal mean L0; (b) is "
             "PSAE best in CA and RE among the models at the target; (c) does PSAE's freedom to "
             "vary each sample's L0 buy CA or RE over TopK, whose L0 is fixed; (d) does the "
             "square cost JumpReLU anything in CA or RE (held: no worse); (e) do exact zeros "
             "(squared JumpReLU) beat PSAE's smoothed L0 in CA, RE and L0 spread. Clear: the "
             "mean ± std intervals over seeds do not overlap.")
    doc.table(*matched_claims_table(results), empty="No claims could be evaluated.")


def _figures(doc: Doc, results: dict, figures: dict, out_dir: Path, links: dict,
             missing: list) -> None:
    doc.heading(2, "Figures")
    kinds = [k for k in FIGURE_KINDS if k in figures]
    for kind in kinds:
        paths = [p for p in figures.get(kind) or [] if p != HEADLINE_FIGURE]
        if not paths:
            continue
        doc.heading(3, SECTION_TITLES.get(kind, kind))
        for rel in paths:
            _figure(doc, results, out_dir, rel, links, missing)


def _explorer(doc: Doc, results: dict, links: dict) -> None:
    if not results.get("explorer"):
        return
    doc.heading(2, "Feature explorer pages")
    doc.para("One page per (data set, model): the seed-0 final model on a stratified sample of "
             "the test split. The saved model re-opens with psae.load, or with psae explore "
             "--model DIR --data ... for other rows.")
    doc.table(*explorer_table(results, links))


def _details(doc: Doc, results: dict) -> None:
    paper = has_paper_protocol(results)
    doc.heading(2, "Run, protocol and grids" if paper else "Run, protocol and data")
    if paper:
        with doc.details("Selected hyperparameters"):
            doc.para("Chosen per (data set, model) on the validation split (CA; RE for data "
                     "without labels); the score is that of the selected grid point.")
            doc.table(*selected_table(results), empty="No runs.")
    with doc.details("Run metadata"):
        doc.table(["item", "value"], run_info(results), anchor="run")
    with doc.details("Protocol, data and grids" if paper else "Protocol and data"):
        for text in PROTOCOL_TEXT if paper else (PROTOCOL_TEXT[0], PROTOCOL_TEXT[-1]):
            doc.para(text)
        if paper and any("sha256" in (i or {})
                         for i in (results.get("datasets") or {}).values()):
            doc.para(DATA_RULE)
        for ds in dataset_keys(results):
            doc.heading(4, dataset_label(results, ds))
            for name, headers, rows in dataset_tables(results, ds, paper=paper):
                doc.para(f"{name}:")
                doc.table(headers, rows)


def has_paper_protocol(results: dict) -> bool:
    """Whether the run holds the paper protocol (runs written before ``protocol`` was
    recorded did), so that its selection, grids and missing final runs belong in the report."""
    return results.get("protocol", "paper") in ("paper", "both") or bool(results.get("final"))


# ---------------------------------------------------------------------------------- report

def write_report(results: dict, out_dir: Path, figures: dict[str, list[str]]
                 ) -> tuple[Path, Path]:
    """Write ``out_dir/report.html`` and ``out_dir/report.md``; return their paths.

    The report only renders: the claims are those in ``results`` and ``figures`` the files
    :func:`~psae.reproduce.figures.make_figures` drew (nothing is computed or drawn here).
    """
    out_dir = Path(out_dir)
    make_dirs(out_dir)
    links = explorer_links(results, out_dir)
    missing: list[str] = []
    doc = Doc()
    _lead(doc, results)
    if results.get("matched"):
        _matched_protocol(doc, results, figures, out_dir, links, missing)
    if results.get("final"):
        _paper_protocol(doc, results, figures, out_dir, links, missing)
        _figures(doc, results, figures, out_dir, links, missing)
    _explorer(doc, results, links)
    _details(doc, results)
    notes = (missing_pieces(results, out_dir) if has_paper_protocol(results) else []) \
        + [f"figure file {p} not found" for p in missing]
    if notes:
        doc.heading(2, "Missing pieces")
        doc.bullets(notes)
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    atomic_write(html_path, doc.page(TITLE, CSS))
    atomic_write(md_path, doc.markdown())
    return html_path, md_path
