"""Figures of a reproduction: the paper's Fig. 2a–d and the plots that make its claims visible.

Everything is drawn on :class:`matplotlib.figure.Figure` objects (no pyplot, no global state)
and saved as PNG under ``out_dir/figures/``. A missing piece (a model absent from a data set, a
run's ``.npz`` file not found) skips that panel or figure instead of failing; the pieces that
could not be drawn are listed by :func:`missing_pieces`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ...measures import FIG2, MEASURES
from ..drawing import model_colors, run_models, save_figure
from ..labels import dataset_keys, dataset_label, model_label
from .claims import metric_stats

__all__ = ["make_figures", "model_colors", "save_figure", "missing_pieces", "figure_caption",
           "figure_dataset", "has_images", "FIGURE_KINDS"]

FIGURE_KINDS = ("fig2", "sparseness", "l0", "filters", "recons", "curves", "sweep")
FIG2_METRICS = tuple((letter, m, MEASURES[m].axis) for letter, m in zip("abcd", FIG2,
                                                                         strict=True))
_NPZ_KEYS = ("S", "L0", "filters", "inputs", "recons")

_CAPTIONS = {
    "fig2": "Fig. 2{letter}: {metric} per data set and model, mean over seeds with "
            "±1 std error bars.",
    "fig2_all": "Fig. 2a–d combined: RE, S, SSD and CA per data set and model (mean ± std over "
                "seeds).",
    "sparseness": "{ds}: distribution of per-sample Hoyer sparseness S of the test codes, pooled "
                  "over seeds (all-zero codes left out). White dot = mean; the tick label gives "
                  "the pooled mean and standard deviation. PSAE's claim is a high mean with a "
                  "narrow spread.",
    "l0": "{ds}: distribution of per-sample active-unit counts L0 (|h| > threshold) of the test "
          "codes, pooled over seeds; dashed lines mark each model's mean.",
    "filters": "{ds}: decoder atoms (columns of W2) of the most active units, seed 0 of each "
               "model, each atom min-max normalised for display.",
    "filters_plot": "{ds}: decoder atoms (columns of W2) of the most active units, seed 0 of "
                    "each model, drawn as line plots (the data have no image shape), each "
                    "min-max normalised and stacked, most active at the bottom.",
    "recons": "{ds}: the first test inputs (top row) and each model's reconstructions (seed 0), "
              "in the normalised [0.1, 0.9] space.",
    "recons_plot": "{ds}: the first test inputs (black) and each model's reconstructions "
                   "(seed 0), drawn as line plots (the data have no image shape), in the "
                   "normalised [0.1, 0.9] space.",
    "curves": "{ds}: training loss and reconstruction term per epoch on the full training set "
              "(seed 0); dotted vertical lines mark σ stages of graduated non-convexity.",
    "sweep": "{ds}: the validation sweep, every grid point and seed: CA versus S and RE versus S "
             "(validation split of the training set). Ringed points are the ones selected by "
             "validation CA.",
    "sweep_unlabelled": "{ds}: the validation sweep, every grid point and seed: RE versus S "
                        "(validation split of the training set; no CA: the data have no "
                        "labels). Ringed points are the ones selected by validation RE.",
}


def figure_dataset(relpath: str) -> str | None:
    """The data set a per-data-set figure shows (None for the Fig. 2 panels)."""
    stem = Path(relpath).stem
    for kind in FIGURE_KINDS[1:]:
        if stem.startswith(kind + "_"):
            return stem[len(kind) + 1:]
    return None


def _caption_key(results: dict, kind: str, ds: str) -> str:
    """Which caption fits how the figure was drawn (images or plots, with or without CA)."""
    if kind in ("filters", "recons") and not has_images(results, ds):
        return kind + "_plot"
    labelled = ((results.get("datasets") or {}).get(ds) or {}).get("labels", True)
    return "sweep_unlabelled" if kind == "sweep" and not labelled else kind


def figure_caption(results: dict, relpath: str) -> str:
    """Caption for a figure path returned by :func:`make_figures`."""
    stem = Path(relpath).stem
    if stem == "fig2":
        return _CAPTIONS["fig2_all"]
    for letter, metric, desc in FIG2_METRICS:
        if stem == f"fig2{letter}_{metric.lower()}":
            return _CAPTIONS["fig2"].format(letter=letter, metric=desc)
    ds = figure_dataset(relpath)
    if ds is not None:
        kind = stem[: -len(ds) - 1]
        return _CAPTIONS[_caption_key(results, kind, ds)].format(ds=dataset_label(results, ds))
    return stem


# ---------------------------------------------------------------------------------- helpers


def _final_runs(results: dict, ds: str, model: str) -> list[dict]:
    runs = [r for r in results.get("final") or []
            if r.get("dataset") == ds and r.get("model") == model]
    return sorted(runs, key=lambda r: (r.get("seed") is None, r.get("seed") or 0))


def _npz_path(out_dir: Path, run: dict) -> Path | None:
    rel = run.get("arrays")
    if not rel:
        return None
    p = Path(rel)
    return p if p.is_absolute() else out_dir / p


def _load_npz(out_dir: Path, run: dict) -> dict[str, np.ndarray] | None:
    p = _npz_path(out_dir, run)
    if p is None or not p.is_file():
        return None
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}
    except (OSError, ValueError):
        return None


def _arrays(out_dir: Path, results: dict, ds: str, model: str, key: str,
            all_seeds: bool) -> list[np.ndarray]:
    """``key`` from the npz of each seed (or of the first seed that has it)."""
    found = []
    for run in _final_runs(results, ds, model):
        z = _load_npz(out_dir, run)
        if z is not None and key in z:
            found.append(z[key])
            if not all_seeds:
                break
    return found


def _shape(results: dict, ds: str, dim: int) -> tuple[int, ...] | None:
    """The data set's image shape when it has one that fits ``dim`` values, else None: rows
    of data without an image shape are drawn as plots, never guessed into squares."""
    shape = ((results.get("datasets") or {}).get(ds) or {}).get("shape")
    if shape and int(np.prod(shape)) == dim and len(shape) in (2, 3):
        return tuple(int(s) for s in shape)
    return None


def has_images(results: dict, ds: str) -> bool:
    """Whether ``ds``'s rows are drawn as images (it has an image shape)."""
    info = (results.get("datasets") or {}).get(ds) or {}
    shape, d = info.get("shape"), info.get("n_features")
    return bool(shape) and len(shape) in (2, 3) and (d is None or int(np.prod(shape)) == d)


