"""The comparison from Python: what ``psae reproduce`` does, without the command line.

>>> from psae.reproduce import compare
>>> res = compare("digits", protocol="matched", models=["psae", "topk"], quick=True,
...               out="runs/compare")                                  # doctest: +SKIP
>>> res.to_frame().groupby(["model", "target"])[["L0_mean", "FVU", "CA"]].mean()  # +SKIP

``data`` is a named data set, a file psae reads, or arrays ``(X, y)`` / ``X`` (anything
``np.asarray`` takes: a DataFrame, a Series of labels), saved once as an ``.npz`` in psae's
cache directory under their checksum, so the report names a file that stays and the same
arrays resume the same run. The run folder is written as by the command (cells,
results, figures, report), and :class:`Results` reads it back.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ..errors import InputError, ParameterError
from ..io.atomic import atomic_write
from ..measures import VIEWS

__all__ = ["compare", "Results"]


@dataclass(frozen=True)
class Results:
    """A finished run, read-only: ``data`` is its ``results.json``; ``out`` its folder."""

    data: Mapping[str, Any]
    out: Path

    @classmethod
    def from_folder(cls, out: str | os.PathLike[str]) -> Results:
        """The results of the run in ``out`` (its ``results.json``)."""
        path = Path(out) / "results.json"
        if not path.is_file():
            raise InputError(f"{out}: no results.json (not a finished psae reproduce run)")
        return cls(MappingProxyType(json.loads(path.read_text(encoding="utf-8"))), Path(out))

    @property
    def report(self) -> Path:
        return self.out / "report.html"

    def rows(self) -> list[dict[str, Any]]:
        """One tidy row per fitted cell (the paper protocol's final fits, the matched
        protocol's cells): data set, protocol, model, target or grid point, seed, every
        measure of the CSV view, epochs, seconds and whether the rule stopped it."""
        out = []
        for protocol, cells in (("paper", self.data.get("final") or []),
                                ("matched", self.data.get("matched") or [])):
            for c in cells:
                test = c.get("test") or {}
                l0 = test.get("L0") if isinstance(test.get("L0"), dict) else {}
                row = {"dataset": c["dataset"], "protocol": protocol, "model": c["model"],
                       "target": c["point"] if protocol == "matched" else None,
                       "point": c["point"] if protocol == "paper" else None,
                       "seed": c["seed"]}
                for k in VIEWS["csv"]:
                    row[k] = l0.get(k[3:]) if k in ("L0_mean", "L0_std") else test.get(k)
                row.update(n_epochs=c.get("n_epochs"), fit_seconds=c.get("fit_seconds"),
                           stopped_early=c.get("stopped_early"), error=c.get("error"))
                out.append(row)
        return out

    def to_frame(self):
        """:meth:`rows` as a pandas DataFrame (pandas is needed for this one method)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("Results.to_frame needs pandas: pip install pandas (or use "
                              "Results.rows(), a list of dicts)") from e
        return pd.DataFrame(self.rows())


def _arrays_file(data, name: str, data_dir: str | None) -> str:
    """``(X, y)`` or ``X`` saved as ``<cache>/arrays/<sha256>/<name>.npz``, ``<cache>`` being
    the data sets' decoded-array cache (``$PSAE_CACHE``, else beside the data): a path that
    stays valid (the report names it) and the same for the same arrays (a run on them
    resumes). Labels of any kind (strings, a pandas Series) are saved as text, never pickled."""
    from ..datasets import data_root
    from ..datasets.cache import resolve_cache_dir

    if isinstance(data, tuple):
        if len(data) != 2:
            raise ParameterError(f"data as arrays is X or (X, y), got a tuple of {len(data)}")
        X, y = data
    else:
        X, y = data, None
    arrays = {"X": np.asarray(X)}
    if y is not None:
        y = np.asarray(y)
        arrays["y"] = y.astype(str) if y.dtype == object else y
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    raw = buf.getvalue()
    digest = hashlib.sha256(raw).hexdigest()[:16]
    path = resolve_cache_dir(True, data_root(data_dir)) / "arrays" / digest / f"{name}.npz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, raw)
    return str(path)


def compare(data: str | os.PathLike[str] | np.ndarray | tuple = "digits", *,
            protocol: str = "matched", models: Sequence[str] | None = None, seeds: int = 1,
            quick: bool = False, out: str | os.PathLike[str] = "runs/compare",
            data_dir: str | None = None, epochs: int | None = None,
            n_components: int | None = None, device: str = "auto",
            threads: int | str = "auto", jobs: int = 1, resume: bool = False,
            force: bool = False, progress: bool = False, name: str = "data") -> Results:
    """Run a protocol (``"matched"``, ``"paper"``, ``"both"`` or one registered with
    :func:`psae.reproduce.protocols.register`) on ``data`` for ``models``
    (default: all) with ``seeds`` seeds, write the run folder ``out`` as ``psae reproduce``
    does, and return its :class:`Results`. The parameters are the command's options (``jobs``:
    cells fitted at once, in worker processes); ``name`` is the data set's name in the results
    when ``data`` is arrays."""
    from . import models as all_models
    from .paper.settings import DATASETS
    from .runner import RunConfig, run

    if isinstance(data, tuple) or (hasattr(data, "__array__")
                                   and not isinstance(data, str | os.PathLike)):
        named, files, what = [], [_arrays_file(data, name, data_dir)], "arrays"
    elif str(data) in DATASETS:
        named, files, what = [str(data)], [], repr(str(data))
    else:
        named, files, what = [], [str(data)], repr(str(data))
    cfg = RunConfig(datasets=named, models=list(models or all_models()), out=Path(out),
                    seeds=seeds, data_dir=data_dir, quick=quick, device=device,
                    resume=resume, progress=progress, command=f"psae.reproduce.compare({what}, "
                    f"protocol={protocol!r})",
                    overrides={"epochs": epochs, "n_components": n_components},
                    threads=threads, jobs=jobs, data=files, protocol_name=protocol,
                    force=force)
    run(cfg)
    return Results.from_folder(out)
