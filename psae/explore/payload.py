"""The page's data: one JSON-able dict (numbers rounded to 4 significant digits) plus the
sprite sheets as ``data:`` URIs, built from codes, atoms and display inputs."""

from __future__ import annotations

import base64

import numpy as np

from . import sprites
from .histograms import activation_histograms, frequency_histogram, l0_histogram
from .stats import DENSE_CUT, sample_l0, top_samples, unit_stats

__all__ = ["build_payload", "MAX_PLOT_POINTS", "MAX_MIX_CLASSES"]

MAX_PLOT_POINTS = 256  # non-image rows longer than this are drawn binned
MAX_MIX_CLASSES = 12  # a card lists at most this many classes; the rest is "other"


def _r4(a) -> list:
    """Floats rounded to 4 significant digits, NaN/inf as None (JSON has no NaN)."""
    return [float(f"{v:.4g}") if np.isfinite(v) else None for v in np.asarray(a, dtype=float)]


def _units(st: dict, labelled: bool) -> dict:
    """The table's columns, one list of M values each."""
    out = {
        "freq": _r4(st["frequency"]),
        "mean": _r4(st["mean_active"]),
        "mean_all": _r4(st["mean_all"]),
        "max": _r4(st["max_abs"]),
        "contrib": _r4(st["contribution"]),
        "count": st["count"].tolist(),
    }
    if labelled:
        out["sel"] = _r4(st["selectivity"])
        out["cls"] = st["preferred_class"].tolist()
    return out


def _class_mix(counts: np.ndarray) -> list[list[list[int]]]:
    """Per unit, its [class, count] pairs, most frequent first, at most MAX_MIX_CLASSES."""
    order = np.argsort(-counts, axis=1, kind="stable")[:, :MAX_MIX_CLASSES]
    return [
        [[int(c), int(n)] for c, n in zip(o, counts[j, o], strict=True) if n > 0]
        for j, o in enumerate(order)
    ]


def _binned(A: np.ndarray, points: int) -> np.ndarray:
    """Columns of ``A`` reduced to ``points`` bins keeping each bin's largest-magnitude value
    (a mean would flatten the spikes that a sparse atom is made of)."""
    if A.shape[1] <= points:
        return A
    starts = np.linspace(0, A.shape[1], points + 1).astype(np.int64)[:-1]
    hi, lo = np.maximum.reduceat(A, starts, axis=1), np.minimum.reduceat(A, starts, axis=1)
    return np.where(np.abs(hi) >= np.abs(lo), hi, lo)


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode("ascii")


def _image_visuals(X_sel, atoms, image_shape, lo, hi) -> tuple[dict, list[tuple[str, str]]]:
    """Input and atom sprite sheets for image rows."""
    h, w = image_shape[:2]
    colour = len(image_shape) == 3
    lay = sprites.layout(len(X_sel), h, w)
    tiles = sprites.input_tiles(X_sel, image_shape, lo, hi)
    sheets = sprites.pack(tiles, lay)
    css = [(f"sp{s}", sprites.png_data_uri(sheet)) for s, sheet in enumerate(sheets)]
    alay = sprites.layout(len(atoms), h, w)
    palette = None if colour else sprites.DIVERGING
    css += [
        (f"sa{s}", sprites.png_data_uri(sheet, palette))
        for s, sheet in enumerate(sprites.pack(sprites.atom_tiles(atoms, image_shape), alay))
    ]
    grid = {"h": h, "w": w, "colour": colour}
    return {
        "image": grid,
        "sheet": {"cols": lay.cols, "rows": lay.rows, "per": lay.per_sheet},
        "atom_sheet": {"cols": alay.cols, "rows": alay.rows, "per": alay.per_sheet},
    }, css


