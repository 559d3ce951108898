"""The explorer page's HTML skeleton, CSS and script: real files under ``assets/`` (edited and
linted as HTML, CSS and JavaScript), read once from the installed package.

``page.html`` has ``{{NAME}}`` slots that :mod:`.page` fills (plain replacement, so the CSS
and script need no brace escaping); ``script.js`` reads the JSON in ``#psae-data`` and draws
the overview, the unit table and the cards, histograms as inline SVG strings.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

__all__ = ["asset"]


@cache
def asset(name: str) -> str:
    """The text of ``assets/<name>`` (``page.html``, ``style.css``, ``script.js``)."""
    return files(__package__).joinpath("assets", name).read_text(encoding="utf-8")
