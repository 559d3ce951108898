"""The matched protocol's record for the protocol registry (:mod:`..protocols`)."""

from __future__ import annotations

from ..protocol import Protocol
from .cells import RULES
from .claims import matched_claims
from .figures import matched_figures
from .section import matched_section

__all__ = ["PROTOCOL"]


def _claims(results: dict) -> list[dict] | None:
    return matched_claims(results) if results.get("matched") else None


def _figures(results: dict, out_dir) -> dict[str, list[str]]:
    return matched_figures(results, out_dir) if results.get("matched") else {}


PROTOCOL = Protocol(name="matched", claims_key="matched_claims",
                    holds=lambda results: bool(results.get("matched")),
                    claims=_claims, figures=_figures, section=matched_section,
                    order=10, cells=RULES)