def _as_images(rows: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray | None:
    """(n, D) -> (n, H, W) or (n, H, W, 3); None when not displayable as images."""
    if shape is None:
        return None
    imgs = np.asarray(rows, dtype=np.float64).reshape((rows.shape[0], *shape))
    if imgs.ndim == 4:
        imgs = imgs if imgs.shape[-1] == 3 else imgs[..., 0]
    return imgs


def _mosaic(imgs: np.ndarray, pad: int = 1) -> np.ndarray:
    """Tile (n, H, W[, 3]) images in a near-square grid with ``pad`` pixels of white."""
    n, h, w = imgs.shape[:3]
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    extra = imgs.shape[3:]
    out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, *extra))
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y:y + h, x:x + w] = imgs[i]
    return out


def _minmax(a: np.ndarray) -> np.ndarray:
    """Per-image min-max normalisation to [0, 1] (a constant image becomes 0.5)."""
    flat = a.reshape(a.shape[0], -1)
    lo = flat.min(axis=1, keepdims=True)
    hi = flat.max(axis=1, keepdims=True)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    out = np.where(hi - lo > 0, (flat - lo) / span, 0.5)
    return out.reshape(a.shape)


def _show(ax: Axes, img: np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> None:
    if img.ndim == 3:
        ax.imshow(np.clip(img, 0.0, 1.0), interpolation="nearest")
    else:
        ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9,
            color="0.4", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


# ---------------------------------------------------------------------------------- figures

def _bars(ax: Axes, results: dict, metric: str, title: str, legend: bool = True) -> bool:
    datasets = dataset_keys(results)
    models = run_models(results)
    colors = model_colors(results)
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(datasets), dtype=np.float64)
    drawn, lows = False, []
    for i, m in enumerate(models):
        means, stds = [], []
        for ds in datasets:
            st = metric_stats(results, ds, m, metric)
            means.append(st[0] if st else np.nan)
            stds.append(st[1] if st else np.nan)
        if np.all(np.isnan(means)):
            continue
        drawn = True
        lows += [mu - (sd if np.isfinite(sd) else 0.0) for mu, sd in zip(means, stds,
                                                                        strict=True)]
        ax.bar(x - 0.4 + width * (i + 0.5), means, width, yerr=stds, capsize=3,
               color=colors[m], label=model_label(results, m), edgecolor="black", linewidth=0.4)
    ax.set_xticks(x)
    ax.set_xticklabels([dataset_label(results, d) for d in datasets])
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3)
    if metric == "S":
        ax.set_ylim(0, 1.05)
    elif metric == "CA" and drawn:
        # accuracies differ in their last points: from 0, 0.959 and 0.981 looked the same
        low = float(np.nanmin(lows)) if np.isfinite(np.nanmin(lows)) else 0.0
        ax.set_ylim(max(0.0, np.floor((low - 0.02) * 20) / 20), 1.0)
    if not drawn:
        _note(ax, f"no {metric} values")
    elif legend:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return drawn


