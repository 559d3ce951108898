"""Write a reproduction's report: one self-contained HTML page and a Markdown twin.

The page leads with what a reader came for: per protocol, the headline figure, the results
tables and the claim verdicts, each under a one-line answer; then the other figures, the
explorer pages, and, collapsed, the run metadata, protocol, data and grids. ``report.html``
embeds every figure as a base64 PNG and carries its CSS inline (no scripts, no external
assets; links go to the explorer pages beside it); ``report.md`` holds the same content and
links figures and pages by relative path. Each protocol renders its own section
(:mod:`.protocols`); this module writes the lead, the explorer pages and the details.
"""

from __future__ import annotations

import html
from pathlib import Path

from ..io.atomic import atomic_write
from ..io.ownership import make_dirs
from .labels import dataset_keys, dataset_label
from .markup import Doc
from .paper.figures import missing_pieces
from .paper.settings import DATA_RULE
from .paper.tables import selected_table
from .protocols import registered
from .render import Page
from .tables import dataset_tables, explorer_links, explorer_table, run_info

__all__ = ["write_report"]

TITLE = "psae reproduction: sparse autoencoders with a squared smoothed-L0 penalty"

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


# ---------------------------------------------------------------------------------- sections

def _lead(doc: Doc, results: dict) -> None:
    doc.heading(1, TITLE)
    if results.get("quick"):
        doc.raw_html(f'<div class="banner">⚠ {html.escape(QUICK_BANNER)}</div>',
                     f"> **⚠ {QUICK_BANNER}**\n")
    if not results.get("finished"):
        gap = results.get("cells_missing") or {}
        count = (f": {gap['missing']} of its {gap['planned']} planned cells are not fitted yet"
                 if gap else "")
        doc.para(f"Note: the run has not finished{count}; the report shows the finished "
                 "cells only (run the same command with --resume to go on).")


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

    The report only renders: the claims are those in ``results`` and ``figures`` the files the
    protocols drew (nothing is computed or drawn here). Each registered protocol the run holds
    adds its section (:mod:`.protocols`).
    """
    out_dir = Path(out_dir)
    make_dirs(out_dir)
    page = Page(Doc(), results, figures, out_dir, explorer_links(results, out_dir))
    _lead(page.doc, results)
    for protocol in registered():
        if protocol.holds(results):
            protocol.section(page)
    _explorer(page.doc, results, page.links)
    _details(page.doc, results)
    notes = (missing_pieces(results, out_dir) if has_paper_protocol(results) else []) \
        + [f"figure file {p} not found" for p in page.missing] \
        + [f"the {name} protocol's figures failed: {why}"
           for name, why in (results.get("figure_errors") or {}).items()]
    if notes:
        page.doc.heading(2, "Missing pieces")
        page.doc.bullets(notes)
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    atomic_write(html_path, page.doc.page(TITLE, CSS))
    atomic_write(md_path, page.doc.markdown())
    return html_path, md_path
