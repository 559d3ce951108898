"""What a comparison protocol is to the runner and the report: one record of functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .render import Page

__all__ = ["Protocol"]


@dataclass(frozen=True)
class Protocol:
    """One protocol's view of a finished run.

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
