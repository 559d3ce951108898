"""From finished cells to ``results.json`` and ``results.csv``: summaries over seeds and the
account of every data set (sizes, splits, protocol, grid, and for user files path and SHA-256).
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import sys
from datetime import datetime, timezone

import numpy as np
import torch

from .._version import __version__
from ..measures import VIEWS
from .labels import label_of
from .paper.settings import grid_for

__all__ = ["gather", "to_csv", "matched_summary", "csv_fields"]


def csv_fields() -> list[str]:
    """The CSV's columns: the cell's identity, its measures (the ``csv`` view), its cost."""
    return ["kind", "dataset", "model", "point", "seed", "selected", "params",
            *VIEWS["csv"], "fit_seconds", "n_epochs"]


def _stat(values: list) -> dict:
    """Mean and population std over seeds; a measure never computed (CA without labels) has
    mean None and n 0, while a failed fit's NaN stays in and shows."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if not v.size:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(v.size)}


def _summary(names: list[str], models: list[str], final_rows: list[dict]) -> dict:
    summary: dict = {}
    for name in names:
        summary[name] = {}
        for m in models:
            rows = [c["test"] for c in final_rows if c["dataset"] == name and c["model"] == m]
            entry = {k: _stat([r.get(k) for r in rows]) for k in VIEWS["summary"]}
            for k in ("mean", "std"):
                entry[f"L0_{k}"] = _stat([r["L0"][k] for r in rows])
            summary[name][m] = entry
    return summary


def _ds_info(cfg, name: str, sp) -> dict:
    proto = cfg.protocol(name)
    info = {
        "label": sp.label, "shape": list(sp.shape) if sp.shape else None,
        "n_train": int(len(sp.X_train)), "n_test": int(len(sp.X_test)),
        "n_val": int(len(sp.X_val)), "n_grid_train": int(len(sp.X_fit)),
        "n_features": int(sp.X_train.shape[1]),
        "classes": ", ".join(sp.classes) if sp.classes else "none (no labels)",
        "labels": sp.labelled,
        "splits": "; ".join(sp.notes),
        "selection": "validation CA" if sp.labelled
        else "validation RE (the data have no labels, so CA cannot choose)",
        "protocol": proto.as_dict(),
        "grid": {m: grid_for(m, cfg.quick) for m in cfg.models},
        "note": proto.note,
    }
    if name in cfg.user:
        info.update(cfg.user[name].describe())
    if not sp.labelled:
        info["CA"] = "not computed: no labels"
    return info


def _machine(cfg) -> dict:
    return {"cores": os.cpu_count(), "device": str(cfg.device), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "platform": platform.platform(),
            "python": sys.version.split()[0]}


def gather(cfg, splits: dict, cells: dict, seeds: list[int], threshold: float, started: str,
           seconds: float) -> dict:
    """The results dict of a finished run (``results.json`` before figures and pages)."""
    grid_rows = [c for c in cells.values() if c["kind"] == "grid"]
    final_rows = [c for c in cells.values() if c["kind"] == "final"]
    matched_rows = [c for c in cells.values() if c["kind"] == "matched"]
    chosen = {(c["dataset"], c["model"]): c["point"] for c in final_rows}
    for c in grid_rows:
        c["selected"] = chosen.get((c["dataset"], c["model"])) == c["point"]
    names = cfg.names
    order = {(d, m): (i, j) for i, d in enumerate(names) for j, m in enumerate(cfg.models)}

    def sort_key(c):
        return (order[(c["dataset"], c["model"])], c["point"], c["seed"])

    out = {
        "psae_version": __version__,
        "command": cfg.command,
        "started": started,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": seconds,
        "quick": cfg.quick,
        "machine": _machine(cfg),
        "seeds": seeds,
        "models": list(cfg.models),
        "model_labels": {m: label_of(m) for m in cfg.models},
        "datasets": {name: _ds_info(cfg, name, splits[name]) for name in names},
        "threshold": threshold,
        "grid": sorted(grid_rows, key=sort_key),
        "final": sorted(final_rows, key=sort_key),
        "summary": _summary(names, cfg.models, final_rows),
        "protocol": cfg.protocol_name,
    }
    if matched_rows:
        out["matched"] = sorted(matched_rows, key=lambda c: (
            order[(c["dataset"], c["model"])], c["point"] or 0, c["seed"]))
        out["matched_summary"] = matched_summary(out["matched"])
        out["matched_protocol"] = {n: cfg.matched_protocol(n).as_dict() for n in names}
    return out


def _group(cells: list[dict]) -> dict:
    """One model at one target over its seeds: each measure's stats, those of the raw codes
    (``raw_RE``, ...), the atom stability over every pair of seeds, and seed 0's sweep."""
    tests = [c["test"] for c in cells]
    out = {k: _stat([r.get(k) for r in tests]) for k in VIEWS["matched_summary"]}
    out["L0_mean"] = _stat([r["L0"]["mean"] for r in tests])
    out["L0_std"] = _stat([r["L0"]["std"] for r in tests])
    raws = [c["test_raw"] for c in cells if c.get("test_raw")]
    if raws:
        out.update({f"raw_{k}": _stat([r.get(k) for r in raws]) for k in VIEWS["raw"]})
    out["stability"] = _stat([v for c in cells for v in (c.get("stability") or {}).values()])
    first = min(cells, key=lambda c: c["seed"])
    if first.get("sweep"):
        out["sweep"] = first["sweep"]
    return out


def matched_summary(rows: list[dict]) -> dict:
    """``[dataset][model][target]`` → each measure's mean/std/n over seeds, with the mean and
    the spread of per-sample L0 (target ``"dense"`` for RAE); see :func:`_group`."""
    groups: dict = {}
    for c in rows:
        if "test" not in c:
            continue
        key = str(c["point"]) if c["point"] is not None else "dense"
        groups.setdefault(c["dataset"], {}).setdefault(c["model"], {}).setdefault(
            key, []).append(c)
    return {ds: {m: {t: _group(cells) for t, cells in by_t.items()} for m, by_t in by_m.items()}
            for ds, by_m in groups.items()}


def _csv_scores(c: dict) -> dict:
    if "val" in c:
        return c["val"]
    t = c["test"]
    return dict(t, L0_mean=t["L0"]["mean"], L0_std=t["L0"]["std"])


def to_csv(results: dict) -> str:
    """One row per cell (grid points, then final fits); CA is empty where not computed."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=csv_fields())
    w.writeheader()
    for c in results["grid"] + results["final"] + results.get("matched", []):
        if "test" not in c and "val" not in c:
            continue
        s = _csv_scores(c)
        w.writerow({"kind": c["kind"], "dataset": c["dataset"], "model": c["model"],
                    "point": c["point"], "seed": c["seed"], "selected": c.get("selected", ""),
                    "params": json.dumps(c["params"]), **{k: s.get(k) for k in VIEWS["csv"]},
                    "fit_seconds": round(c["fit_seconds"], 3), "n_epochs": c["n_epochs"]})
    return buf.getvalue()
