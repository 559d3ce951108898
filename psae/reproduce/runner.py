"""Runs a comparison cell by cell, resumably, and gathers ``results.json``.

A cell is one fit, planned and fitted by the protocols the run names (``--protocol``; each
protocol's ``cells.py``): the paper's grid points scored on validation and final fits scored on
test, the matched protocol's fits at each target L0. This module holds the run: its settings
and fingerprint, the output folder, resuming (and ``--recheck``), the loop over the plan and
the outputs written at the end. Each finished cell is written atomically to ``out/cells/``
(the seed-0 final model and its arrays first, its JSON last), so a killed run resumed with
the same settings repeats no finished cell. Data sets are the named ones (``--datasets``) and
user files (``--data``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tqdm.auto import tqdm

from .._version import __version__
from ..datasets import LabelColumn
from ..errors import OwnershipError, ParameterError, PsaeError
from ..io.atomic import atomic_write
from ..io.ownership import TEMP_TAG, adopt, check_output_dir, make_dirs, record_file
from ..params import resolve_device, validate
from .cell_runner import Cells, NotRun
from .cells import Planned
from .code_key import training_code_key
from .data import Splits, UserData, load_splits, load_user_data, split_dataset
from .labels import models
from .matched.settings import MatchedProtocol, matched_for
from .pages import write_pages
from .paper.settings import DataProtocol, protocol_for, protocol_for_data
from .protocol import Protocol
from .protocols import BOTH, fitting_protocols
from .recheck import finished_cells, pick, recheck, unchecked
from .results import gather, to_csv
from .run_log import attach_log

__all__ = ["RunConfig", "run", "ResumeMismatchError", "RecheckError"]

log = logging.getLogger("psae.reproduce")
PACKAGE = Path(__file__).resolve().parent.parent


class ResumeMismatchError(ParameterError):
    """``--resume`` was asked for a run directory made with different settings: the options
    do not fit the folder, so the command line exits 2 as for any unusable option."""


class RecheckError(PsaeError, ValueError):
    """``--recheck`` found that this code fits the run's cells differently (or could fit none
    of them again): a finding of the run, not a bad option (exit 1)."""


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
    header: bool | None = None  # the .csv --data files' first line: a header, or data
    protocol_name: str = "paper"  # a registered protocol that fits cells, or "both"
    report_only: bool = False  # write results and report from the finished cells; train nothing
    force: bool = False  # write into a --out holding other files (never replacing them)
    recheck: bool = False  # resume under changed training code if it refits cells identically
    jobs: int = 1  # cells fitted at once, in worker processes (parallel.py); bits only, as threads
    user: dict[str, UserData] = field(init=False, repr=False)

    def __post_init__(self):
        self.out = Path(self.out).expanduser()  # as the checks read it: --out=~/x
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
        for key in ("n_components", "epochs"):  # a negative width ended in a raw KeyError
            v = (self.overrides or {}).get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ParameterError(f"--{key.replace('_', '-')} must be an integer >= 1, "
                                     f"got {v!r}")
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1:
            raise ParameterError(f"--jobs must be an integer >= 1, got {self.jobs!r}")
        if self.report_only and not (self.out / "run.json").exists():
            raise ParameterError(f"--report-only needs a run in {self.out}: it has no run.json")
        self.resume = self.resume or self.report_only
        if self.protocol_name not in (names := protocol_choices()):
            raise ParameterError(f"--protocol must be {', '.join(names[:-1])} or {names[-1]}, "
                                 f"got {self.protocol_name!r}")
        users = load_user_data(self.data, self.label_column, self.data_dir, self.header)
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
    def protocols(self) -> list[Protocol]:
        """The protocols whose cells this run fits, in the order it fits them."""
        names = BOTH if self.protocol_name == "both" else (self.protocol_name,)
        by_name = {p.name: p for p in fitting_protocols()}
        return [by_name[n] for n in names]

    def _protocol_files(self) -> list[str]:
        """The source files of the protocols this run fits that are not psae's own (psae's
        are in the training code's key already): their cells are theirs to decide."""
        import inspect

        files = {inspect.getsourcefile(p.cells.run) for p in self.protocols}
        return sorted(f for f in files if f and not Path(f).resolve().is_relative_to(PACKAGE))

    def matched_protocol(self, dataset: str) -> MatchedProtocol:
        u = self.user.get(dataset)
        return matched_for(dataset, self.quick, u.dataset.n_features if u else None,
                           u.n_train if u else None,
                           n_components=self.overrides.get("n_components"),
                           epochs=self.overrides.get("epochs"))

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
            "training_code": training_code_key(*self._protocol_files()),
            "quick": self.quick,
            "seeds": self.seeds,
            "device": self.device,
            "device_used": resolve_device(self.device).type,  # what "auto" came to
            "protocols": {d: self.protocol(d).as_dict() for d in self.names},  # the splits
        }
        if self.user:  # only then: runs started before --data existed still resume
            fp["data"] = {k: u.fingerprint() for k, u in self.user.items()}
        if self.protocol_name != "paper":  # likewise for runs started before --protocol
            fp["protocol"] = self.protocol_name
        for p in self.protocols:
            part = p.cells.fingerprint(self)
            if clash := sorted(set(fp) & set(part)):
                raise ValueError(f"the {p.name} protocol's fingerprint would replace "
                                 f"{', '.join(clash)}")
            fp.update(part)
        return fp


