"""What every figure of a report shares: its resolution, the models' colours, atomic saving."""

from __future__ import annotations

from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure

from ..io.atomic import atomic_write

__all__ = ["DPI", "model_colors", "run_models", "save_figure"]


DPI = 110


def run_models(results: dict) -> list[str]:
    """The run's models, then any other seen in its final fits."""
    models = list(results.get("models") or [])
    for run in results.get("final") or []:
        m = run.get("model")
        if m is not None and m not in models:
            models.append(m)
    return models


def model_colors(results: dict) -> dict[str, tuple]:
    """One tab10 colour per model, the same in every figure of a run."""
    cmap = colormaps["tab10"]
    return {m: cmap(i % 10) for i, m in enumerate(run_models(results))}


def save_figure(fig: Figure, out_dir: Path, name: str) -> str:
    """Save ``fig`` atomically as figures/<name>.png; return its path relative to out_dir."""
    atomic_write(out_dir / "figures" / f"{name}.png",
                 lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    return f"figures/{name}.png"
