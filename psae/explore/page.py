"""``write_explorer``: check the inputs, build the data, fill the template, write the file."""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .._version import __version__
from ..errors import ParameterError
from ..io.atomic import atomic_write
from ..metrics import DEFAULT_THRESHOLD
from ._assets import asset
from .payload import build_payload

__all__ = ["write_explorer", "render_html"]


def _check_inputs(H, atoms, X_display, y, classes, image_shape, contribution):
    """Arrays of consistent shapes, or a ValueError saying which one is off."""
    H, atoms, X = np.asarray(H), np.asarray(atoms), np.asarray(X_display)
    if H.ndim != 2 or H.shape[0] == 0 or H.shape[1] == 0:
        raise ValueError(f"H must be (N, M) with N, M > 0, got shape {H.shape}")
    N, M = H.shape
    if atoms.ndim != 2 or atoms.shape[0] != M:
        raise ValueError(f"atoms must be ({M}, D), got shape {atoms.shape}")
    if X.ndim != 2 or X.shape[0] != N:
        raise ValueError(f"X_display must be ({N}, D), got shape {X.shape}")
    if not (np.isfinite(H).all() and np.isfinite(atoms).all() and np.isfinite(X).all()):
        raise ValueError("H, atoms and X_display must be finite")
    if image_shape is not None:
        image_shape = tuple(int(s) for s in image_shape)
        if len(image_shape) not in (2, 3) or (len(image_shape) == 3 and image_shape[2] != 3):
            raise ValueError(f"image_shape must be (H, W) or (H, W, 3), got {image_shape}")
        size = int(np.prod(image_shape))
        if X.shape[1] != size or atoms.shape[1] != size:
            raise ValueError(
                f"image_shape {image_shape} has {size} values; X_display rows have "
                f"{X.shape[1]} and atoms {atoms.shape[1]}"
            )
    if y is not None:
        y = np.asarray(y)
        if y.shape != (N,) or not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
            raise ValueError(f"y must be ({N},) non-negative integers")
        k = int(y.max()) + 1
        classes = [str(c) for c in classes] if classes is not None else [str(c) for c in range(k)]
        if len(classes) < k:
            raise ValueError(f"{len(classes)} class names for labels up to {k - 1}")
    if contribution is not None:
        contribution = np.asarray(contribution, dtype=np.float64)
        if contribution.shape != (M,):
            raise ValueError(f"contribution must be ({M},), got {contribution.shape}")
    return H, atoms, X, y, classes, image_shape, contribution


def _meta_html(meta: Mapping[str, object] | None) -> str:
    if not meta:
        return ""
    items = "".join(
        f"<div><dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd></div>"
        for k, v in meta.items()
    )
    return f'<dl class="meta">{items}</dl>'


def render_html(data: dict, sprite_css: Sequence[tuple[str, str]], title: str, meta) -> str:
    """The page as one string. The JSON is made safe inside ``<script>`` by escaping ``<``
    (a ``</script>`` in a class name or meta value must not end the element)."""
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    sprites = "\n".join(f'.{name}{{background-image:url("{uri}")}}' for name, uri in sprite_css)
    slots = {
        "VERSION": html.escape(__version__),
        "TITLE": html.escape(title or "Sparse autoencoder feature explorer"),
        "META": _meta_html(meta),
        "STYLE": asset("style.css"),
        "SPRITES": sprites,
        "SCRIPT": asset("script.js"),
        "DATA": payload,
    }
    # one pass over the template: a "{{...}}" inside user text is never taken for a slot
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: slots[m.group(1)],
                  asset("page.html"))


def write_explorer(
    out_dir: str | os.PathLike[str],
    H: np.ndarray,
    atoms: np.ndarray,
    X_display: np.ndarray,
    *,
    y: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
    image_shape: tuple[int, ...] | None = None,
    contribution: np.ndarray | None = None,
    title: str = "",
    meta: Mapping[str, object] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    top_n: int = 16,
    sample_ids: Sequence[int] | np.ndarray | None = None,
) -> Path:
    """Write ``out_dir/index.html``, a self-contained page exploring the units of a sparse
    code, and return its path.

    ``H`` (N, M) codes, ``atoms`` (M, D) decoder atoms, ``X_display`` (N, D) the same samples
    as the user knows them (thumbnails); ``y`` int labels and ``classes`` their names;
    ``image_shape`` (H, W) or (H, W, 3) draws rows as images, None as line/bar plots;
    ``contribution`` (M,) replaces the default (each unit's share of
    ``sum_j mean_i h_ij^2 ||a_j||^2``); ``meta`` is shown in the header. A code counts as
    active when ``|h| > threshold``; each unit shows its ``top_n`` strongest active inputs.
    ``sample_ids`` (N,): each row's number as the user knows it (its row in the data the rows
    were sampled from), shown on its thumbnails; default 0..N−1.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    if not np.isfinite(threshold) or threshold < 0:
        raise ParameterError(f"threshold must be a finite number >= 0, got {threshold!r}")
    H, atoms, X, y, classes, image_shape, contribution = _check_inputs(
        H, atoms, X_display, y, classes, image_shape, contribution
    )
    if sample_ids is not None:
        sample_ids = np.asarray(sample_ids)
        if sample_ids.shape != (H.shape[0],) or sample_ids.dtype.kind not in "iu":
            raise ParameterError(f"sample_ids must be {H.shape[0]} integers (one per row of H), "
                                 f"got shape {sample_ids.shape} and dtype {sample_ids.dtype}")
    data, sprite_css = build_payload(
        H,
        atoms,
        X,
        y=y,
        classes=classes,
        image_shape=image_shape,
        contribution=contribution,
        threshold=float(threshold),
        top_n=int(top_n),
        sample_ids=sample_ids,
    )
    path = Path(out_dir).expanduser() / "index.html"
    return atomic_write(path, render_html(data, sprite_css, title, meta))