def protocol_choices() -> list[str]:
    """What ``--protocol`` accepts: every protocol that fits cells, and ``both``."""
    return [*(p.name for p in fitting_protocols()), "both"]


# ------------------------------------------------------------------------------------- resume
# what a run writes at the top of --out: a user's entry with one of these names is never
# replaced, even with --force
OUTPUTS = ("run.json", "log.txt", "results.json", "results.csv", "report.html", "report.md",
           "cells", "atoms", "figures", "models", "explore")
_LEGACY = ("run.json", "log.txt", "results.json", "results.csv", "report.html", "report.md",
           "cells/*.json", "cells/*.npz", "figures/*.png", "explore/*/index.html")


def _adopt_legacy_run(out: Path) -> dict[Path, bytes] | None:
    """A run folder written before psae kept manifests (its run.json says so) has its known
    files recorded as psae's, so that it can be resumed or reported again. run.json is
    recorded last: a folder whose run.json is unrecorded was not adopted (or not fully).
    Returns the folder's manifests as they were before (None: nothing adopted)."""
    from ..io.ownership import MANIFEST

    if not (out / "run.json").is_file() or "run.json" in _recorded(out / MANIFEST):
        return None
    try:
        run = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(run, dict) or "fingerprint" not in run:
        return None
    names = [p.relative_to(out).as_posix() for pattern in _LEGACY for p in out.glob(pattern)]
    models = [p.parent.relative_to(out).as_posix() for p in out.glob("models/*/config.json")]
    before = _manifests(out)
    try:
        adopt(out, names, append=["log.txt"], dirs=models, last="run.json")
    except BaseException:
        _restore_manifests(out, before)
        raise
    return before


def _recorded(manifest: Path) -> set[str]:
    try:
        return set(json.loads(manifest.read_text()).get("files") or {})
    except (OSError, ValueError, AttributeError):
        return set()


def check_out(cfg: RunConfig) -> None:
    """Refuse --out before anything is read, trained or written: an input, a file, an
    unwritable place, or a folder holding the user's files (unless --force). A legacy run
    folder is adopted for the check, and the adoption undone if the run is refused: a
    refused run leaves no manifest claiming the folder's files as psae's."""
    before = _adopt_legacy_run(cfg.out) if cfg.out.is_dir() else None
    try:
        check_output_dir(cfg.out, force=cfg.force, inputs=[u.path for u in cfg.user.values()],
                         writes=OUTPUTS)
    except BaseException:
        if before is not None:
            _restore_manifests(cfg.out, before)
        raise


def _manifests(out: Path) -> dict[Path, bytes]:
    """Every psae manifest under ``out``, with its bytes."""
    from ..io.ownership import MANIFEST

    return {p: p.read_bytes() for p in out.rglob(MANIFEST) if p.is_file()}


def _restore_manifests(out: Path, before: dict[Path, bytes]) -> None:
    """The manifests under ``out`` as they were (ours: rewritten in place, new ones gone)."""
    for p in set(_manifests(out)) | set(before):
        if p in before:
            p.write_bytes(before[p])
        else:
            p.unlink(missing_ok=True)


def _setup_logging(out: Path) -> logging.Handler:
    handler = attach_log(out / "log.txt")
    try:
        record_file(out / "log.txt", append=True)  # psae's log, which it appends to
    except BaseException:  # a full disk: a later run in this process must not log here too
        log.removeHandler(handler)
        handler.close()
        raise
    return handler


def _changed_files(cfg: RunConfig, old: dict) -> list[str]:
    """The --data files whose bytes differ from those the run in ``cfg.out`` was started on."""
    before = (old.get("fingerprint") or {}).get("data") or {}
    return [f"{u.path} (SHA-256 {before[k]['sha256'][:12]}… then, {u.sha256[:12]}… now)"
            for k, u in cfg.user.items()
            if k in before and before[k].get("sha256") != u.sha256]


