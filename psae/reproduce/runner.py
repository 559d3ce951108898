"""Runs the Fig. 2 protocol cell by cell, resumably, and gathers ``results.json``.

A cell is one fit: (data set, model, grid point, seed) scored on the validation split, or
(data set, model, "final", seed) retrained on the full training set and scored on the test set.
Each finished cell is written atomically to ``out/cells/`` (its arrays first, its JSON last), so a
killed run resumed with the same settings repeats no finished cell.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from .. import metrics
from .._version import __version__
from ..errors import FitFailedError, ParameterError, PsaeError
from ..estimator import SparseAutoencoder
from ..fileio import atomic_write
from ..preprocessing import Normalizer
from .protocol import (
    DATASET_LABELS,
    DataProtocol,
    grid_for,
    label_of,
    models,
    penalty_of,
    protocol_for,
)

__all__ = ["RunConfig", "run", "ResumeMismatchError"]

log = logging.getLogger("psae.reproduce")
N_FILTERS = 64
N_RECONS = 8


class ResumeMismatchError(PsaeError, ValueError):
    """``--resume`` was asked for a run directory made with different settings."""


@dataclass
class RunConfig:
    """What to run: data sets, models, seeds, where to read data and write results."""

    datasets: list[str]
    models: list[str]
    out: Path
    seeds: int = 3
    data_dir: str | None = None
    quick: bool = False
    device: str = "auto"
    resume: bool = False
    progress: bool = True
    command: str = ""
    overrides: dict = field(default_factory=dict)
    threads: int | str = "auto"  # CPU threads of every fit; not in the fingerprint (bits only)

    def __post_init__(self):
        self.out = Path(self.out)
        from .protocol import DATASETS

        bad = [d for d in self.datasets if d not in DATASETS]
        if bad or not self.datasets:
            raise ParameterError(f"unknown data set(s) {', '.join(bad) or '(none)'}; "
                             f"choose from {', '.join(DATASETS)}")
        bad = [m for m in self.models if m not in models()]
        if bad or not self.models:
            raise ParameterError(f"unknown model(s) {', '.join(bad) or '(none)'}; "
                             f"choose from {', '.join(models())}")
        if self.seeds < 1:
            raise ParameterError(f"--seeds must be >= 1, got {self.seeds}")

    def protocol(self, dataset: str) -> DataProtocol:
        return protocol_for(dataset, self.quick, **self.overrides)

    def fingerprint(self) -> dict:
        """Everything that decides a cell's result: a resumed run must match it."""
        return {
            "psae_version": __version__,
            "quick": self.quick,
            "seeds": self.seeds,
            "device": self.device,
            "protocols": {d: self.protocol(d).as_dict() for d in self.datasets},
            "grids": {m: grid_for(m, self.quick) for m in self.models},
        }


# ------------------------------------------------------------------------------------- data
@dataclass
class Splits:
    label: str
    shape: tuple | None
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    X_fit: np.ndarray  # grid-train part
    y_fit: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray


def _subset(X, y, n, seed=0):
    if n is None or n >= len(y):
        return X, y
    Xs, _, ys, _ = train_test_split(X, y, train_size=n, stratify=y, random_state=seed)
    return Xs, ys


def load_splits(name: str, proto: DataProtocol, data_dir: str | None) -> Splits:
    """Raw data → final train/test (subsets where the protocol says) and the grid's fit/val."""
    from .. import datasets

    ds = datasets.load(name, root=data_dir, grayscale=proto.grayscale)
    X_train, y_train = _subset(ds.X_train, ds.y_train, proto.train_limit)
    X_test, y_test = _subset(ds.X_test, ds.y_test, proto.test_limit)
    X_rest, X_val, y_rest, y_val = train_test_split(
        X_train, y_train, test_size=proto.n_val, stratify=y_train, random_state=0)
    X_fit, y_fit = _subset(X_rest, y_rest, proto.grid_train)
    return Splits(DATASET_LABELS.get(name, name), tuple(ds.shape) if ds.shape else None,
                  X_train, y_train, X_test, y_test, X_fit, y_fit, X_val, y_val)


