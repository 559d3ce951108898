"""What every protocol's part of a report is drawn with: the page being written and what
it may show (:class:`Page`), and figures with their units' explorer links."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .labels import dataset_keys, dataset_label, model_label
from .markup import Doc, Text, data_uri

__all__ = ["Page", "explore_links", "show_figure"]


@dataclass
class Page:
    """One report being rendered: the document, the run's results, the figures drawn (kind ->
    paths relative to ``out_dir``), the explorer pages by data set and model, and the figure
    files found missing while rendering."""

    doc: Doc
    results: dict
    figures: dict[str, list[str]]
    out_dir: Path
    links: dict[str, dict[str, str]]
    missing: list[str] = field(default_factory=list)


def explore_links(results: dict, links: dict, ds: str | None) -> list:
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


def show_figure(page: Page, rel: str, caption: str, ds: str | None, units: bool = False,
                css: str | None = None) -> None:
    """Embed the figure file ``rel`` with its caption (noted as missing if it is gone); under
    the picture of the units (``units``), the links to their explorer pages."""
    uri = data_uri(page.out_dir / rel)
    if uri is None:
        page.missing.append(rel)
        return
    links = explore_links(page.results, page.links, ds) if units else []
    page.doc.figure(uri, rel, caption, links, css=css)