def _settings(fingerprint: dict | None, drop: set[str]) -> dict | None:
    """A fingerprint less the keys ``drop``."""
    return None if fingerprint is None else {
        k: v for k, v in fingerprint.items() if k not in drop}


def _same(old: dict | None, new: dict, code: bool = True, device: bool = True) -> bool:
    """Whether the run recorded as ``old`` may go on (or be reported) under ``new``.

    The seed count never counts: cells are kept per seed, so a resumed run may ask for more
    seeds (it runs only the new ones) or fewer (it reports the first ones). Without ``code``,
    nor does the training code's key, and without ``device`` the device (a report of finished
    cells trains nothing). The device is compared as used: ``--device cpu`` continues a run
    that ``auto`` ran on the CPU, and ``auto`` on a CPU machine does not continue one that it
    ran on a GPU; a run started before that was recorded is compared by the option given."""
    drop = {"seeds"} | (set() if code else {"training_code"})
    if not device:
        drop |= {"device", "device_used"}
    elif old is not None and "device_used" in old:
        drop |= {"device"}
    else:
        drop |= {"device_used"}
    return _settings(old, drop) == _settings(new, drop)


def _check_resume(cfg: RunConfig, splits: dict[str, Splits]) -> None:
    run_file = cfg.out / "run.json"
    fp = json.loads(json.dumps(cfg.fingerprint()))  # as run.json gives it back: no tuples
    has_cells = any(not p.name.startswith(".") for p in (cfg.out / "cells").glob("*.json"))
    if has_cells and not run_file.exists():
        raise ResumeMismatchError(
            f"{cfg.out} holds finished cells but no run.json saying how they were made; "
            "choose another --out")
    rechecked: list[dict] = []
    sittings: list[dict] = []
    if run_file.exists():
        old = json.loads(run_file.read_text())
        rechecked = old.get("rechecked", [])
        sittings = _sittings(old) if has_cells else []
        if has_cells and "sittings" not in old:  # a run from before the record goes on
            sittings = [{"command": "earlier sittings, not recorded", "started": None}]
        # a run stopped before it finished any cell holds nothing to mix: its folder takes
        # the new settings (it stayed locked to ones it never used)
        if has_cells and (changed := _changed_files(cfg, old)):
            raise ResumeMismatchError(
                f"{cfg.out} was started on other data: {'; '.join(changed)} changed since; "
                "choose another --out")
        if has_cells and not _same(old.get("fingerprint"), fp, code=False,
                                   device=not cfg.report_only):
            raise ResumeMismatchError(
                f"{cfg.out} was started with different settings (protocol, models, grids, "
                "data or version): run the command that started it to continue or report it ("
                f"{old.get('command') or 'not recorded'}), or choose another --out")
        if not _same(old.get("fingerprint"), fp):
            rechecked = _other_code(cfg, splits, old, fp)
        elif cfg.recheck:
            warnings.warn("--recheck: the run's training code is unchanged; nothing to check",
                          stacklevel=2)
        if has_cells and not cfg.resume:  # the same command again: go on where it stopped
            warnings.warn(f"{cfg.out} holds this run already: continuing it (its finished "
                          "cells are kept; the report is written again)", stacklevel=2)
    elif cfg.recheck:
        warnings.warn("--recheck: a new run has no finished cells to check", stacklevel=2)
    if cfg.report_only:  # trains nothing: the run's record stays the run's
        return
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    meta = {"fingerprint": fp, "command": cfg.command,
            "sittings": [*sittings, {"command": cfg.command, "started": now}]}
    atomic_write(run_file, json.dumps(meta | ({"rechecked": rechecked} if rechecked else {}),
                                      indent=1))


def _sittings(old: dict) -> list[dict]:
    """The run's sittings so far, as run.json records them (none for a run from before the
    record: how many it had is not known, and one would be a guess)."""
    if isinstance(old.get("sittings"), list):
        return [s for s in old["sittings"] if isinstance(s, dict)]
    return []


