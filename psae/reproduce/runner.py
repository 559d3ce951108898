"""Runs the Fig. 2 protocol cell by cell, resumably, and gathers ``results.json``.

A cell is one fit: (data set, model, grid point, seed) scored on the validation split, or
(data set, model, "final", seed) retrained on the full training set and scored on the test set.
Each finished cell is written atomically to ``out/cells/`` (the seed-0 final model and its
arrays first, its JSON last), so a killed run resumed with the same settings repeats no
finished cell. Data sets are the named ones (``--datasets``) and user files (``--data``).
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tqdm.auto import tqdm

from .. import metrics
from .._version import __version__
from ..datasets import LabelColumn
from ..errors import FitFailedError, ParameterError, PsaeError
from ..estimator import SparseAutoencoder
from ..fileio import atomic_write
from ..ownership import adopt, check_output_dir, make_dirs, owns_file, record_file
from ..params import validate
from ..preprocessing import Normalizer
from .cells import (
    SELECTION,
    Planned,
    cell_arrays,
    cell_key,
    failed_scores,
    finite,
    load_atoms,
    make_model,
    raw_scores,
    save_atoms,
    save_npz,
    score,
    threshold_sweep,
)
from .code_key import training_code_key
from .data import Splits, UserData, load_splits, load_user_data, split_dataset
from .labels import models
from .matched.settings import MatchedProtocol, make_matched_model, matched_for, matched_models
from .pages import save_final_model, write_pages
from .paper.settings import DataProtocol, grid_for, protocol_for, protocol_for_data
from .recheck import finished_cells, pick, recheck, unchecked
from .results import gather, to_csv

__all__ = ["RunConfig", "run", "ResumeMismatchError"]

log = logging.getLogger("psae.reproduce")


class ResumeMismatchError(PsaeError, ValueError):
    """``--resume`` was asked for a run directory made with different settings."""


@dataclass
class RunConfig:
    """What to run: data sets (named and files), models, seeds, where to read and write.

    ``data`` paths are read (and hashed) when the config is made, so a file the readers
    refuse is an error before anything is written or trained.
    """

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
    data: list[str] = field(default_factory=list)
    label_column: LabelColumn = "auto"
    protocol_name: str = "paper"  # "paper", "matched" or "both"
    report_only: bool = False  # write results and report from the finished cells; train nothing
    force: bool = False  # write into a --out holding other files (never replacing them)
    recheck: bool = False  # resume under changed training code if it refits cells identically
    user: dict[str, UserData] = field(init=False, repr=False)

    def __post_init__(self):
        self.out = Path(self.out)
        from .paper.settings import DATASETS

        bad = [d for d in self.datasets if d not in DATASETS]
        if bad or not (self.datasets or self.data):
            raise ParameterError(f"unknown data set(s) {', '.join(bad) or '(none)'}; "
                                 f"choose from {', '.join(DATASETS)} or give --data PATH")
        bad = [m for m in self.models if m not in models()]
        if bad or not self.models:
            raise ParameterError(f"unknown model(s) {', '.join(bad) or '(none)'}; "
                                 f"choose from {', '.join(models())}")
        if self.seeds < 1:
            raise ParameterError(f"--seeds must be >= 1, got {self.seeds}")
        if self.report_only and not (self.out / "run.json").exists():
            raise ParameterError(f"--report-only needs a run in {self.out}: it has no run.json")
        self.resume = self.resume or self.report_only
        if self.protocol_name not in ("paper", "matched", "both"):
            raise ParameterError(f"--protocol must be paper, matched or both, got "
                                 f"{self.protocol_name!r}")
        users = load_user_data(self.data, self.label_column, self.data_dir)
        self.user = {u.key: u for u in users}

    @property
    def names(self) -> list[str]:
        """Every data set's key: the named ones, then the files."""
        return [*self.datasets, *self.user]

    def protocol(self, dataset: str) -> DataProtocol:
        if dataset in self.user:
            u = self.user[dataset]
            return protocol_for_data(u.n_train, u.dataset.n_features, self.quick,
                                     **self.overrides)
        return protocol_for(dataset, self.quick, **self.overrides)

    @property
    def paper(self) -> bool:
        return self.protocol_name in ("paper", "both")

    @property
    def matched(self) -> bool:
        return self.protocol_name in ("matched", "both")

    def matched_protocol(self, dataset: str) -> MatchedProtocol:
        width = self.user[dataset].dataset.n_features if dataset in self.user else None
        return matched_for(dataset, self.quick, width,
                           n_components=self.overrides.get("n_components"))

    def splits(self, dataset: str) -> Splits:
        """The rows of ``dataset`` as its protocol uses them."""
        if dataset in self.user:
            u = self.user[dataset]
            return split_dataset(u.dataset, self.protocol(dataset), Path(u.path).name)
        return load_splits(dataset, self.protocol(dataset), self.data_dir)

    def fingerprint(self) -> dict:
        """Everything that decides a cell's result: a resumed run must match it."""
        fp = {
            "psae_version": __version__,
            "training_code": training_code_key(),
            "quick": self.quick,
            "seeds": self.seeds,
            "device": self.device,
            "protocols": {d: self.protocol(d).as_dict() for d in self.names},
            "grids": {m: grid_for(m, self.quick) for m in self.models},
        }
        if self.user:  # only then: runs started before --data existed still resume
            fp["data"] = {k: u.fingerprint() for k, u in self.user.items()}
        if self.protocol_name != "paper":  # likewise for runs started before --protocol
            fp["protocol"] = self.protocol_name
            fp["matched"] = {d: self.matched_protocol(d).as_dict() for d in self.names}
            if not self.paper:
                fp.pop("grids")
        return fp