# ------------------------------------------------------------------------------------- cells
def _model(model: str, params: dict, proto: DataProtocol, seed: int, cfg: RunConfig):
    kw = dict(params)
    if "sigmas" in kw:
        kw["sigmas"] = tuple(kw["sigmas"])
    return SparseAutoencoder(n_components=proto.n_components, penalty=penalty_of(model),
                             epochs=proto.epochs, batch_size=proto.batch_size,
                             device=cfg.device, threads=cfg.threads, random_state=seed, **kw)


SCORE_KEYS = ("RE", "S", "SSD", "CA", "zero_codes", "L0", "L0_mean", "dead_units")


def _score(est, Xtr, ytr, Xev, yev, threshold) -> tuple[dict, np.ndarray]:
    H = est.transform(Xev)
    scores = metrics.evaluate(Xev, H, est.inverse_transform(H), H_train=est.transform(Xtr),
                              y_train=ytr, y=yev, threshold=threshold)
    return {k: scores[k] for k in SCORE_KEYS}, H


def _failed_scores(kind: str, threshold: float) -> dict:
    nan = float("nan")
    scores = {"RE": nan, "S": nan, "SSD": nan, "CA": nan, "zero_codes": nan, "dead_units": nan}
    if kind == "grid":
        return dict(scores, L0_mean=nan)
    return dict(scores, L0={"mean": nan, "std": nan, "min": nan, "max": nan,
                            "threshold": threshold})


def _cell_arrays(est, H, X, threshold) -> dict[str, np.ndarray]:
    active = (np.abs(H) > threshold).mean(axis=0)
    top = np.argsort(-active, kind="stable")[:N_FILTERS]
    inputs = X[:N_RECONS]
    return {
        "S": metrics.hoyer_sparseness(H),
        "L0": metrics.l0_counts(H, threshold).astype(np.int64),
        "filters": est.components_[top].astype(np.float32),
        "inputs": inputs.astype(np.float32),
        "recons": est.inverse_transform(est.transform(inputs)).astype(np.float32),
    }


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write(path, buf.getvalue())


