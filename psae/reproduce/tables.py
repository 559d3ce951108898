"""The report's tables, as header lists and rows of cells (see :mod:`.markup`): results per
data set, claims, selected hyperparameters, explorer pages, run metadata and protocol."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..measures import MEASURES, VIEWS
from .claims import dataset_keys, dataset_label, metric_stats, model_label
from .markup import Cell, Text
from .stats import mean_std

__all__ = ["fmt_value", "models_for", "explorer_links", "results_table",
           "zero_code_note", "claims_table", "selected_table", "explorer_table", "run_info",
           "dataset_tables"]


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


def _fmt_params(params: Any) -> str:
    if not isinstance(params, dict):
        return fmt_value(params)
    if not params:
        return "(none)"
    return ", ".join(f"{k}={fmt_value(v)}" for k, v in params.items())


def _held_text(held: bool | None) -> str:
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

def results_table(results: dict, ds: str, links: dict[str, str] | None = None
                  ) -> tuple[list[str], list[list[Cell]]]:
    """Test measures per model (mean ± std over seeds), best per column in bold; each model
    links to its explorer page where there is one."""
    links = links or {}
    columns = VIEWS["paper_table"]
    models = [m for m in models_for(results, ds)
              if any(metric_stats(results, ds, m, c) for c in columns)]
    stats = {(m, c): metric_stats(results, ds, m, c) for m in models for c in columns}
    best = {}
    for c in columns:
        vals = [st[0] for m in models if (st := stats[m, c]) is not None]
        if vals and MEASURES[c].higher is not None:  # a measure without a direction: no best
            best[c] = max(vals) if MEASURES[c].higher else min(vals)
    rows: list[list[Cell]] = []
    for m in models:
        row: list[Cell] = [Text(model_label(results, m), href=links.get(m))]
        for c in columns:
            st = stats[m, c]
            row.append((mean_std(st), st is not None and st[0] == best.get(c)))
        n = max((st[2] for c in columns if (st := stats[m, c])), default=0)
        row.append(str(n))
        rows.append(row)
    return ["model"] + [MEASURES[c].title for c in columns] + ["seeds"], rows


def zero_code_note(results: dict, ds: str) -> str:
    parts = []
    for m in models_for(results, ds):
        counts = [int(z) for r in results.get("final") or []
                  if r.get("dataset") == ds and r.get("model") == m
                  and isinstance(z := (r.get("test") or {}).get("zero_codes"), (int, float))
                  and not (isinstance(z, float) and math.isnan(z))]
        if counts and any(counts):
            parts.append(f"{model_label(results, m)}: {counts}")
    return ("All-zero test codes per seed (left out of S and SSD): " + "; ".join(parts)
            if parts else "")


def claims_table(results: dict) -> tuple[list[str], list[list[Cell]]]:
    rows: list[list[Cell]] = []
    for r in results.get("claims") or []:
        rows.append([r["claim"], dataset_label(results, r["dataset"]), _held_text(r["held"]),
                     "yes" if r["clear"] else "no", r["detail"]])
    return ["claim", "data set", "held", "clear", "detail"], rows


def _selection_score(sel: list[dict], crit: str) -> str:
    vals = [float(v) for g in sel if isinstance(g.get("val"), dict)
            and isinstance(v := g["val"].get(crit), (int, float))]
    return f"{crit} {sum(vals) / len(vals):.4g}" if vals else "—"


def selected_table(results: dict) -> tuple[list[str], list[list[Cell]]]:
    """The grid point each (data set, model) kept, its validation score, epochs and cost."""
    rows: list[list[Cell]] = []
    for ds in dataset_keys(results):
        info = (results.get("datasets") or {}).get(ds) or {}
        crit = "CA" if info.get("labels", True) else "RE"
        for m in models_for(results, ds):
            runs = [r for r in results.get("final") or []
                    if r.get("dataset") == ds and r.get("model") == m]
            sel = [g for g in results.get("grid") or []
                   if g.get("dataset") == ds and g.get("model") == m and g.get("selected")]
            if not runs and not sel:
                continue
            params = runs[0].get("params") if runs else sel[0].get("params")
            epochs = sorted({r.get("n_epochs") for r in runs if r.get("n_epochs") is not None})
            secs = [float(r["fit_seconds"]) for r in runs
                    if isinstance(r.get("fit_seconds"), (int, float))]
            grid = ((info.get("grid") or {}).get(m)) or []
            rows.append([dataset_label(results, ds), model_label(results, m),
                         _fmt_params(params), fmt_value(sel[0].get("point") if sel else None),
                         _selection_score(sel, crit), ", ".join(str(e) for e in epochs) or "—",
                         f"{sum(secs) / len(secs):.1f}" if secs else "—",
                         "; ".join(grid_edges(grid, params or {})) or "—"])
    return ["data set", "model", "selected hyperparameters", "grid point",
            "validation score", "epochs", "fit s (mean)", "at the grid's edge"], rows


def grid_edges(grid: list[dict] | dict, params: dict) -> list[str]:
    """The parameters whose selected value is the smallest or largest of at least three the
    grid tried: the best may lie beyond it (on a new data set 6 of 8 models were chosen
    there, unremarked)."""
    grid = grid if isinstance(grid, list) else [grid]
    out = []
    for key in sorted({k for p in grid if isinstance(p, dict) for k in p}):
        values = sorted({p[key] for p in grid if isinstance(p, dict)
                         and isinstance(p.get(key), (int, float)) and not isinstance(
                             p.get(key), bool)})
        v = params.get(key)
        if len(values) >= 3 and v in (values[0], values[-1]):
            out.append(f"{key} = {v:g}, the grid's {'smallest' if v == values[0] else 'largest'}")
    return out


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

def run_info(results: dict) -> list[list[Cell]]:
    machine = results.get("machine") or {}
    mach = ", ".join(f"{k}: {fmt_value(v)}" for k, v in machine.items()) or "—"
    secs = results.get("seconds")
    secs_txt = "—" if secs is None else f"{float(secs):.1f} s ({float(secs) / 60:.1f} min)"
    rows = [
        ("command", str(results.get("command") or "—")),
        ("psae version", str(results.get("psae_version") or "—")),
        ("machine", mach),
        ("started", str(results.get("started") or "—")),
        ("finished", str(results.get("finished") or "not finished (partial results)")),
        ("wall time", secs_txt),
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
    if not paper:
        matched = (results.get("matched_protocol") or {}).get(ds) or {}
        if matched:
            tables.append(("Matched protocol", ["parameter", "value"],
                           [[str(k), fmt_value(v)] for k, v in matched.items()]))
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
            txt = "; ".join(f"[{i}] {_fmt_params(p)}" for i, p in enumerate(pts))
            rows.append([model_label(results, m), str(len(pts)), txt])
        tables.append(("Validation grid", ["model", "points", "grid points"], rows))
    return tables
