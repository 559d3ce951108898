"""One-line answers that lead the report's sections: who wins each measure, what each data
set's table says, how the claims fared, and which data a table is about."""

from __future__ import annotations

from ...measures import MEASURES
from ..labels import dataset_keys, dataset_label, model_label, not_computed
from ..tables import models_for
from .claims import metric_stats

__all__ = ["headline", "dataset_answer", "claims_answer", "data_line"]

ANSWER_METRICS = tuple((k, MEASURES[k].best, MEASURES[k].higher) for k in ("CA", "S", "SSD",
                                                                             "RE"))
"""(measure, how the answer names its best, higher is better), in the answers' order."""


def _value(metric: str, v: float) -> str:
    return MEASURES[metric].value(v)


def _ranked(results: dict, ds: str, metric: str, higher: bool) -> list[tuple[str, float]]:
    """(model, mean) of the models with a value, best first. The spread of sparsity (SSD) is
    ranked among the sparse models only: a dense code's (RAE's, L0 near M) says nothing of
    how evenly a code is sparse."""
    dense = {"rae"} if metric == "SSD" else set()
    vals = [(m, st[0]) for m in models_for(results, ds)
            if m not in dense and (st := metric_stats(results, ds, m, metric)) is not None]
    return sorted(vals, key=lambda mv: -mv[1] if higher else mv[1])


def headline(results: dict) -> str:
    """Which model wins each measure on which data sets, in one line."""
    keys = dataset_keys(results)
    parts = []
    for metric, name, higher in ANSWER_METRICS:
        won: dict[str, list[str]] = {}
        for ds in keys:
            ranked = _ranked(results, ds, metric, higher)
            if ranked:
                won.setdefault(ranked[0][0], []).append(dataset_label(results, ds))
        if len(keys) == 1:  # one data set: naming it once is enough
            parts += [f"{name}: {model_label(results, m)}" for m in won]
        elif won:
            parts.append(f"{name}: " + ", ".join(
                f"{model_label(results, m)} ({', '.join(d)})" for m, d in won.items()))
    where = f" on {dataset_label(results, keys[0])}" if len(keys) == 1 else ""
    if not parts:
        return "No results yet."
    return f"Winners{where} — " + " · ".join(parts) + "." + _psae_line(results, keys)


def _psae_line(results: dict, keys: list[str]) -> str:
    """How PSAE, the paper's model, placed on each measure: its rank per data set."""
    ranks = []
    for metric, _, higher in ANSWER_METRICS:
        places = []
        for ds in keys:
            ranked = [m for m, _ in _ranked(results, ds, metric, higher)]
            if "psae" in ranked:
                places.append(f"{ranked.index('psae') + 1} of {len(ranked)}")
        if places:
            ranks.append(f"{metric} {', '.join(places)}")
    if not ranks:
        return ""
    where = "" if len(keys) == 1 else \
        f" (on {', '.join(dataset_label(results, ds) for ds in keys)})"
    return f" {model_label(results, 'psae')}'s place{where}: " + "; ".join(ranks) + "."


def dataset_answer(results: dict, ds: str) -> str:
    """E.g. "Best CA on MNIST: PSAE 96.7 % (next SAE+L1 96.1 %) · most even sparsity ..."."""
    label = dataset_label(results, ds)
    parts = []
    for metric, name, higher in ANSWER_METRICS:
        if (why := not_computed(results, ds, metric)) is not None:
            parts.append(f"{metric} {why}")
            continue
        ranked = _ranked(results, ds, metric, higher)
        if not ranked:
            continue
        m, v = ranked[0]
        text = f"{name}: {model_label(results, m)} {_value(metric, v)}"
        if len(ranked) > 1:
            text += f" (next {model_label(results, ranked[1][0])} {_value(metric, ranked[1][1])})"
        parts.append(text)
    if not parts:
        return f"No results for {label}."
    first = parts[0][0].upper() + parts[0][1:]
    return f"{first.replace(':', f' on {label}:', 1)}" + "".join(f" · {p}" for p in parts[1:])


def claims_answer(claims: list[dict]) -> str:
    """How many claim checks held (and clearly), failed, or could not be decided."""
    if not claims:
        return "No claims could be evaluated."
    held = [c for c in claims if c["held"] is True]
    failed = sum(c["held"] is False for c in claims)
    open_ = len(claims) - len(held) - failed
    clear = sum(bool(c["clear"]) for c in held)
    return (f"Of {len(claims)} claim checks (claim × data set), {len(held)} held ({clear} "
            f"clearly, beyond ±1 std), {failed} did not, {open_} undecided (a model or a "
            "measure missing).")


def data_line(results: dict, ds: str) -> str:
    """The data behind a table: rows per split, features, classes, and a file's identity."""
    info = (results.get("datasets") or {}).get(ds) or {}
    if not info:
        return ""
    classes = info.get("classes") or ""
    n_classes = "no labels" if not info.get("labels", True) else \
        f"{len(classes.split(', '))} classes" if classes else ""
    parts = [f"{info.get('n_train', '?')} training rows ({info.get('n_val', '?')} of them "
             f"held out for validation in the grid)", f"{info.get('n_test', '?')} test rows",
             f"{info.get('n_features', '?')} features"] + ([n_classes] if n_classes else [])
    text = f"Data: {dataset_label(results, ds)}: " + ", ".join(parts)
    if info.get("sha256"):
        text += f"; file {info.get('source')}, SHA-256 {info['sha256']}"
    return text + "."
