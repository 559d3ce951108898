"""Thumbnails packed into a few PNG sprite sheets, embedded as ``data:`` URIs.

One image per example would mean thousands of data URIs (each decoded separately, each with
its PNG overhead); a few large sheets compress better and the page addresses a tile with CSS
``background-position``. Samples shared between units are stored once (:func:`dedup`).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = [
    "SheetLayout",
    "dedup",
    "layout",
    "pack",
    "png_data_uri",
    "input_tiles",
    "atom_tiles",
    "signed_bytes",
    "DIVERGING",
]

# a sheet side stays under this many pixels: large enough for few sheets, small enough that
# every browser decodes it without tiling tricks
MAX_SHEET_PX = 2048

# RdBu-like stops, blue for negative, near-white at 0, red for positive
_STOPS = np.array(
    [[5, 48, 97], [67, 147, 195], [247, 247, 247], [214, 96, 77], [103, 0, 31]], dtype=float
)


def _diverging_palette() -> np.ndarray:
    """256 RGB colours; index 128 is 0, 1 is -max, 255 is +max (index 0 repeats 1)."""
    t = np.clip((np.arange(256) - 128) / 127, -1, 1)
    pos = (t + 1) / 2 * (len(_STOPS) - 1)
    return (
        np.stack([np.interp(pos, np.arange(len(_STOPS)), _STOPS[:, c]) for c in range(3)], axis=1)
        .round()
        .astype(np.uint8)
    )


DIVERGING = _diverging_palette()


@dataclass(frozen=True)
class SheetLayout:
    """Tile grid of the sheets: ``cols`` x ``rows`` tiles of ``tile_h`` x ``tile_w`` pixels;
    tile t lies on sheet ``t // per_sheet`` at row ``(t % per_sheet) // cols``."""

    n_tiles: int
    tile_h: int
    tile_w: int
    cols: int
    rows: int

    @property
    def per_sheet(self) -> int:
        return self.cols * self.rows

    @property
    def n_sheets(self) -> int:
        return -(-self.n_tiles // self.per_sheet) if self.n_tiles else 0

    def position(self, t: int) -> tuple[int, int, int]:
        """(sheet, row, col) of tile ``t``."""
        sheet, r = divmod(t, self.per_sheet)
        return sheet, r // self.cols, r % self.cols


def layout(n_tiles: int, tile_h: int, tile_w: int, max_px: int = MAX_SHEET_PX) -> SheetLayout:
    """A grid with at most ``max_px`` pixels a side; small sets get a near-square single sheet
    rather than one long strip."""
    cap_c, cap_r = max(1, max_px // tile_w), max(1, max_px // tile_h)
    if n_tiles <= cap_c * cap_r:
        cols = min(cap_c, max(1, int(np.ceil(np.sqrt(max(n_tiles, 1) * tile_h / tile_w)))))
        rows = max(1, -(-max(n_tiles, 1) // cols))
        return SheetLayout(n_tiles, tile_h, tile_w, cols, min(rows, cap_r))
    return SheetLayout(n_tiles, tile_h, tile_w, cap_c, cap_r)


def dedup(tops: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Samples appearing in any unit's top list, once each (sorted), and every list rewritten
    as positions into that array (= tile indices)."""
    nonempty = [t for t in tops if len(t)]
    unique = np.unique(np.concatenate(nonempty)) if nonempty else np.zeros(0, dtype=np.int64)
    return unique, [np.searchsorted(unique, t).astype(np.int64) for t in tops]


def pack(tiles: np.ndarray, lay: SheetLayout) -> list[np.ndarray]:
    """Tiles (n, h, w) or (n, h, w, 3) uint8 laid out on sheets; unused cells stay 0."""
    sheets = []
    h, w = lay.tile_h, lay.tile_w
    for s in range(lay.n_sheets):
        chunk = tiles[s * lay.per_sheet : (s + 1) * lay.per_sheet]
        rows = lay.rows if s < lay.n_sheets - 1 else -(-len(chunk) // lay.cols)
        grid = np.zeros((rows * lay.cols, *tiles.shape[1:]), dtype=np.uint8)
        grid[: len(chunk)] = chunk
        grid = grid.reshape(rows, lay.cols, h, w, *tiles.shape[3:]).swapaxes(1, 2)
        sheets.append(grid.reshape(rows * h, lay.cols * w, *tiles.shape[3:]))
    return sheets


def png_data_uri(sheet: np.ndarray, palette: np.ndarray | None = None) -> str:
    """A sheet as a base64 PNG ``data:`` URI (grey, RGB, or palette-indexed when ``palette``)."""
    if palette is not None:
        img = Image.frombytes("P", (sheet.shape[1], sheet.shape[0]), sheet.tobytes())
        img.putpalette(palette.reshape(-1).tolist())
    else:
        img = Image.fromarray(sheet)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=9)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def input_tiles(X: np.ndarray, image_shape: tuple[int, ...], lo: float, hi: float) -> np.ndarray:
    """Rows of ``X`` as uint8 images, ``lo`` -> 0 and ``hi`` -> 255 (one scale for all samples
    so brightness compares across thumbnails)."""
    X = np.asarray(X, dtype=np.float64)
    scaled = (X - lo) / (hi - lo) if hi > lo else np.zeros_like(X)
    return (np.clip(scaled, 0, 1) * 255).round().astype(np.uint8).reshape(len(X), *image_shape)


def signed_bytes(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``A`` as uint8 with 0 at 128 and each row's max |a| at 1 / 255; and that max."""
    A = np.asarray(A, dtype=np.float64)
    peak = np.abs(A).max(axis=1) if A.size else np.zeros(len(A))
    safe = np.where(peak > 0, peak, 1.0)[:, None]
    return (128 + np.round(127 * A / safe)).clip(1, 255).astype(np.uint8), peak


def atom_tiles(atoms: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """Atoms as images, each scaled by its own max |a| with 0 at index/grey 128; single-channel
    atoms index :data:`DIVERGING`, colour atoms are shown as grey-centred RGB."""
    q, _ = signed_bytes(atoms)
    return q.reshape(len(q), *image_shape)
