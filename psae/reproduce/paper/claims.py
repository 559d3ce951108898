"""Check the paper's claims (SPEC.md, section IV) against a reproduction's results dict.

Each claim is tested per data set on the mean over seeds of the test-set metrics (the
``summary`` block of the results, or recomputed from ``final`` when the summary lacks a value).
A claim *holds* when the means are ordered as the paper says; it is *clear* when, in addition,
Welch's t-test over the seeds puts its decisive pairs (the claimed winner and its closest rival)
apart at p < 0.05; with fewer than 2 seeds there is no spread to judge, so nothing is clear.
A claim with a needed model missing gets ``held=None`` (its detail still shows the comparison
among the models present, marked "partial").
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from ..cells import finite
from ..labels import dataset_keys, model_label, not_computed
from ..stats import below as _below
from ..stats import read

__all__ = ["evaluate_claims", "metric_stats"]

# the paper's four models; the unsquared-L0 ablation ("l0") only enters claim 6
PAPER_MODELS = ("rae", "l1", "kl", "psae")
SPARSE_MODELS = ("l1", "kl", "psae")

_FINAL_KEYS = {"L0_mean": ("L0", "mean"), "L0_std": ("L0", "std")}


def metric_stats(
    results: dict, dataset: str, model: str, metric: str
) -> tuple[float, float, int] | None:
    """(mean, std, n) over seeds of one test metric, or None when unavailable.

    Reads ``summary[dataset][model][metric]``; falls back to the ``final`` runs
    (population std over seeds, as in the summary). ``metric`` is one of RE, FVU, S, SSD, CA,
    L0_mean, L0_std (the per-sample spread of L0, averaged over seeds), dead_units.
    """
    entry = (((results.get("summary") or {}).get(dataset) or {}).get(model) or {}).get(metric)
    if (st := read(entry)) is not None:
        return st
    values: list[float] = []
    for run in results.get("final") or []:
        if run.get("dataset") != dataset or run.get("model") != model:
            continue
        test = run.get("test") or {}
        if metric in _FINAL_KEYS:
            outer, inner = _FINAL_KEYS[metric]
            raw = (test.get(outer) or {}).get(inner) if isinstance(test.get(outer), dict) else None
        else:
            raw = test.get(metric)
        v = finite(raw)
        if v is not None:
            values.append(v)
    if not values:
        return None
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std())  # population std over seeds, as the runner's summary
    return float(arr.mean()), std, int(arr.size)


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _row(claim_id: int, claim: str, dataset: str, held: bool | None, detail: str,
         clear: bool) -> dict:
    return {"id": claim_id, "claim": claim, "dataset": dataset, "held": held,
            "detail": detail, "clear": bool(clear)}


def _partial(claim_id: int, claim: str, dataset: str, held: bool, detail: str, clear: bool,
             missing: list[str]) -> dict:
    """A row whose comparison lacks some models is undecided (held None), numbers kept."""
    if missing:
        return _row(claim_id, claim, dataset, None, "partial: " + detail, False)
    return _row(claim_id, claim, dataset, held, detail, clear)


def _best_claim(
    results: dict, ds: str, claim_id: int, claim: str, metric: str, winner: str,
    rivals: Sequence[str], higher: bool,
) -> dict:
    """Claim "``winner`` has the best ``metric`` among ``rivals``" (best = higher or lower)."""
    raw = {m: metric_stats(results, ds, m, metric) for m in (winner, *rivals)}
    stats = {m: s for m, s in raw.items() if s is not None}
    present = [m for m in rivals if m in stats]
    missing = [model_label(results, m) for m in rivals if m not in stats]
    lab = model_label(results, winner)
    if (why := not_computed(results, ds, metric)) is not None:
        return _row(claim_id, claim, ds, None, f"{metric} {why}", False)
    if winner not in stats or not present:
        need = [lab] if winner not in stats else missing
        return _row(claim_id, claim, ds, None, f"no {metric} for " + ", ".join(need), False)
    w = stats[winner]
    sign = 1.0 if higher else -1.0
    order = sorted([winner, *present], key=lambda m: -sign * stats[m][0])
    rel = " > " if higher else " < "
    detail = f"{model_label(results, order[0])} {_fmt(stats[order[0]][0])}"
    for prev, m in itertools.pairwise(order):  # equal means are said equal, not ordered
        sep = " = " if stats[m][0] == stats[prev][0] else rel
        detail += f"{sep}{model_label(results, m)} {_fmt(stats[m][0])}"
    if missing:
        detail += f" ({', '.join(missing)} missing)"
    held = order[0] == winner and all(stats[m][0] != w[0] for m in present)
    r = stats[next(m for m in order if m != winner)]
    clear = held and (_below(r, w) if higher else _below(w, r))
    detail += _beyond(results, ds, metric, winner, (winner, *rivals), w[0], higher)
    return _partial(claim_id, claim, ds, held, f"{metric}: {detail}", clear, missing)


def _beyond(results: dict, ds: str, metric: str, winner: str, judged: Sequence[str],
            value: float, higher: bool) -> str:
    """The models outside the claim's that beat ``winner`` on ``metric`` (a claim judged among
    the paper's four must not read as a win over TopK or JumpReLU in the same table)."""
    better = []
    for m in results.get("models") or []:
        st = None if m in judged else metric_stats(results, ds, m, metric)
        if st is not None and (st[0] > value if higher else st[0] < value):
            better.append(f"{model_label(results, m)} {_fmt(st[0])}")
    if not better:
        return ""
    return (f"; outside the paper's four models, {', '.join(better)} "
            f"{'higher' if higher else 'lower'} than {model_label(results, winner)}")


