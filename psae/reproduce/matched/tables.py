"""Tables and one-line answers of the matched-sparsity protocol."""

from __future__ import annotations

from ...measures import MEASURES, VIEWS
from ..labels import dataset_label, model_label
from ..markup import Cell, Text
from ..stats import mean_std
from .claims import on_target, runs_of, shown_measures, stat, targets_of

__all__ = ["matched_table", "matched_answer", "matched_claims_table", "matched_raw_table",
           "matched_sweep_table"]

# the raw codes' measures shown beside the exact-sparse ones
RAW_COLUMNS = ("L0_mean", "FVU", "S", "SSD")


def _cell(st, bold: bool, metric: str) -> tuple[str, bool]:
    return mean_std(st, MEASURES[metric].percent), st is not None and bold


def _epochs(results: dict, ds: str, m: str, t: str) -> str:
    """Each seed's epochs, a ``*`` on those the epoch cap ended rather than convergence."""
    runs = [c for c in runs_of(results, ds, m, t) if "n_epochs" in c]
    return "/".join(str(c["n_epochs"]) + ("*" if c.get("stopped_early") is False else "")
                    for c in runs) or "—"


def matched_table(results: dict, ds: str, links: dict[str, str] | None = None
                  ) -> tuple[list[str], list[list[Cell]]]:
    """Rows (target, model), grouped by target; per target the best CA, RE, L0 spread, ... in
    bold among the models that landed within 10 % of it in every seed (a miss is marked ✗ in
    mean L0)."""
    links = links or {}
    models = list((results.get("matched_summary") or {}).get(ds, {}))
    columns = shown_measures(results, ds, VIEWS["matched_table"])
    rows: list[list[Cell]] = []
    for t in [*targets_of(results, ds), "dense"]:
        here = [m for m in models if stat(results, ds, m, t, "L0_mean") is not None]
        fair = [m for m in here if t == "dense" or on_target(results, ds, m, t)]
        best = {}
        for metric in columns:
            vals = [st[0] for m in fair if (st := stat(results, ds, m, t, metric))]
            # at one target no mean L0 is best; a measure without a direction has none
            # nor where one model stands alone (RAE, the dense row): nothing to be best among
            if len(vals) > 1 and metric != "L0_mean" and MEASURES[metric].higher is not None:
                best[metric] = max(vals) if MEASURES[metric].higher else min(vals)
        for m in here:
            row: list[Cell] = [t, Text(model_label(results, m), href=links.get(m))]
            for metric in columns:
                st = stat(results, ds, m, t, metric)
                text, bold = _cell(st, st is not None and m in fair
                                   and st[0] == best.get(metric), metric)
                if metric == "L0_mean" and m not in fair:
                    text += " ✗"
                row.append((text, bold))
            row.append(_epochs(results, ds, m, t))
            rows.append(row)
    return (["target L0", "model"] + [MEASURES[c].title for c in columns]
            + ["epochs per seed (* hit the cap)"], rows)


def matched_raw_table(results: dict, ds: str) -> tuple[list[str], list[list[Cell]]]:
    """For each fit with an inference threshold: its measures on the exact-sparse codes the
    comparison uses, beside those of its raw codes (the code layer's own output; L0 counts
    |h| > 0.01 there, so a sigmoid code's many small activations are not in it)."""
    rows: list[list[Cell]] = []
    for t in targets_of(results, ds):
        for m in (results.get("matched_summary") or {}).get(ds, {}):
            if stat(results, ds, m, t, "raw_FVU") is None:
                continue
            row: list[Cell] = [t, model_label(results, m)]
            for metric in RAW_COLUMNS:
                pct = MEASURES[metric].percent
                row += [mean_std(stat(results, ds, m, t, metric), pct),
                        mean_std(stat(results, ds, m, t, f"raw_{metric}"), pct)]
            rows.append(row)
    head = [x for c in RAW_COLUMNS for x in (f"{MEASURES[c].title}, exact",
                                             f"{MEASURES[c].title}, raw")]
    return ["target L0", "model", *head], rows


def _sweep(results: dict, ds: str, m: str, t: str) -> list[dict]:
    entry = (((results.get("matched_summary") or {}).get(ds) or {}).get(m) or {}).get(t) or {}
    return entry.get("sweep") or []


def matched_sweep_table(results: dict, ds: str, target: str
                        ) -> tuple[list[str], list[list[Cell]]]:
    """Seed 0 at ``target``: mean L0, FVU and CA of each thresholded fit's codes trimmed at
    0 (raw), θ/2, θ (the calibrated threshold, the comparison's codes) and 2θ."""
    rows: list[list[Cell]] = []
    factors: list[float] = []
    for m in (results.get("matched_summary") or {}).get(ds, {}):
        sweep = _sweep(results, ds, m, str(target))
        if not sweep:
            continue
        factors = factors or [r["factor"] for r in sweep]
        theta = next((f"{r['threshold']:.3g}" for r in sweep if r["factor"] == 1.0), "—")
        row: list[Cell] = [model_label(results, m), theta]
        for r in sweep:
            ca = "—" if r.get("CA") is None else f"{100 * r['CA']:.2f} %"
            row.append(f"{r['L0_mean']:.1f} · {r['FVU']:.3f} · {ca}")
        rows.append(row)
    names = {0.0: "raw", 1.0: "θ"}
    head = [f"{names.get(f, f'{f:g}θ')}: L0 at 0.01 · FVU · CA" for f in factors]
    return ["model", "θ", *head], rows


def matched_answer(results: dict, ds: str) -> str:
    """E.g. "At equal sparsity — best CA: L0 10 TopK 96.5 %, L0 25 PSAE 97.1 % · ..."."""
    parts = []
    for metric in ("CA", "RE", "L0_std"):
        name, higher = MEASURES[metric].best, MEASURES[metric].higher
        per_t = []
        for t in targets_of(results, ds):
            vals = [(m, st[0]) for m in (results.get("matched_summary") or {}).get(ds, {})
                    if m != "rae" and on_target(results, ds, m, t)
                    and (st := stat(results, ds, m, t, metric)) is not None]
            if vals:
                m, v = (max if higher else min)(vals, key=lambda mv: mv[1])
                val = MEASURES[metric].value(v)
                per_t.append(f"L0 {t}: {model_label(results, m)} {val}")
        if per_t:
            parts.append(f"{name} — " + ", ".join(per_t))
    return "At equal sparsity: " + " · ".join(parts) + "." if parts else "No matched results."


def matched_claims_table(results: dict) -> tuple[list[str], list[list[Cell]]]:
    rows: list[list[Cell]] = []
    for r in results.get("matched_claims") or []:
        held = "✓" if r["held"] is True else "✗" if r["held"] is False else "n/a"
        rows.append([r["claim"], dataset_label(results, r["dataset"]), r["target"], held,
                     "yes" if r["clear"] else "no", r["detail"]])
    return ["claim", "data set", "target L0", "held", "clear", "detail"], rows