# ------------------------------------------------------------------------------------- resume
# what a run writes at the top of --out: a user's entry with one of these names is never
# replaced, even with --force
OUTPUTS = ("run.json", "log.txt", "results.json", "results.csv", "report.html", "report.md",
           "cells", "atoms", "figures", "models", "explore")
_LEGACY = ("run.json", "log.txt", "results.json", "results.csv", "report.html", "report.md",
           "cells/*.json", "cells/*.npz", "figures/*.png", "explore/*/index.html")


def _adopt_legacy_run(out: Path) -> None:
    """A run folder written before psae kept manifests (its run.json says so) has its known
    files recorded as psae's, so that it can be resumed or reported again. run.json is
    recorded last: a folder whose run.json is unrecorded was not adopted (or not fully)."""
    from ..ownership import MANIFEST

    if not (out / "run.json").is_file() or "run.json" in _recorded(out / MANIFEST):
        return
    try:
        run = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return
    if not isinstance(run, dict) or "fingerprint" not in run:
        return
    names = [p.relative_to(out).as_posix() for pattern in _LEGACY for p in out.glob(pattern)]
    models = [p.parent.relative_to(out).as_posix() for p in out.glob("models/*/config.json")]
    adopt(out, names, append=["log.txt"], dirs=models, last="run.json")


def _recorded(manifest: Path) -> set[str]:
    try:
        return set(json.loads(manifest.read_text()).get("files") or {})
    except (OSError, ValueError, AttributeError):
        return set()


def check_out(cfg: RunConfig) -> None:
    """Refuse --out before anything is read, trained or written: an input, a file, an
    unwritable place, or a folder holding the user's files (unless --force)."""
    if cfg.out.is_dir():
        _adopt_legacy_run(cfg.out)
    check_output_dir(cfg.out, force=cfg.force, inputs=[u.path for u in cfg.user.values()],
                     writes=OUTPUTS)