def _legend_entries(axes: np.ndarray) -> tuple[list, list[str]]:
    """Unique (handle, label) pairs over several axes, in first-seen order."""
    handles, labels = [], []
    for ax in axes:
        for hd, lb in zip(*ax.get_legend_handles_labels(), strict=True):
            if lb not in labels:
                handles.append(hd)
                labels.append(lb)
    return handles, labels


def _fig2(results: dict, out_dir: Path) -> list[str]:
    paths = []
    if not dataset_keys(results):
        return paths
    for letter, metric, desc in FIG2_METRICS:
        fig = Figure(figsize=(8.5, 4.2), layout="constrained")
        if _bars(fig.add_subplot(), results, metric, f"Fig. 2{letter}: {desc}"):
            paths.append(save_figure(fig, out_dir, f"fig2{letter}_{metric.lower()}"))
    fig = Figure(figsize=(12, 8), layout="constrained")
    axes = fig.subplots(2, 2)
    for ax, (letter, metric, desc) in zip(axes.ravel(), FIG2_METRICS, strict=True):
        _bars(ax, results, metric, f"({letter}) {desc}", legend=False)
    handles, labels = _legend_entries(axes.ravel())
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6),
                   fontsize=9)
    paths.append(save_figure(fig, out_dir, "fig2"))
    return paths


def _pooled(results: dict, out_dir: Path, ds: str, key: str) -> dict[str, np.ndarray]:
    """Per model, the per-sample array ``key`` pooled over seeds (NaNs of all-zero codes out)."""
    data = {}
    for m in run_models(results):
        arrs = _arrays(out_dir, results, ds, m, key, all_seeds=True)
        if arrs:
            v = np.concatenate([np.ravel(a) for a in arrs]).astype(np.float64)
            v = v[np.isfinite(v)]
            if v.size:
                data[m] = v
    return data


def _sparseness(results: dict, out_dir: Path, ds: str) -> str | None:
    models, colors = run_models(results), model_colors(results)
    data = _pooled(results, out_dir, ds, "S")
    if not data:
        return None
    fig = Figure(figsize=(max(6.0, 1.5 * len(models) + 2), 4.5), layout="constrained")
    ax = fig.add_subplot()
    names = [m for m in models if m in data]
    pos = np.arange(1, len(names) + 1)
    parts = ax.violinplot([data[m] for m in names], positions=pos, showextrema=True,
                          widths=0.8)
    for body, m in zip(parts["bodies"], names, strict=True):
        body.set_facecolor(colors[m])
        body.set_edgecolor("black")
        body.set_alpha(0.7)
    for key in ("cmins", "cmaxes", "cbars"):
        if key in parts:
            parts[key].set_color("0.25")
            parts[key].set_linewidth(1)
    ticks = []
    for p, m in zip(pos, names, strict=True):
        mean, sd = float(data[m].mean()), float(data[m].std())
        ax.scatter([p], [mean], color="white", edgecolor="black", zorder=3, s=40)
        ticks.append(f"{model_label(results, m)}\nmean {mean:.3f}\nSD {sd:.3f}")
    ax.set_xticks(pos)
    ax.set_xticklabels(ticks, fontsize=9)
    ax.set_ylabel("per-sample Hoyer sparseness S")
    ax.set_ylim(-0.02, 1.02)
    missing = [model_label(results, m) for m in models if m not in data]
    title = f"{dataset_label(results, ds)}: per-sample sparseness of test codes"
    if missing:
        title += f"\n(no data: {', '.join(missing)})"
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, out_dir, f"sparseness_{ds}")


