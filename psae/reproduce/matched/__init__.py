"""The matched-sparsity protocol: every model trained to the same target mean L0s, judged on
exact-sparse codes. ``settings`` (targets, hidden sizes, epoch caps, the cell's model),
``claims``, ``figures``, ``tables`` and ``section`` (its part of the report, shown first)."""

from .settings import FIXED, MatchedProtocol, make_matched_model, matched_for, matched_models

__all__ = ["FIXED", "MatchedProtocol", "make_matched_model", "matched_for", "matched_models"]
