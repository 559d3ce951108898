"""The matched protocol's cells (kind ``matched``): every model that can be put at a target L0
trained to each of its data set's targets (RAE once, dense) for every seed, until its
validation RE converges, and scored on test. Every seed is fitted the same way, from the
mechanism's default weight: seeds are replicates, not refinements of the first."""

from __future__ import annotations

import time

from ... import metrics
from ...io.ownership import owns_file
from ...measures import VIEWS
from ..cell_runner import Cells, Fitted
from ..cells import Planned, cell_key, load_atoms, raw_scores, save_atoms, threshold_sweep
from ..protocol import CellRules
from ..stats import summarize
from .settings import make_matched_model, matched_models

__all__ = ["RULES", "matched_summary"]


def plan(cells: Cells) -> list[Planned]:
    """Per data set, model and target: its seeds in order."""
    out = []
    for name in cells.cfg.names:
        mp, sp = cells.cfg.matched_protocol(name), cells.splits[name]
        cost = len(sp.X_train) * sp.X_train.shape[1] * mp.n_components * mp.epochs
        for m in matched_models(cells.cfg.models):
            for t in (None,) if m == "rae" else mp.targets:
                out += [Planned(name, m, "matched", t, s, cost) for s in cells.seeds]
    return out


def estimator(cells: Cells, planned: Planned):
    """A cell's unfitted model."""
    return make_matched_model(planned.model, planned.point,
                              cells.cfg.matched_protocol(planned.dataset), planned.seed,
                              cells.cfg.device, cells.cfg.threads)


def run(cells: Cells, planned: Planned) -> str:
    """Fit one model at one target for one seed; seed 0 at the explorer's target also keeps
    its model and its threshold sweep, and RAE's seed 0 keeps its model."""
    name, model, _, target, seed, _ = planned
    key = cell_key(name, model, "matched", target, seed)
    params = {"target_l0": target}
    if cells.resumed(key, params, seed):
        return key
    stale = cells.cfg.out / "atoms" / f"{key}.npz"
    if stale.is_file() and owns_file(stale):  # an earlier attempt's: not this fit's atoms
        stale.unlink()
    # no seed starts from another's final weight: started there (the knob already at the
    # target's weight, no ramp from the default), later seeds fitted measurably worse codes
    # than the first (docs/protocol.md), so their spread was not a seed's
    est = estimator(cells, planned)
    cell = {"dataset": name, "model": model, "kind": "matched", "point": target,
            "seed": seed, "params": params}
    fitted = cells.fit(cell, key, est, "test")
    if fitted is not None:
        explored = target == cells.cfg.matched_protocol(name).explore_target
        seed0 = seed == cells.seeds[0]
        cells.keep_test(cell, key, fitted,
                        f"{model}_matched" if seed0 and (target is None or explored) else None,
                        lambda f: _second_views(f, sweep=seed0 and explored))
        cell.update(penalty_weight=est.penalty_weight_, stopped_early=est.stopped_early_,
                    dead_fraction=est.dead_fraction_, batch_size=est.batch_size_,
                    precision=est.precision_, **_stability(cells, key, est, planned))
    return cells.write(cell, key)


def _second_views(f: Fitted, sweep: bool) -> dict:
    """The raw codes' measures, and (``sweep``: seed 0 at the explorer's target, three more CA
    fits) how RE and CA move with the inference threshold."""
    out = {"test_raw": raw_scores(f.est, f.X_eval)}
    if sweep:
        t1 = time.perf_counter()
        out["sweep"] = threshold_sweep(f.est, f.X_train, f.y_train, f.X_eval, f.y_eval,
                                       f.scores)
        out["sweep_seconds"] = time.perf_counter() - t1
    return out


