"""Cells in parallel (``--jobs N``): N worker processes, each fitting whole groups of cells.

A group is what must run in order in one process, as its protocol says (``CellRules.together``):
by default one model on one data set (the paper's grid points and the final fits they choose);
for the matched protocol one model at one target (a later seed compares its atoms with the
earlier seeds' on disk). Groups share nothing else, so they run in any order, the costliest
first. Each worker fits with ``threads // N`` threads (at least one; ``auto`` keeps measuring
one thread against that share): small products do not use many threads well, so on two cores
two one-thread fits did 1.08-1.19x the epochs of one two-thread fit (``benchmarks/README.md``).
Workers are started with ``spawn`` (a forked copy of a process that has run OpenMP code may
hang), and each holds its own copy of the run's data. A cell is written by the worker that
fits it, atomically, as a run in turn writes it, so a parallel run resumes like any other.

The first error stops the run: no group starts after it and no running group starts another
cell; the cells being fitted finish and are kept, and the error is raised. A worker that dies
is the exception: the pool then ends the others at once, and the cells they were fitting are
lost (nothing half-written is left; the finished ones are kept). Ctrl-C (SIGINT to the run, from
the terminal or not) interrupts the cells being fitted, within two seconds, and keeps the
finished ones; an idle worker ignores it. A worker whose run is gone (killed, out of memory)
ends at once rather than fit cells nobody will collect, beside a resumed run that fits them
too. A script that calls ``compare(..., jobs=N)`` needs the ``if __name__ == "__main__":``
guard that ``spawn`` asks of any script.
"""

from __future__ import annotations

import copy
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import torch

from ..errors import ParameterError, PsaeError
from .cell_runner import Cells
from .cells import Planned
from .protocols import BUILT_IN
from .run_log import attach_log, log

__all__ = ["groups", "run_parallel", "worker_threads"]

_CELLS: Cells | None = None  # a worker's cells, made once by _start
_STOP = None  # set by the first group that fails, or by the parent: start no more cells
_REPORTS = None  # a worker tells the parent its pid, and each cell it finishes
_INTERRUPT_GRACE_S = 2.0  # a worker the terminal's Ctrl-C reached stops well within this


def _by_model(p: Planned) -> tuple:
    return p.dataset, p.model


def groups(cells: Cells, plan: list[Planned]) -> list[list[Planned]]:
    """The plan as groups that must each run in order (its protocol's ``together``, by
    default one model on one data set), costliest first (ties in plan order)."""
    by_key: dict[tuple, list[Planned]] = {}
    for p in plan:
        rules = cells.rules_of(p.kind)
        key = (rules.together or _by_model)(p)
        by_key.setdefault((id(rules), *key), []).append(p)
    return sorted(by_key.values(), key=lambda g: -sum(p.cost for p in g))