# ------------------------------------------------------------------------------------- run
def _setup_logging(out: Path) -> logging.Handler:
    handler = logging.FileHandler(out / "log.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _check_resume(cfg: RunConfig) -> None:
    run_file = cfg.out / "run.json"
    fp = cfg.fingerprint()
    has_cells = any((cfg.out / "cells").glob("*.json"))
    if has_cells and not run_file.exists():
        raise ResumeMismatchError(
            f"{cfg.out} holds finished cells but no run.json saying how they were made; "
            "choose another --out")
    if run_file.exists():
        old = json.loads(run_file.read_text())
        if not cfg.resume:
            if has_cells:
                raise ResumeMismatchError(
                    f"{cfg.out} already holds a run; pass --resume to continue it or choose "
                    "another --out")
        elif old.get("fingerprint") != fp:
            raise ResumeMismatchError(
                f"{cfg.out} was started with different settings (protocol, grids, seeds or "
                "version); resume it with the same options or choose another --out")
    atomic_write(run_file, json.dumps({"fingerprint": fp, "command": cfg.command}, indent=1))


def _cost(proto: DataProtocol, n: int, d: int) -> float:
    return n * d * proto.n_components * proto.epochs


def run(cfg: RunConfig) -> dict:
    """Run every cell that is not finished yet, then write results, figures and the report."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "cells").mkdir(exist_ok=True)
    handler = _setup_logging(cfg.out)
    try:
        _check_resume(cfg)
        return _run(cfg)
    finally:
        log.removeHandler(handler)
        handler.close()


def _run(cfg: RunConfig) -> dict:
    t_start = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    seeds = list(range(cfg.seeds))
    threshold = metrics.DEFAULT_THRESHOLD
    log.info("psae %s reproduce: %s", __version__, cfg.command)
    splits = {}
    for name in cfg.datasets:
        log.info("loading %s", name)
        splits[name] = load_splits(name, cfg.protocol(name), cfg.data_dir)

    plan = []  # (dataset, model, kind, point, seed, cost)
    for name in cfg.datasets:
        proto, sp = cfg.protocol(name), splits[name]
        d = sp.X_train.shape[1]
        for m in cfg.models:
            for p, _ in enumerate(grid_for(m, cfg.quick)):
                plan.append((name, m, "grid", p, seeds[0], _cost(proto, len(sp.y_fit), d)))
        for m in cfg.models:
            for s in seeds:
                plan.append((name, m, "final", None, s, _cost(proto, len(sp.y_train), d)))
    bar = tqdm(total=sum(c[-1] for c in plan), disable=not cfg.progress, desc="reproduce",
               unit="", unit_scale=True, bar_format="{l_bar}{bar}| {percentage:3.0f}% "
               "[{elapsed}<{remaining}] {postfix}")

    cells: dict[str, dict] = {}
    normalizers: dict[tuple, tuple] = {}

    def normalized(name: str, kind: str):
        key = (name, kind)
        if key not in normalizers:
            sp = splits[name]
            if kind == "grid":
                nz = Normalizer().fit(sp.X_fit)
                normalizers[key] = (nz.transform(sp.X_fit), sp.y_fit, nz.transform(sp.X_val),
                                    sp.y_val)
            else:
                nz = Normalizer().fit(sp.X_train)
                normalizers[key] = (nz.transform(sp.X_train), sp.y_train,
                                    nz.transform(sp.X_test), sp.y_test)
        return normalizers[key]

    def selected_point(name: str, model: str) -> int:
        grid = [c for c in cells.values()
                if c["kind"] == "grid" and c["dataset"] == name and c["model"] == model]
        ok = [c for c in grid if np.isfinite(c["val"]["CA"])]
        if not ok:  # every point diverged: keep the first so the failure shows in the table
            return 0
        return max(ok, key=lambda c: (c["val"]["CA"], -c["point"]))["point"]

    for name, model, kind, point, seed, cost in plan:
        if kind == "final":
            point = selected_point(name, model)
        key = f"{name}__{model}__{kind}{point}__seed{seed}"
        path = cfg.out / "cells" / f"{key}.json"
        bar.set_postfix_str(key)
        params = grid_for(model, cfg.quick)[point]
        if path.exists():
            try:
                cell = json.loads(path.read_text())
            except json.JSONDecodeError:
                cell = None
            if cell is not None and cell.get("params") == params and cell.get("seed") == seed:
                cells[key] = cell
                log.info("resume: %s already done, skipped", key)
                bar.update(cost)
                continue
            log.warning("%s is damaged or from other settings: running the cell again", path)
        proto = cfg.protocol(name)
        Xtr, ytr, Xev, yev = normalized(name, kind)
        est = _model(model, params, proto, seed, cfg)
        t0 = time.perf_counter()
        cell = {"dataset": name, "model": model, "kind": kind, "point": point, "seed": seed,
                "params": params}
        try:
            est.fit(Xtr)
            fit_seconds = time.perf_counter() - t0
            scores, H = _score(est, Xtr, ytr, Xev, yev, threshold)
        except FitFailedError as e:
            log.warning("%s diverged: %s", key, e)
            cell.update(error=str(e), fit_seconds=time.perf_counter() - t0, n_epochs=0,
                        seconds=time.perf_counter() - t0, history=[])
            cell["val" if kind == "grid" else "test"] = _failed_scores(kind, threshold)
            atomic_write(path, json.dumps(cell))
            cells[key] = cell
            bar.update(cost)
            continue
        cell.update(fit_seconds=fit_seconds, n_epochs=est.n_iter_,
                    seconds=time.perf_counter() - t0)
        if kind == "grid":
            cell["val"] = {k: v for k, v in scores.items() if k != "L0"}
        else:
            cell["test"] = {k: v for k, v in scores.items() if k != "L0_mean"}
            cell["history"] = est.history_
            cell["arrays"] = f"cells/{key}.npz"
            _save_npz(cfg.out / cell["arrays"], _cell_arrays(est, H, Xev, threshold))
        atomic_write(path, json.dumps(cell))
        cells[key] = cell
        log.info("%s: %s in %.1fs", key, json.dumps(cell.get("val") or cell["test"]),
                 cell["seconds"])
        bar.update(cost)
    bar.close()

    results = _gather(cfg, splits, cells, seeds, threshold, started,
                      time.perf_counter() - t_start)
    _write_outputs(cfg.out, results)
    log.info("done in %.1fs", results["seconds"])
    return results


def _gather(cfg, splits, cells, seeds, threshold, started, seconds) -> dict:
    grid_rows, final_rows = [], []
    for c in cells.values():
        (grid_rows if c["kind"] == "grid" else final_rows).append(c)
    chosen = {(c["dataset"], c["model"]): c["point"] for c in final_rows}
    for c in grid_rows:
        c["selected"] = chosen.get((c["dataset"], c["model"])) == c["point"]
    summary: dict = {}
    for name in cfg.datasets:
        summary[name] = {}
        for m in cfg.models:
            rows = [c["test"] for c in final_rows if c["dataset"] == name and c["model"] == m]
            summary[name][m] = {}
            for k in ("RE", "S", "SSD", "CA", "dead_units", "zero_codes"):
                v = np.array([r[k] for r in rows], dtype=float)
                summary[name][m][k] = {"mean": float(v.mean()), "std": float(v.std()),
                                       "n": int(v.size)}
            v = np.array([r["L0"]["mean"] for r in rows], dtype=float)
            summary[name][m]["L0_mean"] = {"mean": float(v.mean()), "std": float(v.std()),
                                           "n": int(v.size)}
    ds_info = {}
    for name in cfg.datasets:
        sp, proto = splits[name], cfg.protocol(name)
        ds_info[name] = {
            "label": sp.label, "shape": list(sp.shape) if sp.shape else None,
            "n_train": int(len(sp.y_train)), "n_test": int(len(sp.y_test)),
            "n_val": int(len(sp.y_val)), "n_grid_train": int(len(sp.y_fit)),
            "n_features": int(sp.X_train.shape[1]),
            "protocol": proto.as_dict(),
            "grid": {m: grid_for(m, cfg.quick) for m in cfg.models},
            "note": proto.note,
        }
    order = {(d, m): (i, j) for i, d in enumerate(cfg.datasets) for j, m in enumerate(cfg.models)}

    def sort_key(c):
        return (order[(c["dataset"], c["model"])], c["point"], c["seed"])

    return {
        "psae_version": __version__,
        "command": cfg.command,
        "started": started,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": seconds,
        "quick": cfg.quick,
        "machine": {"cores": os.cpu_count(), "device": str(cfg.device),
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "platform": platform.platform(), "python": sys.version.split()[0]},
        "seeds": seeds,
        "models": list(cfg.models),
        "model_labels": {m: label_of(m) for m in cfg.models},
        "datasets": ds_info,
        "threshold": threshold,
        "grid": sorted(grid_rows, key=sort_key),
        "final": sorted(final_rows, key=sort_key),
        "summary": summary,
    }


CSV_FIELDS = ["kind", "dataset", "model", "point", "seed", "selected", "params", "RE", "S",
              "SSD", "CA", "L0_mean", "dead_units", "zero_codes", "fit_seconds", "n_epochs"]


def _csv(results: dict) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    w.writeheader()
    for c in results["grid"] + results["final"]:
        s = c.get("val") or dict(c["test"], L0_mean=c["test"]["L0"]["mean"])
        w.writerow({"kind": c["kind"], "dataset": c["dataset"], "model": c["model"],
                    "point": c["point"], "seed": c["seed"], "selected": c.get("selected", ""),
                    "params": json.dumps(c["params"]), **{k: s[k] for k in CSV_FIELDS[7:14]},
                    "fit_seconds": round(c["fit_seconds"], 3), "n_epochs": c["n_epochs"]})
    return buf.getvalue()


def _write_outputs(out: Path, results: dict) -> None:
    from .claims import evaluate_claims
    from .figures import make_figures
    from .report import write_report

    results["claims"] = evaluate_claims(results)
    atomic_write(out / "results.json", json.dumps(results, indent=1))
    atomic_write(out / "results.csv", _csv(results))
    figures = make_figures(results, out)
    results["figures"] = figures
    write_report(results, out, figures)
    atomic_write(out / "results.json", json.dumps(results, indent=1))