def _stability(cells: Cells, key: str, est, planned: Planned) -> dict[str, dict[str, float]]:
    """Atom stability, and the share of distinct atoms reproduced, against each earlier seed
    of the same model and target whose atoms are on disk (``atoms/``, kept out of the
    committed results: a run resumed elsewhere compares the seeds it has); this fit's atoms
    are saved for the seeds after it."""
    atoms = cells.cfg.out / "atoms"
    # as saved (float16), like the earlier seeds': a rerun from the atoms alone agrees
    mine = save_atoms(atoms / f"{key}.npz", est)
    out: dict[str, dict[str, float]] = {"stability": {}, "stability_distinct": {}}
    for s in cells.seeds:
        if s >= planned.seed:
            break
        other = load_atoms(atoms / f"{cell_key(*planned[:2], 'matched', planned.point, s)}"
                                   ".npz")
        if other is not None:
            out["stability"][f"seed{s}"] = metrics.atom_stability(est.components_, other)
            out["stability_distinct"][f"seed{s}"] = metrics.distinct_atom_share(mine, other)
    return out


def fingerprint(cfg) -> dict:
    """Each data set's matched settings (M, targets, epochs, the explorer's target)."""
    return {"matched": {d: cfg.matched_protocol(d).as_dict() for d in cfg.names}}


def _group(cells: list[dict]) -> dict:
    """One model at one target over its seeds: each measure's stats, those of the raw codes
    (``raw_RE``, ...), the atom stability over every pair of seeds, and seed 0's sweep."""
    tests = [c["test"] for c in cells]
    out = {k: summarize([r.get(k) for r in tests]) for k in VIEWS["matched_summary"]}
    out["L0_mean"] = summarize([r["L0"]["mean"] for r in tests])
    out["L0_std"] = summarize([r["L0"]["std"] for r in tests])
    raws = [c["test_raw"] for c in cells if c.get("test_raw")]
    if raws:
        out.update({f"raw_{k}": summarize([r.get(k) for r in raws]) for k in VIEWS["raw"]})
    out["stability"] = summarize([v for c in cells for v in (c.get("stability") or {}).values()])
    # cells fitted before the distinct share was recorded have none: a mean over the pairs
    # that remain would pass for one over all of them
    complete = all(c.get("stability_distinct") is not None or not c.get("stability")
                   for c in cells)
    out["stability_distinct"] = summarize(
        [v for c in cells for v in (c.get("stability_distinct") or {}).values()]
        if complete else [])
    first = min(cells, key=lambda c: c["seed"])
    if first.get("sweep"):
        out["sweep"] = first["sweep"]
    return out


def matched_summary(rows: list[dict]) -> dict:
    """``[dataset][model][target]`` → each measure's mean/std/n over seeds, with the mean and
    the spread of per-sample L0 (target ``"dense"`` for RAE); see :func:`_group`."""
    groups: dict = {}
    for c in rows:
        if "test" not in c:
            continue
        key = str(c["point"]) if c["point"] is not None else "dense"
        groups.setdefault(c["dataset"], {}).setdefault(c["model"], {}).setdefault(
            key, []).append(c)
    return {ds: {m: {t: _group(cells) for t, cells in by_t.items()} for m, by_t in by_m.items()}
            for ds, by_m in groups.items()}


def gather(cfg, rows: list[dict]) -> dict:
    """``matched`` (its cells in data set, model, target, seed order), ``matched_summary`` and
    the settings used, ``matched_protocol``; nothing for a run without matched cells."""
    if not rows:
        return {}
    order = {(d, m): (i, j) for i, d in enumerate(cfg.names) for j, m in enumerate(cfg.models)}
    ordered = sorted(rows, key=lambda c: (order[(c["dataset"], c["model"])], c["point"] or 0,
                                          c["seed"]))
    return {"matched": ordered, "matched_summary": matched_summary(ordered),
            "matched_protocol": {n: cfg.matched_protocol(n).as_dict() for n in cfg.names}}


def together(planned: Planned) -> tuple:
    """What must run in order under ``--jobs``: one model at one target (a seed compares its
    atoms with the earlier seeds')."""
    return planned.dataset, planned.model, planned.point


RULES = CellRules(kinds=("matched",), plan=plan, estimator=estimator, run=run,
                  fingerprint=fingerprint, gather=gather, together=together)
