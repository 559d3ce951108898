"""Saving and loading a whole fitted unit: an autoencoder, or a pipeline of its preprocessing
(:class:`~psae.Normalizer`) and the autoencoder.

``psae.save(obj, path)`` writes either; ``psae.load(path)`` returns exactly what was saved.
The CLI and the API write the same format (:mod:`psae.persistence`).
"""

from __future__ import annotations

import os
from pathlib import Path

from sklearn.pipeline import Pipeline

from . import model_files, persistence
from .estimator import SparseAutoencoder
from .preprocessing import Normalizer

__all__ = ["save", "load", "split", "pipeline"]


def split(obj) -> tuple[Normalizer | None, SparseAutoencoder]:
    """``(normalizer or None, autoencoder)`` of a fitted autoencoder or a pipeline
    ``[Normalizer,] SparseAutoencoder``; anything else is a TypeError that says what fits."""
    if isinstance(obj, SparseAutoencoder):
        return None, obj
    if isinstance(obj, Pipeline):
        steps = [s for _, s in obj.steps if s not in (None, "passthrough")]
        if len(steps) == 1 and isinstance(steps[0], SparseAutoencoder):
            return None, steps[0]
        if len(steps) == 2 and isinstance(steps[0], Normalizer) \
                and isinstance(steps[1], SparseAutoencoder):
            return steps[0], steps[1]
    raise TypeError(f"psae.save takes a SparseAutoencoder or a Pipeline of Normalizer and "
                    f"SparseAutoencoder, got {type(obj).__name__}")


def save(obj, path: str | os.PathLike[str], *, force: bool = False, extra: dict | None = None
         ) -> Path:
    """Write a fitted autoencoder or ``Pipeline(Normalizer, SparseAutoencoder)`` to ``path``.

    ``extra`` (JSON-able) is stored beside the config, e.g. where the training data came from.
    A directory holding files psae did not write is refused unless ``force``.
    """
    normalizer, model = split(obj)
    config, arrays = model_files.state(model)
    if extra:
        config["extra"] = extra
    return persistence.write_model(path, config, arrays, force=force,
                                   normalizer=None if normalizer is None else normalizer._state())


def pipeline(normalizer: Normalizer | None, model: SparseAutoencoder):
    """``model`` with its preprocessing as :func:`load` gives it back: the autoencoder alone
    without a normalizer, else ``Pipeline`` steps ``"normalizer"``, ``"autoencoder"``."""
    if normalizer is None:
        return model
    return Pipeline([("normalizer", normalizer), ("autoencoder", model)])


def load(path: str | os.PathLike[str], device: str | None = None):
    """Exactly what :func:`save` wrote: a ``SparseAutoencoder``, or a ``Pipeline`` of its
    ``Normalizer`` and the ``SparseAutoencoder`` (:func:`split` takes it apart again)."""
    config, arrays, part = persistence.read_bundle(path)
    model = model_files.from_state(SparseAutoencoder, config, arrays,
                                   str(Path(path) / persistence.CONFIG), device)
    normalizer = None if part is None else Normalizer._from_state(
        *part, where=str(Path(path) / persistence.NORMALIZER))
    return pipeline(normalizer, model)