def _l0(results: dict, out_dir: Path, ds: str) -> str | None:
    models, colors = run_models(results), model_colors(results)
    data = _pooled(results, out_dir, ds, "L0")
    if not data:
        return None
    hi = max(float(v.max()) for v in data.values())
    bins = np.arange(-0.5, hi + 1.5) if hi <= 80 else np.linspace(0, hi + 1, 61)
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for m, v in data.items():
        ax.hist(v, bins=bins, histtype="step", density=True, linewidth=1.5, color=colors[m],
                label=f"{model_label(results, m)} (mean {v.mean():.1f})")
        ax.axvline(float(v.mean()), color=colors[m], linestyle="--", linewidth=1)
    thr = results.get("threshold")
    ax.set_xlabel("active units per sample (L0" + (f", |h| > {thr}" if thr is not None else "")
                  + ")")
    ax.set_ylabel("density")
    missing = [model_label(results, m) for m in models if m not in data]
    title = f"{dataset_label(results, ds)}: per-sample L0 of test codes"
    if missing:
        title += f"\n(no data: {', '.join(missing)})"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, out_dir, f"l0_{ds}")


def _panel_grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return int(math.ceil(n / cols)), cols


N_LINE_ATOMS = 12  # atoms drawn per panel as line plots (images show all N_FILTERS)


def _atom_lines(ax: Axes, W: np.ndarray) -> None:
    """Atoms of data without an image shape: one line each, stacked (min-max normalised)."""
    W = _minmax(W[:N_LINE_ATOMS])
    x = np.arange(W.shape[1])
    for i, w in enumerate(W):
        ax.plot(x, 0.85 * w + i, color=colormaps["tab10"](i % 10), linewidth=1,
                marker="." if W.shape[1] <= 40 else None, markersize=3)
    ax.set_yticks(np.arange(len(W)) + 0.4, [str(i + 1) for i in range(len(W))], fontsize=7)
    ax.set_xlabel("input dimension")
    ax.set_ylabel("atom (by activity)")
    ax.grid(axis="x", alpha=0.3)


def _filters(results: dict, out_dir: Path, ds: str) -> str | None:
    models = run_models(results)
    found = {m: a[0] for m in models
             if (a := _arrays(out_dir, results, ds, m, "filters", all_seeds=False))}
    if not found:
        return None
    names = [m for m in models if m in found]
    rows, cols = _panel_grid(len(names))
    fig = Figure(figsize=(3.6 * cols, 3.8 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, m in zip(axes, names, strict=False):
        W = np.asarray(found[m], dtype=np.float64)
        title = f"{model_label(results, m)} ({W.shape[0]} atoms)"
        if W.ndim != 2 or W.shape[0] == 0:
            _note(ax, "no filters")
        elif (shape := _shape(results, ds, W.shape[1])) is None:
            _atom_lines(ax, W)
            title = f"{model_label(results, m)} (top {min(len(W), N_LINE_ATOMS)} atoms)"
        else:
            _show(ax, _mosaic(_minmax(_as_images(W, shape))))
        ax.set_title(title, fontsize=10)
    for ax in axes[len(names):]:
        ax.set_axis_off()
    fig.suptitle(f"{dataset_label(results, ds)}: decoder filters (seed 0)")
    return save_figure(fig, out_dir, f"filters_{ds}")


def _recon_inputs(results: dict, out_dir: Path, ds: str):
    """The stored test inputs and each model's reconstructions of them (seed 0)."""
    inputs, recs = None, {}
    for m in run_models(results):
        for run in _final_runs(results, ds, m):
            z = _load_npz(out_dir, run)
            if z is None or "recons" not in z:
                continue
            recs[m] = np.asarray(z["recons"], dtype=np.float64)
            if inputs is None and "inputs" in z:
                inputs = np.asarray(z["inputs"], dtype=np.float64)
            break
    return inputs, recs


def _recon_lines(fig: Figure, results: dict, inputs: np.ndarray, recs: dict, n: int) -> None:
    """Data without an image shape: a panel per sample, the input in black and each model's
    reconstruction in its colour."""
    colors = model_colors(results)
    cols = min(n, 4)
    axes = fig.subplots(int(math.ceil(n / cols)), cols, squeeze=False).ravel()
    x = np.arange(inputs.shape[1])
    for i, ax in enumerate(axes):
        if i >= n:
            ax.set_axis_off()
            continue
        ax.plot(x, inputs[i], color="black", linewidth=2, label="input")
        for m, r in recs.items():
            ax.plot(x, r[i], color=colors[m], linewidth=1, label=model_label(results, m))
        ax.set_title(f"test sample {i + 1}", fontsize=9)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6),
               fontsize=8)


