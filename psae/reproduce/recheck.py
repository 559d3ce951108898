"""Whether new training code makes the same cells as the code that started a run.

A resumed run refuses cells from other training code (its key, ``code_key``, changed), since
they would not be comparable with the finished ones. But many changes to that code move it
without changing a single number (a refactor, a faster path that computes the same floats), and
a run that takes days should survive them. ``--recheck`` settles it by experiment: it fits
again, in a scratch folder, the cheapest finished first-seed cell of every model in each
protocol and of every data set, and the run goes on under the new code only if each one comes
out identical (every measure float for float, the epoch history to float rounding; timings
aside).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["TIMINGS", "LOGGED", "finished_cells", "pick", "unchecked", "differences",
           "recheck"]

# what a refit may change: wall-clock figures, the threads it was given, and atom stability
# (it compares with earlier seeds' atoms, which a scratch folder does not hold)
TIMINGS = frozenset({"seconds", "fit_seconds", "sweep_seconds", "threads", "stability",
                     "stability_distinct"})
# the history logs sums over an epoch's batches and a validation pass, whose order follows the
# thread count (threads.py): on MNIST two fits with the same weights, epoch by epoch, logged
# losses 1e-6 apart when their tuned thread counts differed. Every measure of the fitted model
# must still be identical.
LOGGED = {"history": 1e-5}


_FIELDS = ("dataset", "model", "kind", "point", "seed")


def finished_cells(out: Path) -> dict[str, dict]:
    """Every readable cell in ``out/cells`` by its key (damaged files, and JSON that is not a
    cell, are left out)."""
    cells = {}
    for path in sorted((out / "cells").glob("[!.]*.json")):
        try:
            cell = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # unreadable, not UTF-8, not JSON
            continue
        if isinstance(cell, dict) and all(f in cell for f in _FIELDS):
            cells[path.stem] = cell
    return cells


def _path(cell: dict) -> tuple[str, str]:
    """The code path a cell runs: its protocol's (a matched cell steers to a target and stops
    on a plateau; a grid point or final fit does not) and its model's."""
    from .protocols import protocol_of_kind

    try:
        protocol = protocol_of_kind(cell["kind"]).name
    except KeyError:  # a protocol registered when the run was made, not now
        protocol = cell["kind"]
    return (protocol, cell["model"])


def pick(cells: dict[str, dict]) -> list[str]:
    """The cheapest finished first-seed cell of each (protocol, model), then the cheapest of
    each data set not covered yet; failed fits left out. (Every seed is fitted the same way,
    so a first seed stands for its later ones.)"""
    ok = {k: c for k, c in cells.items() if "error" not in c}
    by_cost = sorted(ok, key=lambda k: (ok[k].get("seconds", math.inf), k))
    chosen: list[str] = []

    for cover, among in ((_path, lambda c: c["seed"] == 0),
                         (lambda c: c["dataset"], lambda c: c["seed"] == 0)):
        covered = {cover(ok[k]) for k in chosen if among(ok[k])}
        for k in by_cost:
            if among(ok[k]) and cover(ok[k]) not in covered:
                covered.add(cover(ok[k]))
                chosen.append(k)
    return chosen


def unchecked(cells: dict[str, dict], chosen: list[str]) -> list[str]:
    """The (protocol, model) paths and data sets among ``cells`` that no chosen cell runs
    (all their first-seed fits failed, or only later seeds finished)."""
    paths = {_path(cells[k]) for k in chosen}
    names = {cells[k]["dataset"] for k in chosen}
    left = {f"{p} {m}" for p, m in map(_path, cells.values()) if (p, m) not in paths}
    left |= {c["dataset"] for c in cells.values() if c["dataset"] not in names}
    return sorted(left)


def differences(old: object, new: object, where: str = "", rel: float = 0.0) -> list[str]:
    """Where two cells disagree, ignoring ``TIMINGS`` at any depth and fields the new cell
    dropped whose old value was None. Floats must be equal, or within ``LOGGED``'s relative
    tolerance under its keys; NaN equals NaN (a failed measure is as failed as before)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            if k in TIMINGS or (k not in new and old[k] is None):
                continue  # a field the new code no longer writes said nothing: no number moved
            if k not in old or k not in new:
                out.append(f"{where}{k}: {'new' if k in new else 'gone'}")
            else:
                out += differences(old[k], new[k], f"{where}{k}.", LOGGED.get(k, rel))
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where.rstrip('.')}: {len(old)} entries, now {len(new)}"]
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True))
                for d in differences(a, b, f"{where}{i}.", rel)]
    return [] if _same(old, new, rel) else [f"{where.rstrip('.')}: {old!r}, now {new!r}"]


def _same(old, new, rel: float) -> bool:
    if old == new:
        return True
    if not (isinstance(old, float) and isinstance(new, float)):
        return False
    if math.isnan(old) or math.isnan(new):
        return math.isnan(old) and math.isnan(new)
    return math.isclose(old, new, rel_tol=rel, abs_tol=0.0) if rel else False


def recheck(cells: dict[str, dict], keys: Iterable[str],
            refit: Callable[[dict], dict]) -> dict[str, list[str]]:
    """Refit each of ``keys`` with ``refit`` (cell in, new cell out) and return the
    differences per cell key (an empty list: identical)."""
    return {k: differences(cells[k], refit(cells[k])) for k in keys}