class _LogFile(logging.FileHandler):
    """The run's log.txt; a write that fails (a full disk) stops the run with a psae error
    instead of logging's own traceback on stderr."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        import errno
        import sys

        from ..ownership import disk_full

        e = sys.exc_info()[1]
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full(self.baseFilename, e) from e
        raise e if e is not None else RuntimeError("log write failed")


def _setup_logging(out: Path) -> logging.Handler:
    handler = _LogFile(out / "log.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    record_file(out / "log.txt", append=True)  # psae's log, which it appends to
    return handler


def _changed_files(cfg: RunConfig, old: dict) -> list[str]:
    """The --data files whose bytes differ from those the run in ``cfg.out`` was started on."""
    before = (old.get("fingerprint") or {}).get("data") or {}
    return [f"{u.path} (SHA-256 {before[k]['sha256'][:12]}… then, {u.sha256[:12]}… now)"
            for k, u in cfg.user.items()
            if k in before and before[k].get("sha256") != u.sha256]


def _settings(fingerprint: dict | None, code: bool = True) -> dict | None:
    """A fingerprint less its seed count: cells are kept per seed, so a resumed run may ask
    for more seeds (it runs only the new ones) or fewer (it reports the first ones). Without
    ``code``, less the training code's key too (a report of finished cells trains nothing)."""
    drop = ("seeds",) if code else ("seeds", "training_code")
    return None if fingerprint is None else {
        k: v for k, v in fingerprint.items() if k not in drop}


def _check_resume(cfg: RunConfig, splits: dict[str, Splits]) -> None:
    run_file = cfg.out / "run.json"
    fp = json.loads(json.dumps(cfg.fingerprint()))  # as run.json gives it back: no tuples
    has_cells = any(not p.name.startswith(".") for p in (cfg.out / "cells").glob("*.json"))
    if has_cells and not run_file.exists():
        raise ResumeMismatchError(
            f"{cfg.out} holds finished cells but no run.json saying how they were made; "
            "choose another --out")
    rechecked: list[dict] = []
    if run_file.exists():
        old = json.loads(run_file.read_text())
        rechecked = old.get("rechecked", [])
        if changed := _changed_files(cfg, old):
            raise ResumeMismatchError(
                f"{cfg.out} was started on other data: {'; '.join(changed)} changed since; "
                "choose another --out")
        if _settings(old.get("fingerprint"), code=False) != _settings(fp, code=False):
            raise ResumeMismatchError(
                f"{cfg.out} was started with different settings (protocol, grids, data or "
                "version): run the command that started it to continue it, or choose another "
                "--out")
        if _settings(old.get("fingerprint")) != _settings(fp):
            rechecked = _other_code(cfg, splits, old, fp)
        elif cfg.recheck:
            warnings.warn("--recheck: the run's training code is unchanged; nothing to check",
                          stacklevel=2)
        if has_cells and not cfg.resume:  # the same command again: go on where it stopped
            warnings.warn(f"{cfg.out} holds this run already: continuing it (its finished "
                          "cells are kept; the report is written again)", stacklevel=2)
    elif cfg.recheck:
        warnings.warn("--recheck: a new run has no finished cells to check", stacklevel=2)
    meta = {"fingerprint": fp, "command": cfg.command}
    atomic_write(run_file, json.dumps(meta | ({"rechecked": rechecked} if rechecked else {}),
                                      indent=1))


def _other_code(cfg: RunConfig, splits: dict[str, Splits], old: dict, fp: dict) -> list[dict]:
    """The run's cells were fitted by other training code. Report them under their own key;
    go on adding cells only under code that ``--recheck`` found to make the same cells (now,
    or in an earlier resume). Keeps ``fp`` under the run's original key; returns the run's
    recheck records."""
    rechecked, key = old.get("rechecked", []), fp.pop("training_code")
    done = finished_cells(cfg.out)
    if not done:  # nothing fitted yet: the run may as well be this code's
        fp["training_code"] = key
        return rechecked
    if "training_code" in old["fingerprint"]:  # runs started before the key have none
        fp["training_code"] = old["fingerprint"]["training_code"]
    if cfg.report_only or key in {r["code"] for r in rechecked}:
        return rechecked
    if not cfg.recheck:
        raise ResumeMismatchError(
            f"{cfg.out} was made by other training code (psae's code changed since its "
            "cells were fitted, so new cells might not be comparable with them): add --recheck "
            "to fit a few of its finished cells again and go on if they come out identical, "
            "report it with --report-only, or choose another --out for a new run")
    return [*rechecked, _recheck(cfg, splits, key, done)]