def _recon_images(fig: Figure, row_data: list, shape: tuple[int, ...], n: int) -> None:
    axes = fig.subplots(len(row_data), n, squeeze=False)
    for r, (label, arr) in enumerate(row_data):
        imgs = _as_images(arr, shape)
        for c in range(n):
            if c < imgs.shape[0]:
                _show(axes[r, c], imgs[c])
            else:
                axes[r, c].set_axis_off()
        axes[r, 0].set_ylabel(label, fontsize=9, rotation=0, ha="right", va="center")


def _recons(results: dict, out_dir: Path, ds: str) -> str | None:
    inputs, recs = _recon_inputs(results, out_dir, ds)
    if inputs is None or inputs.ndim != 2 or inputs.shape[0] == 0:
        return None
    recs = {m: r for m, r in recs.items() if r.shape[1:] == inputs.shape[1:]}
    shape = _shape(results, ds, inputs.shape[1])
    n = min(8, inputs.shape[0])
    if shape is None:
        fig = Figure(figsize=(12, 2.4 * math.ceil(n / 4) + 0.9), layout="constrained")
        _recon_lines(fig, results, inputs, recs, n)
    else:
        row_data = [("input", inputs[:n])] + [(model_label(results, m), r[:n])
                                              for m, r in recs.items()]
        fig = Figure(figsize=(1.3 * n + 1.2, 1.35 * len(row_data) + 0.6), layout="constrained")
        _recon_images(fig, row_data, shape, n)
    fig.suptitle(f"{dataset_label(results, ds)}: test inputs and reconstructions (seed 0)")
    return save_figure(fig, out_dir, f"recons_{ds}")


def _stage_marks(ax: Axes, history: list[dict]) -> None:
    """Dotted lines where σ changes, with the σ of each stage written at the top."""
    sig = [h.get("sigma") for h in history]
    if all(s is None for s in sig):
        return
    starts = [0] + [i for i in range(1, len(sig)) if sig[i] != sig[i - 1]]
    for j, i in enumerate(starts):  # entry i is drawn at x = i + 1
        if j > 0:
            ax.axvline(i + 0.5, color="0.3", linestyle=":", linewidth=1)
        if sig[i] is not None:
            ax.text(i + 0.6, 0.98, f"σ={_num(sig[i]):g}", transform=ax.get_xaxis_transform(),
                    fontsize=8, va="top", ha="left", color="0.15",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 1})