def _claim_re(results: dict, ds: str) -> dict:
    claim = "1. RE lowest for RAE, then PSAE (below SAE+L1 and SAE+Ber)"
    rae = metric_stats(results, ds, "rae", "RE")
    psae = metric_stats(results, ds, "psae", "RE")
    others = {m: metric_stats(results, ds, m, "RE") for m in ("l1", "kl")}
    present = {m: s for m, s in others.items() if s is not None}
    missing = [model_label(results, m) for m, s in others.items() if s is None]
    if rae is None or psae is None or not present:
        need = [model_label(results, m) for m, s in (("rae", rae), ("psae", psae)) if s is None]
        need += missing if not present else []
        return _row(1, claim, ds, None, "no RE for " + ", ".join(need), False)
    lab = {m: model_label(results, m) for m in ("rae", "psae", *present)}
    rivals = ", ".join(f"{lab[m]} {_fmt(s[0])}" for m, s in sorted(present.items(),
                                                                   key=lambda kv: kv[1][0]))
    held = rae[0] < psae[0] and all(psae[0] < s[0] for s in present.values())
    rel1 = "<" if rae[0] < psae[0] else ">="
    rel2 = "<" if all(psae[0] < s[0] for s in present.values()) else "not <"
    detail = (f"RE: {lab['rae']} {_fmt(rae[0])} {rel1} {lab['psae']} {_fmt(psae[0])} "
              f"{rel2} {rivals}")
    if missing:
        detail += f" ({', '.join(missing)} missing)"
    closest = min(present.values(), key=lambda s: s[0])
    clear = held and _below(rae, psae) and _below(psae, closest)
    return _partial(1, claim, ds, held, detail, clear, missing)


def _claim_sparse_above_rae(results: dict, ds: str) -> dict:
    claim = "5. CA of every sparse model (SAE+L1, SAE+Ber, PSAE) above RAE"
    rae = metric_stats(results, ds, "rae", "CA")
    sparse = {m: metric_stats(results, ds, m, "CA") for m in SPARSE_MODELS}
    present = {m: s for m, s in sparse.items() if s is not None}
    missing = [model_label(results, m) for m, s in sparse.items() if s is None]
    if (why := not_computed(results, ds, "CA")) is not None:
        return _row(5, claim, ds, None, f"CA {why}", False)
    if rae is None or not present:
        need = [model_label(results, "rae")] if rae is None else missing
        return _row(5, claim, ds, None, "no CA for " + ", ".join(need), False)
    parts = [f"{model_label(results, m)} {_fmt(s[0])} ({'above' if s[0] > rae[0] else 'NOT above'})"
             for m, s in present.items()]
    detail = f"CA: {model_label(results, 'rae')} {_fmt(rae[0])} vs {', '.join(parts)}"
    if missing:
        detail += f" ({', '.join(missing)} missing)"
    held = all(s[0] > rae[0] for s in present.values())
    weakest = min(present.values(), key=lambda s: s[0])
    clear = held and _below(rae, weakest)
    return _partial(5, claim, ds, held, detail, clear, missing)


def _claim_ablation(results: dict, ds: str) -> dict:
    claim = "6. PSAE's SSD below the unsquared L0 ablation's (the square evens out sparsity)"
    psae = metric_stats(results, ds, "psae", "SSD")
    l0 = metric_stats(results, ds, "l0", "SSD")
    if psae is None or l0 is None:
        need = [model_label(results, m) for m, s in (("psae", psae), ("l0", l0)) if s is None]
        return _row(6, claim, ds, None, "no SSD for " + ", ".join(need), False)
    rel = "<" if psae[0] < l0[0] else ">="
    detail = (f"SSD: {model_label(results, 'psae')} {_fmt(psae[0])} {rel} "
              f"{model_label(results, 'l0')} {_fmt(l0[0])}")
    held = psae[0] < l0[0]
    return _row(6, claim, ds, held, detail, held and _below(psae, l0))


def evaluate_claims(results: dict) -> list[dict]:
    """One row per (claim, data set): keys id, claim, dataset, held, detail, clear.

    Claims 1–5 are the paper's (over RAE, SAE+L1, SAE+Ber, PSAE); claim 6 (PSAE's SSD below the
    unsquared-L0 ablation's) is added when "l0" is among ``results["models"]``. ``held`` is None
    when a needed model has no value for that data set.
    """
    rows: list[dict] = []
    datasets = dataset_keys(results)
    others = [m for m in PAPER_MODELS if m != "psae"]
    for ds in datasets:
        rows.append(_claim_re(results, ds))
    among = " (among the paper's four models)"
    for claim_id, metric, word, higher in ((2, "S", "highest", True), (3, "SSD", "lowest", False),
                                           (4, "CA", "highest", True)):
        for ds in datasets:
            rows.append(_best_claim(results, ds, claim_id,
                                    f"{claim_id}. {metric} {word} for PSAE{among}", metric,
                                    "psae", others, higher=higher))
    for ds in datasets:
        rows.append(_claim_sparse_above_rae(results, ds))
    if "l0" in (results.get("models") or []):
        for ds in datasets:
            rows.append(_claim_ablation(results, ds))
    return rows