def sittings_of(out: Path) -> list[dict]:
    """The sittings run.json in ``out`` records (none without one)."""
    try:
        return _sittings(json.loads((Path(out) / "run.json").read_text()))
    except (OSError, ValueError):
        return []


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
    RecheckError."""
    keys = pick(done)
    if not keys:
        raise RecheckError(
            f"--recheck: none of the finished cells in {cfg.out} can be fitted again (every "
            "first-seed fit failed): report it with --report-only, or choose another --out")
    _say(f"--recheck: fitting {len(keys)} finished cells again with this code "
         f"({', '.join(keys)}); not checked: {', '.join(unchecked(done, keys)) or 'nothing'}")
    with tempfile.TemporaryDirectory(prefix="psae-recheck-") as tmp:
        again = copy.copy(cfg)  # not replace(): that would read and hash the --data again
        again.out, again.resume, again.report_only = Path(tmp), False, False
        scratch = Cells(again, splits, list(range(cfg.seeds)))
        make_dirs(scratch.cfg.out / "cells")
        scratch.done = dict(done)

        def refit(cell: dict) -> dict:
            return scratch.done[scratch.run(Planned.of(cell))]

        found = recheck(done, keys, refit)
    if bad := {k: d for k, d in found.items() if d}:
        detail = "; ".join(f"{k}: {', '.join(d[:3])}" for k, d in bad.items())
        raise RecheckError(
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
    if cfg.resume and not (cfg.out / "run.json").is_file():
        # a long run is started with --resume; a mistyped --out shows here
        warnings.warn(f"--resume: {cfg.out} holds no run yet: starting one there", stacklevel=2)
    splits = {}
    for name in cfg.names:
        splits[name] = cfg.splits(name)
    if not cfg.report_only:
        _check_models(Cells(cfg, splits, list(range(cfg.seeds))))
    make_dirs(cfg.out / "cells")
    with contextlib.nullcontext() if cfg.report_only else _alone(cfg.out):
        handler = _setup_logging(cfg.out)
        try:
            _check_resume(cfg, splits)
            return _run(cfg, splits)
        finally:
            log.removeHandler(handler)
            handler.close()


RUN_LOCK = f".reproduce{TEMP_TAG}run.lock"
"""The file a run holds locked in its folder while it runs (hidden and tagged as psae's own;
the folder itself is what the manifest writes lock, so it cannot be the run's lock)."""


@contextlib.contextmanager
def _alone(out: Path) -> Iterator[None]:
    """Hold ``out`` for this run alone, and remove the lock file when done (one left by a
    killed run is taken over). A second run into the folder at once fitted the same cells
    twice and was told only that it continued the run. A report trains nothing and takes no
    lock: it may be written while the run goes on."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock to take
        yield
        return
    path = out / RUN_LOCK
    for _ in range(3):
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OwnershipError(
                f"another psae reproduce is running into {out}: wait for it to end (its "
                "cells are kept as they finish; --report-only reports them meanwhile), or "
                "choose another --out") from None
        try:  # a run that ended just now removed the file this lock is on: take a new one
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    else:
        raise OwnershipError(f"could not take {path} for this run: other runs keep starting "
                             f"and ending in {out}")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # still locked: no other run can be holding it
        os.close(fd)


def _check_models(cells: Cells) -> None:
    """Refuse what a fit would refuse (epochs fewer than a model's σ stages, an option its
    penalty ignores) before anything is written or fitted, not after the other models'
    cells have run."""
    for planned in cells.plan():
        est = cells.estimator(planned)
        if est is None:
            continue
        try:
            validate(est)
        except ParameterError as e:
            raise ParameterError(f"{planned.model} on {planned.dataset}: {e}") from None


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
    cells = Cells(cfg, splits, seeds)
    plan = cells.plan()
    bar = _progress(cfg, plan)
    missing = 0
    if cfg.jobs > 1 and not cfg.report_only:
        from .parallel import run_parallel

        run_parallel(cells, plan, cfg.jobs, lambda cell: bar.update(cell.cost))
    else:
        missing = _run_in_turn(cells, plan, bar)
    bar.close()
    if missing:
        log.info("--report-only: %d of %d cells not run; the results hold the %d finished",
                 missing, len(plan), len(plan) - missing)
    results = gather(cfg, splits, cells.done, seeds, cells.threshold, started,
                     time.perf_counter() - t_start, fitting_protocols())
    if missing:  # a report of a run not finished says so, instead of dating it finished
        results["finished"] = None
        results["cells_missing"] = {"missing": missing, "planned": len(plan)}
    # the whole run's account beside this sitting's: a resume with nothing left to fit said
    # "wall time 0.1 s" for a run of hours
    results["sittings"] = sittings_of(cfg.out)
    results["cell_seconds"] = sum(float(c.get("seconds") or 0) for c in cells.done.values())
    results["explorer"] = write_pages(cfg.out, results, splits)
    results["seconds"] = time.perf_counter() - t_start
    _write_outputs(cfg.out, results)
    log.info("done in %.1fs", results["seconds"])
    return results


def _run_in_turn(cells: Cells, plan: list[Planned], bar) -> int:
    """Run the plan's cells one after another; how many ``--report-only`` found missing."""
    missing = 0
    for cell in plan:
        bar.set_postfix_str(f"{cell.dataset}__{cell.model}__{cell.kind}")
        try:
            cells.run(cell)
        except NotRun:
            missing += 1
        bar.update(cell.cost)
    return missing


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