def _say(message: str) -> None:
    """A line for the log and for the user now (a recheck can take minutes before the
    progress bar starts)."""
    log.info("%s", message)
    print(f"psae reproduce: {message}", file=sys.stderr, flush=True)


def _recheck(cfg: RunConfig, splits: dict[str, Splits], key: str, done: dict[str, dict]
             ) -> dict:
    """Fit the cheapest of the finished cells ``done`` of each model and data set again, in a
    scratch folder; the record of the check if every one is identical, else
    ResumeMismatchError."""
    keys = pick(done)
    if not keys:
        raise ResumeMismatchError(
            f"--recheck: none of the finished cells in {cfg.out} can be fitted again (every "
            "first-seed fit failed): report it with --report-only, or choose another --out")
    _say(f"--recheck: fitting {len(keys)} finished cells again with this code "
         f"({', '.join(keys)}); not checked: {', '.join(unchecked(done, keys)) or 'nothing'}")
    with tempfile.TemporaryDirectory(prefix="psae-recheck-") as tmp:
        again = copy.copy(cfg)  # not replace(): that would read and hash the --data again
        again.out, again.resume, again.report_only = Path(tmp), False, False
        scratch = _Cells(again, splits, list(range(cfg.seeds)))
        make_dirs(scratch.cfg.out / "cells")
        make_dirs(scratch.cfg.out / "atoms")
        scratch.done = dict(done)

        def refit(cell: dict) -> dict:
            return scratch.done[scratch.run(Planned.of(cell))]

        found = recheck(done, keys, refit)
    if bad := {k: d for k, d in found.items() if d}:
        detail = "; ".join(f"{k}: {', '.join(d[:3])}" for k, d in bad.items())
        raise ResumeMismatchError(
            f"--recheck: this training code makes other cells than the code that started "
            f"{cfg.out} ({len(bad)} of {len(found)} differ: {detail}); report it with "
            "--report-only, or choose another --out for a new run")
    _say(f"--recheck: all {len(found)} cells identical; the run goes on under code {key}")
    return {"code": key, "psae_version": __version__, "cells": keys,
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def run(cfg: RunConfig) -> dict:
    """Run every cell that is not finished yet, then write results, figures and the report.

    The output folder is checked and the data read before anything is written, so a refused
    folder or missing data leaves no trace."""
    check_out(cfg)
    splits = {}
    for name in cfg.names:
        splits[name] = cfg.splits(name)
    if not cfg.report_only:
        _Cells(cfg, splits, list(range(cfg.seeds))).check()
    make_dirs(cfg.out / "cells")
    if cfg.matched:
        make_dirs(cfg.out / "atoms")
    handler = _setup_logging(cfg.out)
    try:
        _check_resume(cfg, splits)
        return _run(cfg, splits)
    finally:
        log.removeHandler(handler)
        handler.close()


# ------------------------------------------------------------------------------------- cells
def _cost(proto: DataProtocol, n: int, d: int) -> float:
    return n * d * proto.n_components * proto.epochs


class _NotRun(Exception):
    """A cell that is not on disk, under ``report_only``."""


class _Cells:
    """The cells of one run: which to run, in what order, and running (or resuming) each."""

    def __init__(self, cfg: RunConfig, splits: dict[str, Splits], seeds: list[int]):
        self.cfg, self.splits, self.seeds = cfg, splits, seeds
        self.threshold = metrics.DEFAULT_THRESHOLD
        self.done: dict[str, dict] = {}
        self._normalized: dict[tuple, tuple] = {}

    def plan(self) -> list[Planned]:
        """The paper protocol's grid points and
        final fits, then the matched protocol's cells (point = the target L0, None for RAE),
        each group's seeds in order: later seeds start where the first ended."""
        plan = self._paper_plan() if self.cfg.paper else []
        groups = self._matched_groups() if self.cfg.matched else []
        return plan + [cell for group in groups for cell in group]

    def _matched_groups(self) -> list[list[Planned]]:
        groups = []
        for name in self.cfg.names:
            mp, sp = self.cfg.matched_protocol(name), self.splits[name]
            cost = len(sp.X_train) * sp.X_train.shape[1] * mp.n_components * mp.epochs
            for m in matched_models(self.cfg.models):
                for t in (None,) if m == "rae" else mp.targets:
                    groups.append([Planned(name, m, "matched", t, s, cost)
                                   for s in self.seeds])
        return groups

    def _paper_plan(self) -> list[Planned]:
        plan = []
        for name in self.cfg.names:
            proto, sp = self.cfg.protocol(name), self.splits[name]
            d = sp.X_train.shape[1]
            for m in self.cfg.models:
                for p, _ in enumerate(grid_for(m, self.cfg.quick)):
                    plan.append(Planned(name, m, "grid", p, self.seeds[0],
                                        _cost(proto, len(sp.X_fit), d)))
            for m in self.cfg.models:
                for s in self.seeds:
                    plan.append(Planned(name, m, "final", None, s,
                                        _cost(proto, len(sp.X_train), d)))
        return plan

    def check(self) -> None:
        """Refuse what a fit would refuse (epochs fewer than a model's σ stages, an option its
        penalty ignores) before anything is written or fitted, not after the other models'
        cells have run; a final fit's point is one of its grid's, checked there."""
        for cell in self.plan():
            if cell.kind == "final":
                continue
            try:
                validate(self._estimator(*cell[:5]))
            except ParameterError as e:
                raise ParameterError(f"{cell.model} on {cell.dataset}: {e}") from None

    def _estimator(self, name: str, model: str, kind: str, point: int | None, seed: int,
                   start: float | None = None) -> SparseAutoencoder:
        """The unfitted model of one cell: ``point`` is its grid point (a final fit's: the
        chosen one) or, matched, its target; ``start`` a later matched seed's first weight."""
        if kind == "matched":
            return make_matched_model(model, point, self.cfg.matched_protocol(name), seed,
                                      self.cfg.device, self.cfg.threads, start)
        return make_model(model, grid_for(model, self.cfg.quick)[point],
                          self.cfg.protocol(name), seed, self.cfg.device, self.cfg.threads)

    def normalized(self, name: str, kind: str) -> tuple:
        """(normalizer, X_train, y_train, X_eval, y_eval): grid fit/val or final train/test."""
        key = (name, kind)
        if key not in self._normalized:
            sp = self.splits[name]
            Xtr, ytr, Xev, yev = ((sp.X_fit, sp.y_fit, sp.X_val, sp.y_val) if kind == "grid"
                                  else (sp.X_train, sp.y_train, sp.X_test, sp.y_test))
            nz = Normalizer().fit(Xtr)
            self._normalized[key] = (nz, nz.transform(Xtr), ytr, nz.transform(Xev), yev)
        return self._normalized[key]

    def selected_point(self, name: str, model: str) -> int:
        """The grid point with the best validation score (CA; RE for data without labels)."""
        crit = "CA" if self.splits[name].labelled else "RE"
        sign = 1.0 if SELECTION[crit] else -1.0
        grid = [c for c in self.done.values()
                if c["kind"] == "grid" and c["dataset"] == name and c["model"] == model]
        ok = [c for c in grid if finite(c["val"].get(crit)) is not None]
        if not ok:  # every point diverged: keep the first so the failure shows in the table
            return 0
        return max(ok, key=lambda c: (sign * c["val"][crit], -c["point"]))["point"]

    def _resumed(self, key: str, path: Path, params: dict, seed: int) -> bool:
        if not path.exists():
            return False
        try:
            cell = json.loads(path.read_text())
        except json.JSONDecodeError:
            cell = None
        if cell is not None and cell.get("params") == params and cell.get("seed") == seed:
            self.done[key] = cell
            log.info("resume: %s already done, skipped", key)
            return True
        log.warning("%s is damaged or from other settings: running the cell again", path)
        return False

    def run(self, cell: Planned) -> str:
        """Run one cell (or take it from disk) and return its key."""
        name, model, kind, point, seed, _ = cell
        if kind == "matched":
            return self._run_matched(name, model, point, seed)
        if kind == "final":
            point = self.selected_point(name, model)
        key = cell_key(name, model, kind, point, seed)
        path = self.cfg.out / "cells" / f"{key}.json"
        params = grid_for(model, self.cfg.quick)[point]
        if self._resumed(key, path, params, seed):
            return key
        cell = {"dataset": name, "model": model, "kind": kind, "point": point, "seed": seed,
                "params": params}
        self._fit(cell, key)
        atomic_write(path, json.dumps(cell))
        self.done[key] = cell
        return key

    def _run_matched(self, name: str, model: str, target: int | None, seed: int) -> str:
        key = cell_key(name, model, "matched", target, seed)
        path = self.cfg.out / "cells" / f"{key}.json"
        params = {"target_l0": target}
        if self._resumed(key, path, params, seed):
            return key
        stale = self.cfg.out / "atoms" / f"{key}.npz"
        if stale.is_file() and owns_file(stale):  # an earlier attempt's: not this fit's atoms
            stale.unlink()
        first = self.done.get(cell_key(name, model, "matched", target, self.seeds[0]))
        start = None if seed == self.seeds[0] or not first else first.get("penalty_weight")
        mp = self.cfg.matched_protocol(name)
        est = self._estimator(name, model, "matched", target, seed, start)
        cell = {"dataset": name, "model": model, "kind": "matched", "point": target,
                "seed": seed, "params": params, "start_weight": start}
        self._fit(cell, key, est, save_model=seed == self.seeds[0]
                  and target in (None, mp.explore_target))
        if "error" not in cell:
            cell.update(penalty_weight=est.penalty_weight_, stopped_early=est.stopped_early_,
                        dead_fraction=est.dead_fraction_, batch_size=est.batch_size_,
                        precision=est.precision_,
                        stability=self._stability(key, est, name, model, target, seed))
        atomic_write(path, json.dumps(cell))
        self.done[key] = cell
        return key

    def _stability(self, key: str, est, name: str, model: str, target: int | None,
                   seed: int) -> dict[str, float]:
        """Atom stability against each earlier seed of the same model and target whose atoms
        are on disk (``atoms/``, kept out of the committed results: a run resumed elsewhere
        compares the seeds it has); this fit's atoms are saved for the seeds after it."""
        atoms = self.cfg.out / "atoms"
        save_atoms(atoms / f"{key}.npz", est)
        out = {}
        for s in self.seeds:
            if s >= seed:
                break
            other = load_atoms(atoms / f"{cell_key(name, model, 'matched', target, s)}.npz")
            if other is not None:
                out[f"seed{s}"] = metrics.atom_stability(est.components_, other)
        return out

    def _fit(self, cell: dict, key: str, est=None, save_model: bool | None = None) -> None:
        cfg, name, kind = self.cfg, cell["dataset"], cell["kind"]
        if cfg.report_only:
            raise _NotRun(key)
        nz, Xtr, ytr, Xev, yev = self.normalized(name, "grid" if kind == "grid" else "final")
        if est is None:
            est = self._estimator(name, cell["model"], kind, cell["point"], cell["seed"])
        if save_model is None:
            save_model = kind == "final" and cell["seed"] == self.seeds[0]
        t0 = time.perf_counter()
        try:
            est.fit(Xtr)
            fit_seconds = time.perf_counter() - t0
            scores, H = score(est, Xtr, ytr, Xev, yev, self.threshold)
        except FitFailedError as e:
            log.warning("%s diverged: %s", key, e)
            cell.update(error=str(e), fit_seconds=time.perf_counter() - t0, n_epochs=0,
                        seconds=time.perf_counter() - t0, history=[])
            cell["val" if kind == "grid" else "test"] = failed_scores(
                kind, self.threshold, self.splits[name].labelled)
            return
        cell.update(fit_seconds=fit_seconds, n_epochs=est.n_iter_,
                    seconds=time.perf_counter() - t0)
        if kind == "grid":
            cell["val"] = {k: v for k, v in scores.items() if k != "L0"}
        else:
            cell["test"] = {k: v for k, v in scores.items() if k not in ("L0_mean", "L0_std")}
            cell["history"] = est.history_
            if save_model:
                save_final_model(cfg.out, name, cell["model"] if kind == "final"
                                 else f"{cell['model']}_matched", nz, est,
                                 {"reproduce": key, "params": cell["params"]})
            if kind == "matched":
                cell["test_raw"] = raw_scores(est, Xev)
                # seed 0 at the target the report shows it for: three more CA fits
                mp = cfg.matched_protocol(name)
                if cell["seed"] == self.seeds[0] and cell["point"] == mp.explore_target:
                    t1 = time.perf_counter()
                    cell["sweep"] = threshold_sweep(est, Xtr, ytr, Xev, yev, scores)
                    cell["sweep_seconds"] = time.perf_counter() - t1
            cell["arrays"] = f"cells/{key}.npz"
            save_npz(cfg.out / cell["arrays"], cell_arrays(est, H, Xev, self.threshold))
        log.info("%s: %s in %.1fs", key, json.dumps(cell.get("val") or cell["test"]),
                 cell["seconds"])


# ------------------------------------------------------------------------------------- run
def _progress(cfg: RunConfig, plan: list[Planned]):
    return tqdm(total=sum(c.cost for c in plan), disable=not cfg.progress, desc="reproduce",
                unit="", unit_scale=True, bar_format="{l_bar}{bar}| {percentage:3.0f}% "
                "[{elapsed}<{remaining}] {postfix}")


def _run(cfg: RunConfig, splits: dict[str, Splits]) -> dict:
    t_start = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    seeds = list(range(cfg.seeds))
    log.info("psae %s reproduce: %s", __version__, cfg.command)
    log.info("data sets: %s", ", ".join(splits))
    cells = _Cells(cfg, splits, seeds)
    plan = cells.plan()
    bar = _progress(cfg, plan)
    missing = 0
    for cell in plan:
        bar.set_postfix_str(f"{cell.dataset}__{cell.model}__{cell.kind}")
        try:
            cells.run(cell)
        except _NotRun:
            missing += 1
        bar.update(cell.cost)
    bar.close()
    if missing:
        log.info("--report-only: %d of %d cells not run; the results hold the %d finished",
                 missing, len(plan), len(plan) - missing)
    results = gather(cfg, splits, cells.done, seeds, cells.threshold, started,
                     time.perf_counter() - t_start)
    results["explorer"] = write_pages(cfg.out, results, splits)
    results["seconds"] = time.perf_counter() - t_start
    _write_outputs(cfg.out, results)
    log.info("done in %.1fs", results["seconds"])
    return results


def _write_outputs(out: Path, results: dict) -> None:
    from .protocols import registered
    from .report import write_report

    for protocol in registered():
        if (claims := protocol.claims(results)) is not None:
            results[protocol.claims_key] = claims
    # results.json is written once, with the figures' records; a figure that fails must not
    # take the numbers along, so a protocol whose drawing fails is logged and goes without
    figures: dict[str, list[str]] = {}
    for protocol in registered():
        try:
            figures.update(protocol.figures(results, out))
        except Exception as e:  # noqa: BLE001  (matplotlib fails in many ways)
            log.warning("the %s protocol's figures failed (%s: %s); the results are kept",
                        protocol.name, type(e).__name__, e)
            results.setdefault("figure_errors", {})[protocol.name] = f"{type(e).__name__}: {e}"
    results["figures"] = figures
    atomic_write(out / "results.json", json.dumps(results, indent=1))
    atomic_write(out / "results.csv", to_csv(results))
    write_report(results, out, figures)
