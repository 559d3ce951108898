"""The paper protocol's tables (see :mod:`..markup`): results per data set, claim verdicts and
the hyperparameters validation chose."""

from __future__ import annotations

import math

from ...measures import MEASURES, VIEWS
from ..labels import dataset_keys, dataset_label, model_label
from ..markup import Cell, Text
from ..stats import mean_std
from ..tables import fmt_params, fmt_value, held_text, models_for
from .claims import metric_stats

__all__ = ["results_table", "zero_code_note", "claims_table", "selected_table", "grid_edges"]


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
        rows.append([r["claim"], dataset_label(results, r["dataset"]), held_text(r["held"]),
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
                         fmt_params(params), fmt_value(sel[0].get("point") if sel else None),
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