def worker_threads(threads: int | str, jobs: int) -> int:
    """Each worker's threads: the run's (``auto``: torch's count here, which ``auto`` would
    use) shared out among ``jobs``."""
    total = threads if isinstance(threads, int) else torch.get_num_threads()
    return max(1, total // jobs)


def _start(cfg, splits, seeds, protocols, log_file: str, threads: int, stop,
           reports) -> None:
    """A worker's set-up: the protocols registered in the parent (they live only there), the
    run's log, its threads, and the cells it fits; it ignores Ctrl-C while idle, and ends with
    its parent."""
    global _CELLS, _STOP, _REPORTS
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # idle: a traceback would break the pool
    _end_with_parent()
    from .protocols import fitting_protocols, register

    known = {p.name for p in fitting_protocols()}
    for p in protocols:
        if p.name not in known:
            register(p)
    attach_log(log_file)
    torch.set_num_threads(threads)
    _CELLS, _STOP, _REPORTS = Cells(cfg, splits, seeds), stop, reports
    reports.put(("started", os.getpid()))


def _end_with_parent() -> None:
    """End this worker as soon as its parent process is gone: otherwise it would go on with
    its group and the queued ones, unseen, beside a resumed run fitting the same cells (and
    then wait for work for ever). Files are written atomically, so ending mid-cell is safe."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="psae-end-with-parent", daemon=True).start()


def _ready() -> None:
    """Nothing: submitted once per worker so that all are started before any cell runs."""


def _run_group(number: int, group: list[Planned]) -> dict[str, dict]:
    """Fit (or take from disk) a group's cells in order, until the run is stopped, telling
    the parent of each as it ends; the finished cells' records by key."""
    out = {}
    for i, p in enumerate(group):
        if _STOP.is_set():
            break
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a cell may be interrupted
        try:
            key = _CELLS.run(p)
        except BaseException:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            _STOP.set()  # before the parent hears of it: a queued group must not start
            raise
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        out[key] = _CELLS.done[key]
        _REPORTS.put((number, i))
    return out


def _sendable(protocols: list) -> list:
    """The run's protocols that are not built in, checked to pickle (a worker needs them)."""
    extra = [p for p in protocols if p.name not in BUILT_IN]
    try:
        pickle.dumps(extra)
    except (pickle.PicklingError, AttributeError, TypeError) as e:
        raise ParameterError(f"--jobs: a protocol of this run cannot be sent to worker "
                             f"processes ({e}); define its functions in an importable "
                             "module or run with --jobs 1") from None
    return extra


def run_parallel(cells: Cells, plan: list[Planned], jobs: int,
                 advance: Callable[[Planned], None]) -> None:
    """Run ``plan`` in up to ``jobs`` worker processes (no more than there are groups); each
    cell is passed to ``advance`` (the progress bar) as it ends, and a group's cells join
    ``cells.done`` when the group ends."""
    grouped = groups(cells, plan)
    jobs = max(1, min(jobs, len(grouped)))
    threads = worker_threads(cells.cfg.threads, jobs)
    cfg = copy.copy(cells.cfg)  # not a new RunConfig: that would read the --data files again
    if isinstance(cfg.threads, int):
        cfg.threads = threads
    protocols = _sendable(cfg.protocols)
    log.info("%d cells in %d groups on %d worker processes of %d thread(s) each",
             len(plan), len(grouped), jobs, threads)
    ctx = multiprocessing.get_context("spawn")
    stop, reports = ctx.Event(), ctx.SimpleQueue()
    try:
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_start,
                                 initargs=(cfg, cells.splits, cells.seeds, protocols,
                                           str(cfg.out / "log.txt"), threads, stop,
                                           reports)) as pool:
            # every worker is started before any works: a worker that dies while another is
            # being started leaves the pool waiting on that one for ever (CPython 3.11)
            wait([pool.submit(_ready) for _ in range(jobs)])
            pending = {pool.submit(_run_group, n, g): n for n, g in enumerate(grouped)}
            progress = Progress(grouped, reports, advance)
            try:
                _collect(cells, pending, progress)
            except BaseException as e:
                stop.set()
                for future in pending:
                    future.cancel()
                if isinstance(e, KeyboardInterrupt):
                    _interrupt_busy(pending, progress)
                raise
    except BrokenProcessPool as e:
        why = f"{e}; {e.__cause__}" if e.__cause__ else str(e)
        raise PsaeError(f"a worker process of --jobs {jobs} ended abruptly ({why}: out of "
                        "memory, killed, or a protocol it could not load); the finished cells "
                        "are kept: run the same command again to go on") from e


def _interrupt_busy(pending: dict, progress: Progress) -> None:
    """Pass a Ctrl-C on to the workers still fitting a cell after a grace period: the
    terminal's reaches them itself, a ``kill -INT`` of the run does not. Idle workers ignore
    it."""
    running = [f for f in pending if not f.done()]
    if running and wait(running, timeout=_INTERRUPT_GRACE_S).not_done:
        progress.drain()
        for pid in progress.pids:
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass


class Progress:
    """What the workers report: their pids as they start, and each cell as it ends, which the
    progress bar advances by once (or at the latest when its group's result arrives)."""

    def __init__(self, grouped: list[list[Planned]], reports,
                 advance: Callable[[Planned], None]) -> None:
        self.grouped, self.reports, self.advance = grouped, reports, advance
        self.seen: set[tuple[int, int]] = set()
        self.pids: set[int] = set()

    def drain(self) -> None:
        """Take every report the workers have sent since the last call."""
        while not self.reports.empty():
            a, b = self.reports.get()
            if a == "started":
                self.pids.add(b)
            else:
                self._advance(a, b)

    def group_ended(self, number: int, n_done: int) -> None:
        """Advance the group's first ``n_done`` cells that no message reported yet."""
        self.drain()
        for i in range(n_done):
            self._advance(number, i)

    def _advance(self, number: int, i: int) -> None:
        if (number, i) not in self.seen:
            self.seen.add((number, i))
            self.advance(self.grouped[number][i])


def _collect(cells: Cells, pending: dict, progress: Progress) -> None:
    """Take each group's cells as it ends, advancing the bar per cell meanwhile; raise the
    first error."""
    while pending:
        finished, _ = wait(pending, timeout=1.0, return_when=FIRST_EXCEPTION)
        progress.drain()
        for future in finished:
            number = pending.pop(future)
            if (error := future.exception()) is not None:
                raise error
            done = future.result()
            cells.done.update(done)
            progress.group_ended(number, len(done))
