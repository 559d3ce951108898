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

import torch

from .._version import __version__
from ..errors import ParameterError
from ..measures import VIEWS
from .labels import label_of
from .paper.settings import grid_for

__all__ = ["gather", "to_csv", "csv_fields"]


def csv_fields() -> list[str]:
    """The CSV's columns: the cell's identity, its measures (the ``csv`` view), its cost."""
    return ["kind", "dataset", "model", "point", "seed", "selected", "params",
            *VIEWS["csv"], "fit_seconds", "n_epochs"]


def _grid(model: str, quick: bool, n_components: int) -> list[dict]:
    """The paper grid's points a layer of ``n_components`` can take (none: a matched run's
    TopK may have a layer narrower than every point, which no paper cell then fitted)."""
    try:
        return grid_for(model, quick, n_components)
    except ParameterError:
        return []


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
        # the points this data set's hidden size can take, as its cells were fitted
        "grid": {m: _grid(m, cfg.quick, proto.n_components) for m in cfg.models},
        "note": proto.note,
    }
    if name in cfg.user:
        info.update(cfg.user[name].describe())
    if not sp.labelled:
        info["CA"] = "not computed: no labels"
    return info


def _machine(cfg) -> dict:
    """Where the run ran (``jobs`` > 1: ``threads`` shared out among the worker processes)."""
    return {"cores": os.cpu_count(), "device": str(cfg.device), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "jobs": cfg.jobs,
            "platform": platform.platform(), "python": sys.version.split()[0]}


def gather(cfg, splits: dict, cells: dict, seeds: list[int], threshold: float, started: str,
           seconds: float, protocols: list) -> dict:
    """The results dict of a finished run (``results.json`` before claims, figures and
    pages): the run's account, then each of ``protocols``' part from its own cells (every
    protocol that fits cells: each says what it keeps in a run without it). A part may not
    replace the account or another protocol's keys."""
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
        "datasets": {name: _ds_info(cfg, name, splits[name]) for name in cfg.names},
        "threshold": threshold,
    }
    # the paper's part before the run's protocol name, as results.json has always had them
    for p in sorted(protocols, key=lambda p: p.name != "paper"):
        rows = [c for c in cells.values() if c["kind"] in p.cells.kinds]
        _merge(out, p.cells.gather(cfg, rows), f"the {p.name} protocol's results")
        out.setdefault("protocol", cfg.protocol_name)
    out.setdefault("protocol", cfg.protocol_name)
    return out


def _merge(into: dict, part: dict, what: str) -> None:
    """``into`` updated with ``part``, refusing a key ``into`` holds already."""
    if clash := sorted(set(into) & set(part)):
        raise ValueError(f"{what} would replace {', '.join(clash)}")
    into.update(part)


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