def _plot_visuals(X_sel, atoms, lo, hi) -> dict:
    """Inputs and atoms as uint8 series (base64) for the page's line/bar plots."""
    X_sel = np.asarray(X_sel, dtype=np.float64)
    xs = _binned(X_sel, MAX_PLOT_POINTS)
    scaled = (xs - lo) / (hi - lo) if hi > lo else np.zeros_like(xs)
    q_atoms, _ = sprites.signed_bytes(_binned(np.asarray(atoms, dtype=np.float64), MAX_PLOT_POINTS))
    return {
        "image": None,
        "plot": {
            "points": int(q_atoms.shape[1]),
            "binned": bool(atoms.shape[1] > MAX_PLOT_POINTS),
            "lo": float(lo),
            "hi": float(hi),
            "inputs": _b64((np.clip(scaled, 0, 1) * 255).round()),
            "atoms": _b64(q_atoms),
        },
    }


def _overview(H, st, threshold) -> dict:
    """The overview's numbers: L0 summary, dead/dense counts, the two histograms."""
    l0 = sample_l0(H, threshold)
    return {
        "mean_l0": float(f"{l0.mean():.4g}") if len(l0) else 0.0,
        "median_l0": float(np.median(l0)) if len(l0) else 0.0,
        "dead": int(st["dead"].sum()),
        "dense": int(st["dense"].sum()),
        "dense_cut": DENSE_CUT,
        # the units themselves: the table's frequencies are rounded to 4 digits, and a unit
        # just over the cut read as not dense there while the count above included it
        "dense_units": np.flatnonzero(st["dense"]).tolist(),
        "l0": l0_histogram(l0),
        "freq": frequency_histogram(st["frequency"], len(H)),
    }


def build_payload(
    H: np.ndarray,
    atoms: np.ndarray,
    X_display: np.ndarray,
    *,
    y: np.ndarray | None,
    classes: list[str] | None,
    image_shape: tuple[int, ...] | None,
    contribution: np.ndarray | None,
    threshold: float,
    top_n: int,
    sample_ids: np.ndarray | None = None,
) -> tuple[dict, list[tuple[str, str]]]:
    """(data for the page's script, [(css class, PNG data URI)] sprite sheets); ``sample_ids``:
    each row's number as the user knows it (its row in the data the rows were sampled from)."""
    st = unit_stats(H, atoms, y, threshold, n_classes=len(classes) if y is not None else None)
    if contribution is not None:
        st["contribution"] = np.asarray(contribution, dtype=np.float64)
    tops = top_samples(H, top_n, threshold)
    unique, tiles = sprites.dedup(tops)
    X_sel = np.asarray(X_display)[unique]
    lo, hi = float(np.min(X_display)), float(np.max(X_display))
    a_lo, a_hi, a_counts = activation_histograms(H, threshold)
    data = {
        "N": int(H.shape[0]),
        "M": int(H.shape[1]),
        "D": int(atoms.shape[1]),
        "threshold": threshold,
        "top_n": top_n,
        "contribution_given": contribution is not None,
        "classes": list(classes) if y is not None else None,
        "overview": _overview(H, st, threshold),
        "units": _units(st, y is not None),
        "top": [t.tolist() for t in tiles],
        "act": [_r4(H[t, j]) for j, t in enumerate(tops)],
        "hist": {"lo": _r4(a_lo), "hi": _r4(a_hi), "counts": a_counts.tolist()},
        "samples": (unique if sample_ids is None else np.asarray(sample_ids)[unique]).tolist(),
    }
    if y is not None:
        data["sample_label"] = np.asarray(y)[unique].astype(int).tolist()
        base = np.bincount(np.asarray(y, dtype=np.int64), minlength=len(classes)) / len(y)
        data["base"] = _r4(base)
        data["mix"] = _class_mix(st["class_counts"])
    if image_shape is not None:
        visuals, css = _image_visuals(X_sel, atoms, image_shape, lo, hi)
    else:
        visuals, css = _plot_visuals(X_sel, atoms, lo, hi), []
    data.update(visuals)
    return data, css
