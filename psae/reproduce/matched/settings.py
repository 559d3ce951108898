"""The matched-sparsity protocol: every model at the same mean L0, trained to convergence.

The paper protocol picks each model by validation CA at whatever sparsity that gives, so its
verdicts compare a dense code with a sparse one. Here every model is trained to each of a few
target mean L0s (|h| > 0.01, on held-out data) and compared there: TopK and BatchTopK take the
target as k; the penalised models steer their knob toward it (``target_l0``); RAE is the dense
reference. Every fit stops on converged validation RE (``early_stopping``). Every seed starts
from the mechanism's default knob; the test set chooses nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ... import sparsity
from ...datasets.registry import SOURCES
from ...errors import ParameterError
from ...estimator import SparseAutoencoder

__all__ = ["MatchedProtocol", "matched_for", "matched_models", "make_matched_model", "FIXED",
           "user_schedule"]


@dataclass(frozen=True)
class MatchedProtocol:
    """Hidden size, target mean L0s and the epochs of one data set's matched runs: ``epochs`` is
    the schedule every fit is laid out on (σ stages, the target's ramp), ``max_epochs`` the cap
    a fit the stopping rule has not yet stopped runs into."""

    n_components: int
    targets: tuple[int, ...]
    epochs: int
    max_epochs: int
    explore_target: int  # the target whose seed-0 models get explorer pages
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _table(kind: str) -> dict[str, MatchedProtocol]:
    """Each named data set's matched protocol, as its record in :mod:`psae.datasets` sets it:
    caps at 5x the schedule, 10x on CIFAR-10 (fits on the schedule alone ran into it with RE
    still falling, about 1 % an epoch on OPTDIGITS at 200); a quick run keeps its cap at its
    schedule."""
    return {name: MatchedProtocol(**src.settings["matched"][kind])
            for name, src in SOURCES.items() if "matched" in src.settings}


FULL, QUICK = _table("full"), _table("quick")

FIXED = {"kl": {"beta": 0.1}}
"""Knobs the matched protocol fixes: KL steers ρ, and needs a β strong enough to hold each
unit's mean activation at it (0.01 could not reach 5 active units on digits; 0.1 can)."""


USER_SAMPLES = 1_200_000
"""Training samples a user file's matched schedule covers: MNIST's (20 epochs of 60,000 rows).
The L0 controller ramps its setpoint over the first 60 % of the schedule and the stopping rule
waits for the setpoint, so a schedule fixed at 200 epochs kept every steered fit on a large
file running for at least 120 of them."""


def user_schedule(n_rows: int | None, quick: bool) -> tuple[int, int]:
    """(schedule, cap) in epochs for a user's file of ``n_rows`` training rows: the schedule
    covers :data:`USER_SAMPLES` between 20 and 200 epochs (200 up to 6,000 rows, as before),
    the cap is 5x it as on MNIST; a quick run takes at most 60, its cap its schedule."""
    full = 200 if not n_rows else int(min(200, max(20, round(USER_SAMPLES / n_rows))))
    if quick:
        return (min(60, full),) * 2
    return full, 5 * full


def matched_for(dataset: str, quick: bool, n_features: int | None = None,
                n_rows: int | None = None, **overrides) -> MatchedProtocol:
    """The matched protocol of ``dataset``; for a user's file, M = 100 and targets 5, 10, 20
    (scaled to the file's width when narrower), its epochs by :func:`user_schedule` from its
    ``n_rows`` training rows."""
    table = QUICK if quick else FULL
    proto = table.get(dataset)
    if proto is None:
        m = min(100, max(20, 2 * (n_features or 100)))
        proto = MatchedProtocol(m, tuple(t for t in (m // 20, m // 10, m // 5) if t >= 1),
                                *user_schedule(n_rows, quick), max(1, m // 10),
                                "user data: M and epochs by rule")
    if n := overrides.get("n_components"):
        proto = replace(proto, n_components=n)
    if e := overrides.get("epochs"):  # --epochs: the schedule, and no epoch past it
        proto = replace(proto, epochs=e, max_epochs=e)
    return proto


def matched_models(models: list[str]) -> list[str]:
    """The models a matched run trains: those that can be put at a target L0, and RAE."""
    out = []
    for key in models:
        mech = sparsity.by_key(key)
        if key == "rae" or mech.knob is not None or "k" in mech.params:
            out.append(key)
    return out


def make_matched_model(model: str, target: int | None, proto: MatchedProtocol, seed: int,
                       device: str, threads: int | str) -> SparseAutoencoder:
    """The unfitted autoencoder of one matched cell (``target`` None: the dense RAE)."""
    mech = sparsity.by_key(model)
    kw = dict(FIXED.get(model, {}))
    if target is not None:
        if "k" in mech.params:
            kw["k"] = int(target)
        elif mech.knob is not None:
            kw["target_l0"] = float(target)
        else:
            raise ParameterError(f"{model} cannot be put at a target L0")
    return SparseAutoencoder(n_components=proto.n_components, penalty=mech.name,
                             epochs=proto.epochs, early_stopping=True, device=device,
                             max_epochs=proto.max_epochs if proto.max_epochs > proto.epochs
                             else None,
                             threads=threads, random_state=seed, **kw)
