"""The paper protocol's record for the protocol registry (:mod:`..protocols`)."""

from __future__ import annotations

from ..protocol import Protocol
from .cells import RULES
from .claims import evaluate_claims
from .figures import make_figures
from .section import paper_section

__all__ = ["PROTOCOL"]


def _claims(results: dict) -> list[dict]:
    # kept (empty) for runs without the protocol: results.json has always had the key
    return evaluate_claims(results) if results.get("final") else []


def _figures(results: dict, out_dir) -> dict[str, list[str]]:
    return make_figures(results, out_dir) if results.get("final") else {}


PROTOCOL = Protocol(name="paper", claims_key="claims",
                    holds=lambda results: bool(results.get("final")),
                    claims=_claims, figures=_figures, section=paper_section, order=20, cells=RULES)
