"""The paper protocol's part of the report: headline figure, results, claims, other figures."""

from __future__ import annotations

from pathlib import Path

from ..labels import dataset_keys, dataset_label
from ..render import Page, show_figure
from .answers import claims_answer, data_line, dataset_answer, headline
from .figures import FIGURE_KINDS, figure_caption, figure_dataset
from .tables import claims_table, results_table, selected_table, zero_code_note

__all__ = ["HEADLINE_FIGURE", "paper_section"]

HEADLINE_FIGURE = "figures/fig2.png"

SECTION_TITLES = {
    "fig2": "Fig. 2a–d, one measure each",
    "sparseness": "Per-sample sparseness distributions",
    "l0": "Per-sample L0 distributions",
    "filters": "Learned decoder filters",
    "recons": "Reconstructions",
    "curves": "Training curves",
    "sweep": "Validation sweeps (trade-off fronts)",
}


def _figure(page: Page, rel: str, css: str | None = None) -> None:
    # the units' pages belong under the picture of the units (the learned filters), not
    # under every figure: nine links repeated ten times were noise
    show_figure(page, rel, figure_caption(page.results, rel), figure_dataset(rel),
                units=Path(rel).name.startswith("filters"), css=css)


def _results_tables(page: Page) -> None:
    doc, results, links = page.doc, page.results, page.links
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


def paper_section(page: Page) -> None:
    """Headline figure, results and claims of the paper's protocol (tuned by validation CA),
    then its other figures."""
    doc, results = page.doc, page.results
    doc.heading(2, "Paper protocol: each model tuned on validation, scored once on test")
    doc.para(headline(results), css="answer")
    if HEADLINE_FIGURE in (page.figures.get("fig2") or []):
        _figure(page, HEADLINE_FIGURE, css="headline")
    _results_tables(page)
    selected = selected_table(results)[1]
    if edges := [f"{r[1]} on {r[0]} ({r[-1]})" for r in selected if r[-1] != "—"]:
        doc.para(f"⚠ {len(edges)} of {len(selected)} models were chosen at "
                 "the edge of their validation grid, where a better point may lie beyond it: "
                 + "; ".join(edges) + ".")
    doc.heading(3, "The paper's claims")
    claims = results.get("claims") or []
    doc.para(claims_answer(claims), css="answer")
    doc.para("Held: the means over seeds are ordered as the paper claims (n/a: a model or a "
             "measure is missing). Clear: in addition, Welch's t-test over the seeds puts the "
             "decisive pair (the claimed winner and its closest rival) apart at p < 0.05 "
             "(never with a single seed).")
    headers, rows = claims_table(results)
    doc.table(headers, rows, empty="No claims could be evaluated.")
    _figures(page)


def _figures(page: Page) -> None:
    doc, figures = page.doc, page.figures
    doc.heading(2, "Figures")
    kinds = [k for k in FIGURE_KINDS if k in figures]
    for kind in kinds:
        paths = [p for p in figures.get(kind) or [] if p != HEADLINE_FIGURE]
        if not paths:
            continue
        doc.heading(3, SECTION_TITLES.get(kind, kind))
        for rel in paths:
            _figure(page, rel)


