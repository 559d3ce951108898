"""The tables every report shares, as header lists and rows of cells (see :mod:`.markup`):
explorer pages, run metadata, protocol and data; the formatting of their values."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .labels import dataset_label, model_label
from .markup import Cell, Text

__all__ = ["fmt_value", "fmt_params", "held_text", "models_for", "explorer_links",
           "explorer_table", "run_info", "dataset_tables"]


def _fmt_num(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return "NaN" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def fmt_value(v: Any) -> str:
    """A value as the report shows it: numbers to 4 digits, containers as JSON."""
    if isinstance(v, (dict, list, tuple)):
        try:
            return json.dumps(v, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            return str(v)
    return _fmt_num(v)


def fmt_params(params: Any) -> str:
    if not isinstance(params, dict):
        return fmt_value(params)
    if not params:
        return "(none)"
    return ", ".join(f"{k}={fmt_value(v)}" for k, v in params.items())


def held_text(held: bool | None) -> str:
    return "✓" if held is True else "✗" if held is False else "n/a"


def models_for(results: dict, ds: str) -> list[str]:
    models = list(results.get("models") or [])
    for m in ((results.get("summary") or {}).get(ds) or {}):
        if m not in models:
            models.append(m)
    return models


def explorer_links(results: dict, out_dir: Path) -> dict[str, dict[str, str]]:
    """The explorer pages that exist, by data set and model, as paths relative to the report."""
    links: dict[str, dict[str, str]] = {}
    for ds, per_model in (results.get("explorer") or {}).items():
        for m, entry in (per_model or {}).items():
            page = (entry or {}).get("page")
            if page and (Path(out_dir) / page).is_file():
                links.setdefault(ds, {})[m] = page
    return links


# ---------------------------------------------------------------------------------- results


def explorer_table(results: dict, links: dict[str, dict[str, str]]
                   ) -> tuple[list[str], list[list[Cell]]]:
    """Every explorer page (or why there is none), its rows, its size and the saved model."""
    rows: list[list[Cell]] = []
    for ds, per_model in (results.get("explorer") or {}).items():
        for m, e in (per_model or {}).items():
            page = links.get(ds, {}).get(m)
            shown = f"{e['samples']} of {e['of']}" if "samples" in e else "—"
            size = f"{e['bytes'] / 1e6:.2f} MB" if "bytes" in e else "—"
            rows.append([dataset_label(results, ds), model_label(results, m),
                         Text("index.html", href=page) if page
                         else e.get("missing", "page not found"),
                         shown, size, e.get("model_dir", "—")])
    return ["data set", "model", "explorer page", "test rows shown", "size", "saved model"], rows


# ---------------------------------------------------------------------------------- details

def _sittings_rows(results: dict) -> list[tuple[str, str]]:
    """The whole run's account: its sittings and the seconds its cells took, over all of
    them (a report's own sitting may have fitted nothing)."""
    rows = []
    sittings = results.get("sittings") or []
    if sittings:
        first = sittings[0].get("started") or "not recorded"
        rows.append(("sittings", f"{len(sittings)}, the first started {first}: "
                     + "; ".join(str(s.get("command")) for s in sittings)))
    if results.get("cell_seconds"):
        s = float(results["cell_seconds"])
        rows.append(("cell time (every finished cell)", f"{s:.1f} s ({s / 3600:.2f} h)"))
    return rows


def run_info(results: dict) -> list[list[Cell]]:
    machine = results.get("machine") or {}
    mach = ", ".join(f"{k}: {fmt_value(v)}" for k, v in machine.items()) or "—"
    secs = results.get("seconds")
    secs_txt = "—" if secs is None else f"{float(secs):.1f} s ({float(secs) / 60:.1f} min)"
    rows = [
        ("command (this report's)", str(results.get("command") or "—")),
        *_sittings_rows(results),
        ("psae version", str(results.get("psae_version") or "—")),
        ("machine", mach),
        ("started (this report's sitting)", str(results.get("started") or "—")),
        ("finished", str(results.get("finished") or "not finished (partial results)")),
        ("wall time (this report's sitting)", secs_txt),
        ("seeds", fmt_value(results.get("seeds"))),
        ("models", ", ".join(model_label(results, m) for m in results.get("models") or [])),
        ("L0 threshold", fmt_value(results.get("threshold"))),
        ("quick (cut-down) run", "yes" if results.get("quick") else "no"),
    ]
    return [list(r) for r in rows]


_DESC_KEYS = ("label", "source", "sha256", "shape", "n_features", "n_train", "n_val", "n_test",
              "classes", "label_column", "splits", "selection", "CA", "note", "reader_notes")
_NOT_DESC = ("protocol", "grid", "labels")


def dataset_tables(results: dict, ds: str, paper: bool = True
                   ) -> list[tuple[str, list[str], list[list[Cell]]]]:
    """(name, headers, rows) of a data set's description, protocol and validation grid; without
    ``paper`` (a matched-only run), the matched protocol's settings instead of the paper
    protocol's and its grid."""
    info = (results.get("datasets") or {}).get(ds) or {}
    tables = []
    keys = _DESC_KEYS if paper else tuple(k for k in _DESC_KEYS if k != "selection")
    desc = [[k, fmt_value(info[k])] for k in keys if info.get(k) not in ("", None)]
    desc += [[k, fmt_value(v)] for k, v in info.items()
             if k not in (*_DESC_KEYS, *_NOT_DESC) and v not in ("", None)]
    if desc:
        tables.append(("Data", ["field", "value"], desc))
    # with --protocol both as well: its epochs, cap and targets are the matched cells' own
    matched = (results.get("matched_protocol") or {}).get(ds) or {}
    if matched:
        tables.append(("Matched protocol", ["parameter", "value"],
                       [[str(k), fmt_value(v)] for k, v in matched.items()]))
    if not paper:
        return tables
    proto = info.get("protocol") or {}
    if isinstance(proto, dict) and proto:
        tables.append(("Protocol", ["parameter", "value"],
                       [[str(k), fmt_value(v)] for k, v in proto.items()]))
    grid = info.get("grid") or {}
    if isinstance(grid, dict) and grid:
        rows = []
        for m, pts in grid.items():
            pts = pts if isinstance(pts, list) else [pts]
            txt = "; ".join(f"[{i}] {fmt_params(p)}" for i, p in enumerate(pts))
            rows.append([model_label(results, m), str(len(pts)), txt])
        tables.append(("Validation grid", ["model", "points", "grid points"], rows))
    return tables
