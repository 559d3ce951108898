"""Figures of the matched-sparsity protocol: every measure against mean L0, and the plateaus.

Per data set, CA, RE and the spread of per-sample L0 are drawn against the mean test L0, one
line per model through its targets with ±1 std error bars over seeds in both directions; RAE,
dense, is a dashed reference. A second figure shows each model's validation RE per epoch at
one target (seed 0): the plateau the stopping criterion found.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

from ...measures import MEASURES, VIEWS
from ..drawing import model_colors, save_figure
from ..labels import dataset_label, model_label
from .claims import shown_measures, stat, targets_of

__all__ = ["matched_figures", "MATCHED_CAPTIONS"]

MATCHED_CAPTIONS = {
    "matched": "{ds}: CA (where the data have labels), RE, the spread of per-sample L0 and, "
               "with two seeds or more, the stability of the atoms across seeds (mean cosine of "
               "two seeds' decoder atoms after one-to-one matching) against the mean test L0, "
               "every model trained to each target (mean ± std over seeds, or over pairs of "
               "seeds, in both directions); RAE (dense) is the dashed line.",
    "matched_sweep": "{ds}: FVU and, where the data have labels, CA of each thresholded fit's "
                     "codes (target L0 {t}, seed 0) trimmed at 0 (raw codes), θ/2, θ (the "
                     "calibrated inference threshold: the comparison's codes, filled marker) "
                     "and 2θ, against their mean L0.",
    "matched_curves": "{ds}: validation RE per epoch at target L0 {t} (seed 0): each fit stops "
                      "after its second plateau (the first lowers the step size).",
}


def _panel(ax, results: dict, ds: str, metric: str, title: str, colors: dict) -> None:
    models = (results.get("matched_summary") or {}).get(ds, {})
    for m in models:
        if m == "rae":
            if (ref := stat(results, ds, m, "dense", metric)) is not None:
                ax.axhline(ref[0], color="0.4", linestyle="--", linewidth=1, label="RAE (dense)")
            continue
        pts = [(x, y) for t in targets_of(results, ds)
               if (x := stat(results, ds, m, t, "L0_mean")) and (y := stat(results, ds, m, t,
                                                                              metric))]
        if not pts:
            continue
        ax.errorbar([p[0][0] for p in pts], [p[1][0] for p in pts],
                    xerr=[p[0][1] for p in pts], yerr=[p[1][1] for p in pts], marker="o",
                    markersize=4, capsize=2, linewidth=1.3, color=colors[m],
                    label=model_label(results, m))
    for t in targets_of(results, ds):
        ax.axvline(float(t), color="0.85", linewidth=0.8, zorder=0)
    ax.set_xscale("log")
    # ticks at the targets only, written plainly: the log axis's own labels ran together
    # ("2×10⁰3×10⁰4×10⁰6×10⁰")
    ax.xaxis.set_major_locator(FixedLocator([float(t) for t in targets_of(results, ds)]))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("mean test L0 (active units per sample)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)


def _matched(results: dict, out_dir: Path, ds: str, colors: dict) -> str | None:
    if not targets_of(results, ds):
        return None
    fig = Figure(figsize=(12, 8), layout="constrained")
    panels = shown_measures(results, ds, VIEWS["matched_panels"])
    axes = fig.subplots((len(panels) + 1) // 2, 2).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, metric in zip(axes, panels, strict=False):
        _panel(ax, results, ds, metric, MEASURES[metric].axis, colors)
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=8)
    fig.suptitle(f"{dataset_label(results, ds)}: every model at the same mean L0")
    return save_figure(fig, out_dir, f"matched_{ds}")


def _curves(results: dict, out_dir: Path, ds: str, colors: dict) -> str | None:
    t = str(((results.get("matched_protocol") or {}).get(ds) or {}).get("explore_target", ""))
    runs = [c for c in results.get("matched") or [] if c["dataset"] == ds and c["seed"] == 0
            and str(c["point"]) == t and c.get("history")]
    if not runs:
        return None
    fig = Figure(figsize=(8, 4.4), layout="constrained")
    ax = fig.add_subplot()
    for c in runs:
        val = [h.get("val_re") for h in c["history"]]
        if any(v is not None for v in val):
            ax.plot(np.arange(1, len(val) + 1), [np.nan if v is None else v for v in val],
                    color=colors[c["model"]], label=model_label(results, c["model"]), linewidth=1.3)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation RE (per-sample squared error / D)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, f"matched_curves_{ds}")


def _sweep(results: dict, out_dir: Path, ds: str, colors: dict) -> str | None:
    t = str(((results.get("matched_protocol") or {}).get(ds) or {}).get("explore_target", ""))
    sweeps = {m: e[t]["sweep"] for m, e in
              ((results.get("matched_summary") or {}).get(ds) or {}).items()
              if (e.get(t) or {}).get("sweep")}
    if not sweeps:
        return None
    # data without labels have no CA: its panel was drawn empty, with an empty legend
    metrics = [k for k in ("FVU", "CA")
               if any(r.get(k) is not None for rows in sweeps.values() for r in rows)]
    if not metrics:
        return None
    fig = Figure(figsize=(5.5 * len(metrics), 4.2), layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(1, len(metrics))))
    for ax, metric in zip(axes, metrics, strict=True):
        for m, rows in sweeps.items():
            pts = [(r["L0_mean"], r[metric], r["factor"]) for r in rows
                   if r.get(metric) is not None and r["L0_mean"] > 0]
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=4,
                    markerfacecolor="white", color=colors[m], linewidth=1.2,
                    label=model_label(results, m))
            ax.plot([p[0] for p in pts if p[2] == 1.0], [p[1] for p in pts if p[2] == 1.0],
                    marker="o", markersize=6, color=colors[m], linestyle="none")
        ax.axvline(float(t), color="0.85", linewidth=0.8, zorder=0)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("mean test L0 (|h| > 0.01) of the trimmed codes")
        ax.set_title(f"{metric} ({'lower' if metric == 'FVU' else 'higher'} is better)",
                     fontsize=9)
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=8)
    fig.suptitle(f"{dataset_label(results, ds)}: what the inference threshold removes")
    return save_figure(fig, out_dir, f"matched_sweep_{ds}")


def matched_figures(results: dict, out_dir: Path) -> dict[str, list[str]]:
    """Draw the matched figures of every data set; their paths by kind."""
    out_dir = Path(out_dir)
    colors = model_colors(results)
    out: dict[str, list[str]] = {"matched": [], "matched_curves": [], "matched_sweep": []}
    for ds in results.get("matched_summary") or {}:
        for kind, draw in (("matched", _matched), ("matched_curves", _curves),
                           ("matched_sweep", _sweep)):
            if (p := draw(results, out_dir, ds, colors)) is not None:
                out[kind].append(p)
    return out
