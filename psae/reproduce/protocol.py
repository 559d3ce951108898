"""What a comparison protocol is to the runner and the report: one record of functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .render import Page

if TYPE_CHECKING:
    from .cell_runner import Cells
    from .cells import Planned

__all__ = ["Protocol", "CellRules"]


@dataclass(frozen=True)
class CellRules:
    """How a protocol fits its cells; the runner keeps resuming, fitting, scoring and writing
    (:class:`~.cell_runner.Cells`) and asks these for the rest.

    ``kinds``: the ``Planned.kind`` values its cells carry (each kind belongs to one
    protocol). ``plan(cells)``: its cells for the run's data sets, models and seeds, in the
    order they run. ``estimator(cells, planned)``: a cell's unfitted model, which the runner
    validates before anything is written (None for a cell it cannot know before others have
    run, such as a final fit at a point validation chooses). ``run(cells, planned)``: fit (or
    take from disk) one cell and return its key. ``fingerprint(cfg)``: the settings that decide
    its cells, which a resumed run must match. ``gather(cfg, rows)``: its part of
    ``results.json`` from its finished cells (called with no rows in runs that do not fit
    it). ``together(planned)``: a key that the cells which must run in order, in one process,
    share under ``--jobs`` (None: one model on one data set). ``results.csv`` and
    ``Results.rows()`` list the built-in protocols' cells; another protocol's are in
    ``results.json`` under its own keys.
    """

    kinds: tuple[str, ...]
    plan: Callable[[Cells], list[Planned]]
    estimator: Callable[[Cells, Planned], Any]
    run: Callable[[Cells, Planned], str]
    fingerprint: Callable[[Any], dict]
    gather: Callable[[Any, list[dict]], dict]
    together: Callable[[Planned], tuple] | None = None


@dataclass(frozen=True)
class Protocol:
    """One protocol: the cells it fits (``cells``; None for a protocol that only reports on
    other protocols' cells) and its view of a finished run.

    ``claims(results)``: its claim rows, stored under ``claims_key`` (None: the run does not
    hold this protocol, nothing is stored). ``figures(results, out_dir)``: the figure files it
    drew, kind -> paths relative to ``out_dir``. ``holds(results)``: whether the report shows
    its ``section(page)``. ``order``: sections are rendered in increasing order.
    """

    name: str
    claims_key: str
    holds: Callable[[dict], bool]
    claims: Callable[[dict], list[dict] | None]
    figures: Callable[[dict, Path], dict[str, list[str]]]
    section: Callable[[Page], None]
    order: int = 100
    cells: CellRules | None = None
