"""The cells of one run, as the runner holds them: the splits, normalised once; finished cells
taken from disk; one cell's fit, scores and files. What a cell *is* (its model, its key, the
scores it keeps beyond these) is its protocol's (``CellRules`` in ``protocol.py``)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import metrics
from ..errors import FitFailedError
from ..io.atomic import atomic_write
from ..preprocessing import Normalizer
from .cells import Planned, cell_arrays, failed_scores, save_npz, score
from .data import Splits
from .pages import save_final_model

__all__ = ["Cells", "Fitted", "NotRun"]

log = logging.getLogger("psae.reproduce")


class NotRun(Exception):
    """A cell that is not on disk, under ``report_only``."""


class Fitted(NamedTuple):
    """A fitted cell's model, its scores on the evaluation rows and the data it saw."""

    est: object
    scores: dict
    H: np.ndarray
    normalizer: Normalizer
    X_train: np.ndarray
    y_train: np.ndarray | None
    X_eval: np.ndarray
    y_eval: np.ndarray | None


class Cells:
    """The cells of one run (``cfg`` a ``RunConfig``): ``done`` holds every finished one by
    its key; each protocol's ``CellRules.run`` builds its cells with these methods."""

    def __init__(self, cfg, splits: dict[str, Splits], seeds: list[int]):
        self.cfg, self.splits, self.seeds = cfg, splits, seeds
        self.threshold = metrics.DEFAULT_THRESHOLD
        self.done: dict[str, dict] = {}
        self._normalized: dict[tuple, tuple] = {}
        self._rules = {kind: p.cells for p in cfg.protocols for kind in p.cells.kinds}

    def plan(self) -> list[Planned]:
        """Every protocol's cells, in the order ``cfg.protocols`` names them (for ``both``:
        the paper's, then the matched ones)."""
        return [c for p in self.cfg.protocols for c in p.cells.plan(self)]

    def estimator(self, planned: Planned):
        """A planned cell's unfitted model (None where its protocol cannot say yet)."""
        return self._rules[planned.kind].estimator(self, planned)

    def run(self, planned: Planned) -> str:
        """Run one cell (or take it from disk) and return its key."""
        return self._rules[planned.kind].run(self, planned)

    def rules_of(self, kind: str):
        """The ``CellRules`` of the protocol whose cells have ``kind``."""
        return self._rules[kind]

    def path(self, key: str) -> Path:
        return self.cfg.out / "cells" / f"{key}.json"

    def normalized(self, name: str, on: str) -> tuple:
        """(normalizer, X_train, y_train, X_eval, y_eval) of data set ``name``: fitted on the
        grid-fit rows and scored on validation (``on="val"``), or fitted on the whole training
        split and scored on test (``on="test"``)."""
        key = (name, on)
        if key not in self._normalized:
            sp = self.splits[name]
            Xtr, ytr, Xev, yev = ((sp.X_fit, sp.y_fit, sp.X_val, sp.y_val) if on == "val"
                                  else (sp.X_train, sp.y_train, sp.X_test, sp.y_test))
            nz = Normalizer().fit(Xtr)
            self._normalized[key] = (nz, nz.transform(Xtr), ytr, nz.transform(Xev), yev)
        return self._normalized[key]

    def resumed(self, key: str, params: dict, seed: int) -> bool:
        """Whether cell ``key`` is on disk, made with ``params`` and ``seed`` (then it is
        taken into ``done``); a damaged one, or one from other settings, is run again."""
        path = self.path(key)
        if not path.exists():
            return False
        try:
            cell = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # unreadable, not UTF-8, not JSON
            cell = None
        if isinstance(cell, dict) and cell.get("params") == params and cell.get("seed") == seed:
            self.done[key] = cell
            log.info("resume: %s already done, skipped", key)
            return True
        log.warning("%s is damaged or from other settings: running the cell again", path)
        return False

    def fit(self, cell: dict, key: str, est, on: str) -> Fitted | None:
        """Fit ``est`` and score it on ``on`` ("val" or "test"); the timings go into
        ``cell``. A fit that diverges leaves its error and NaN scores in ``cell`` and gives
        None."""
        if self.cfg.report_only:
            raise NotRun(key)
        nz, Xtr, ytr, Xev, yev = self.normalized(cell["dataset"], on)
        t0 = time.perf_counter()
        try:
            est.fit(Xtr)
            fit_seconds = time.perf_counter() - t0
            scores, H = score(est, Xtr, ytr, Xev, yev, self.threshold)
        except FitFailedError as e:
            log.warning("%s diverged: %s", key, e)
            cell.update(error=str(e), fit_seconds=time.perf_counter() - t0, n_epochs=0,
                        seconds=time.perf_counter() - t0, history=[])
            cell[on] = failed_scores("grid" if on == "val" else "test", self.threshold,
                                     self.splits[cell["dataset"]].labelled)
            return None
        cell.update(fit_seconds=fit_seconds, n_epochs=est.n_iter_,
                    seconds=time.perf_counter() - t0)
        return Fitted(est, scores, H, nz, Xtr, ytr, Xev, yev)

    def keep_val(self, cell: dict, fitted: Fitted) -> None:
        """A validation cell keeps its flat scores only."""
        cell["val"] = {k: v for k, v in fitted.scores.items() if k != "L0"}

    def keep_test(self, cell: dict, key: str, fitted: Fitted, model: str | None = None,
                  extra: Callable[[Fitted], dict] | None = None) -> None:
        """A test cell keeps its scores, its history and the arrays its figures need
        (``cells/<key>.npz``); ``model``: also save the fitted model under that name in
        ``models/``; ``extra(fitted)``: more entries for ``cell``, computed before the arrays
        are written."""
        cell["test"] = {k: v for k, v in fitted.scores.items()
                        if k not in ("L0_mean", "L0_std")}
        cell["history"] = fitted.est.history_
        if model is not None:
            save_final_model(self.cfg.out, cell["dataset"], model, fitted.normalizer,
                             fitted.est, {"reproduce": key, "params": cell["params"]})
        if extra is not None:
            cell.update(extra(fitted))
        cell["arrays"] = f"cells/{key}.npz"
        save_npz(self.cfg.out / cell["arrays"],
                 cell_arrays(fitted.est, fitted.H, fitted.X_eval, self.threshold))

    def write(self, cell: dict, key: str) -> str:
        """Log a fitted cell's scores, write it (atomically: a cell on disk is finished) and
        keep it in ``done``."""
        if "error" not in cell:
            log.info("%s: %s in %.1fs", key, json.dumps(cell.get("val") or cell["test"]),
                     cell["seconds"])
        atomic_write(self.path(key), json.dumps(cell))
        self.done[key] = cell
        return key