def _curves(results: dict, out_dir: Path, ds: str) -> str | None:
    models = run_models(results)
    hist = {}
    for m in models:
        for run in _final_runs(results, ds, m):
            h = [e for e in run.get("history") or [] if isinstance(e, dict)]
            if h:
                hist[m] = h
                break
    if not hist:
        return None
    names = [m for m in models if m in hist]
    rows, cols = _panel_grid(len(names))
    fig = Figure(figsize=(4.4 * cols, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colors = model_colors(results)
    for ax, m in zip(axes, names, strict=False):
        h = hist[m]
        x = np.arange(1, len(h) + 1)
        series: list[tuple[str, str, Callable[[dict], object]]] = [
            ("loss", "-", lambda e: e.get("loss")),
            ("reconstruction", "--", lambda e: e.get("reconstruction")),
        ]
        positive = True
        for label, style, get in series:
            y = np.array([_num(get(e)) for e in h], dtype=np.float64)
            if np.all(np.isnan(y)):
                continue
            positive &= bool(np.all(y[np.isfinite(y)] > 0))
            ax.plot(x, y, style, color=colors[m], label=label,
                    marker="." if len(h) < 40 else None)
        if positive:
            ax.set_yscale("log")
        _stage_marks(ax, h)
        ax.set_title(model_label(results, m), fontsize=10)
        ax.set_xlabel("epoch (cumulative over σ stages)")
        ax.grid(alpha=0.3)
    for ax in axes[len(names):]:
        ax.set_axis_off()
    handles, labels = _legend_entries(axes[: len(names)])
    if handles:
        fig.legend(handles, ["training " + lb for lb in labels], loc="outside lower center",
                   ncol=len(labels), fontsize=9)
    fig.suptitle(f"{dataset_label(results, ds)}: training curves (seed 0)")
    return save_figure(fig, out_dir, f"curves_{ds}")


def _num(v: object) -> float:
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def _sweep(results: dict, out_dir: Path, ds: str) -> str | None:
    points = [g for g in results.get("grid") or [] if g.get("dataset") == ds
              and isinstance(g.get("val"), dict)]
    if not points:
        return None
    models = run_models(results)
    colors = model_colors(results)
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax_ca, ax_re = fig.subplots(1, 2)
    for m in models:
        pts = [g for g in points if g.get("model") == m]
        if not pts:
            continue
        s = np.array([_num(g["val"].get("S")) for g in pts])
        ca = np.array([_num(g["val"].get("CA")) for g in pts])
        re = np.array([_num(g["val"].get("RE")) for g in pts])
        sel = np.array([bool(g.get("selected")) for g in pts])
        lab = model_label(results, m)
        for ax, y in ((ax_ca, ca), (ax_re, re)):
            ax.scatter(s, y, color=colors[m], s=22, alpha=0.75, label=lab)
            if sel.any():
                ax.scatter(s[sel], y[sel], facecolor="none", edgecolor="black", s=110,
                           linewidth=1.5)
    ax_ca.set_xlabel("validation S (mean Hoyer sparseness)")
    ax_ca.set_ylabel("validation CA")
    ax_ca.set_title("CA versus S", fontsize=10)
    ax_re.set_xlabel("validation S (mean Hoyer sparseness)")
    ax_re.set_ylabel("validation RE")
    ax_re.set_title("RE versus S", fontsize=10)
    all_re = np.array([_num(g["val"].get("RE")) for g in points])
    if np.all(all_re[np.isfinite(all_re)] > 0) and np.isfinite(all_re).any():
        ax_re.set_yscale("log")
    for ax in (ax_ca, ax_re):
        ax.grid(alpha=0.3)
    legend_ax = ax_ca
    if not np.isfinite([_num(g["val"].get("CA")) for g in points]).any():
        _note(ax_ca, "no CA: the data have no labels\n(points selected by validation RE)")
        legend_ax = ax_re
    legend_ax.scatter([], [], facecolor="none", edgecolor="black", s=110, label="selected")
    legend_ax.legend(fontsize=8)
    fig.suptitle(f"{dataset_label(results, ds)}: validation sweep (trade-off fronts)")
    return save_figure(fig, out_dir, f"sweep_{ds}")


def make_figures(results: dict, out_dir: Path) -> dict[str, list[str]]:
    """Draw every figure of a reproduction into ``out_dir/figures/``.

    Returns the PNG paths, relative to ``out_dir``, grouped by kind (fig2, sparseness, l0,
    filters, recons, curves, sweep). Figures whose data are missing are skipped.
    """
    out_dir = Path(out_dir)
    figs: dict[str, list[str]] = {"fig2": _fig2(results, out_dir)}
    per_ds = {"sparseness": _sparseness, "l0": _l0, "filters": _filters, "recons": _recons,
              "curves": _curves, "sweep": _sweep}
    for kind, draw in per_ds.items():
        figs[kind] = [p for ds in dataset_keys(results) if (p := draw(results, out_dir, ds))]
    return figs


def missing_pieces(results: dict, out_dir: Path) -> list[str]:
    """Human-readable list of what the figures had to skip (absent models, missing npz files)."""
    out_dir = Path(out_dir)
    notes = []
    models = run_models(results)
    for ds in dataset_keys(results):
        dl = dataset_label(results, ds)
        for m in models:
            runs = _final_runs(results, ds, m)
            if not runs:
                notes.append(f"{dl}: no final runs for {model_label(results, m)}")
                continue
            for run in runs:
                z = _load_npz(out_dir, run)
                seed = run.get("seed")
                if z is None:
                    p = run.get("arrays") or "(no path)"
                    notes.append(f"{dl}: {model_label(results, m)} seed {seed}: arrays file "
                                 f"{p} missing or unreadable")
                else:
                    lacking = [k for k in _NPZ_KEYS if k not in z]
                    if lacking:
                        notes.append(f"{dl}: {model_label(results, m)} seed {seed}: arrays "
                                     f"lack {', '.join(lacking)}")
    return notes
