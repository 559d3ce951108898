"""The paper protocol's cells: each model's grid points fitted on the grid-fit rows and scored
on validation (kind ``grid``), then the chosen point refitted on the whole training split for
every seed and scored once on test (kind ``final``)."""

from __future__ import annotations

from ..cell_runner import Cells
from ..cells import SELECTION, Planned, cell_key, finite, make_model
from ..protocol import CellRules
from ..stats import summarize
from .settings import grid_for

__all__ = ["RULES", "selected_point"]

_SUMMARY_L0 = ("mean", "std")


def _cost(cells: Cells, name: str, rows: int) -> float:
    proto = cells.cfg.protocol(name)
    return rows * cells.splits[name].X_train.shape[1] * proto.n_components * proto.epochs


def _grid(cells: Cells, name: str, model: str) -> list[dict]:
    """``model``'s grid on data set ``name``: the points its hidden size can take."""
    return grid_for(model, cells.cfg.quick, cells.cfg.protocol(name).n_components)


def plan(cells: Cells) -> list[Planned]:
    """Per data set: every model's grid points (first seed), then every model's final fits."""
    out = []
    for name in cells.cfg.names:
        sp = cells.splits[name]
        for m in cells.cfg.models:
            for p, _ in enumerate(_grid(cells, name, m)):
                out.append(Planned(name, m, "grid", p, cells.seeds[0],
                                   _cost(cells, name, len(sp.X_fit))))
        for m in cells.cfg.models:
            for s in cells.seeds:
                out.append(Planned(name, m, "final", None, s,
                                   _cost(cells, name, len(sp.X_train))))
    return out


def estimator(cells: Cells, planned: Planned):
    """A cell's unfitted model; None for a final fit before its grid has chosen its point
    (that point is one of the grid's, whose cells are checked)."""
    if planned.point is None:
        return None
    return make_model(planned.model, _grid(cells, planned.dataset, planned.model)[planned.point],
                      cells.cfg.protocol(planned.dataset), planned.seed, cells.cfg.device,
                      cells.cfg.threads)


def selected_point(cells: Cells, name: str, model: str) -> int:
    """The grid point with the best validation score (CA; RE for data without labels)."""
    crit = "CA" if cells.splits[name].labelled else "RE"
    sign = 1.0 if SELECTION[crit] else -1.0
    grid = [c for c in cells.done.values()
            if c["kind"] == "grid" and c["dataset"] == name and c["model"] == model]
    ok = [c for c in grid if finite(c["val"].get(crit)) is not None]
    if not ok:  # every point diverged: keep the first so the failure shows in the table
        return 0
    return max(ok, key=lambda c: (sign * c["val"][crit], -c["point"]))["point"]


def run(cells: Cells, planned: Planned) -> str:
    """Fit one grid point or final fit (a final fit at the point its grid chose)."""
    name, model, kind, point, seed, _ = planned
    if kind == "final":
        point = selected_point(cells, name, model)
    key = cell_key(name, model, kind, point, seed)
    params = _grid(cells, name, model)[point]
    if cells.resumed(key, params, seed):
        return key
    cell = {"dataset": name, "model": model, "kind": kind, "point": point, "seed": seed,
            "params": params}
    est = estimator(cells, planned._replace(point=point))
    fitted = cells.fit(cell, key, est, "val" if kind == "grid" else "test")
    if fitted is not None and kind == "grid":
        cells.keep_val(cell, fitted)
    elif fitted is not None:
        cells.keep_test(cell, key, fitted, model if seed == cells.seeds[0] else None)
    return cells.write(cell, key)


def fingerprint(cfg) -> dict:
    """The grids decide the paper's cells (its data settings are the run's own: the splits)."""
    return {"grids": {m: grid_for(m, cfg.quick) for m in cfg.models}}


def _summary(names: list[str], models: list[str], final_rows: list[dict]) -> dict:
    """``[dataset][model]`` → each measure's mean/std/n over the final fits' seeds."""
    from ...measures import VIEWS

    summary: dict = {}
    for name in names:
        summary[name] = {}
        for m in models:
            rows = [c["test"] for c in final_rows if c["dataset"] == name and c["model"] == m]
            entry = {k: summarize([r.get(k) for r in rows]) for k in VIEWS["summary"]}
            for k in _SUMMARY_L0:
                entry[f"L0_{k}"] = summarize([r["L0"][k] for r in rows])
            summary[name][m] = entry
    return summary


def gather(cfg, rows: list[dict]) -> dict:
    """``grid`` (each marked ``selected`` where its final fits used it), ``final`` and their
    ``summary``; kept, empty, in runs without the protocol (results.json always had them)."""
    grid = [c for c in rows if c["kind"] == "grid"]
    final = [c for c in rows if c["kind"] == "final"]
    chosen = {(c["dataset"], c["model"]): c["point"] for c in final}
    for c in grid:
        c["selected"] = chosen.get((c["dataset"], c["model"])) == c["point"]
    order = {(d, m): (i, j) for i, d in enumerate(cfg.names) for j, m in enumerate(cfg.models)}

    def sort_key(c):
        return (order[(c["dataset"], c["model"])], c["point"], c["seed"])

    return {"grid": sorted(grid, key=sort_key), "final": sorted(final, key=sort_key),
            "summary": _summary(cfg.names, cfg.models, final)}


RULES = CellRules(kinds=("grid", "final"), plan=plan, estimator=estimator, run=run,
                  fingerprint=fingerprint, gather=gather)
