"""Saving and loading a whole fitted unit: an autoencoder, or a pipeline of its preprocessing
(:class:`~psae.Normalizer`) and the autoencoder.

``psae.save(obj, path)`` writes either; ``psae.load(path)`` returns it: the fitted steps, their
step names, their ``set_output``, and a DataFrame's column names.
The CLI and the API write the same format (:mod:`psae.persistence`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

from . import model_files, persistence
from .errors import ModelFormatError
from .estimator import SparseAutoencoder
from .preprocessing import Normalizer

__all__ = ["save", "load", "load_with_extra", "split", "pipeline"]


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
    if isinstance(obj, Pipeline):  # load gives back these step names, not its defaults
        config["pipeline_steps"] = [n for n, s in obj.steps if s not in (None, "passthrough")]
    # each step's own set_output: the autoencoder fitted on a normaliser's DataFrame expects
    # one again, so the two settings come back together or not at all
    for key, step in (("transform_output", model), ("normalizer_transform_output", normalizer)):
        if step is not None and (output := _output(step)) is not None:
            config[key] = output
    if normalizer is not None and hasattr(normalizer, "feature_names_in_"):
        # the column check a loaded pipeline keeps: reordered columns are refused, not encoded
        config["normalizer_feature_names"] = [str(n) for n in normalizer.feature_names_in_]
    if extra:
        config["extra"] = extra
    return persistence.write_model(path, config, arrays, force=force,
                                   normalizer=None if normalizer is None else normalizer._state())


def _output(est) -> str | None:
    """What ``set_output(transform=...)`` asked of ``est`` (None: the default)."""
    value = (getattr(est, "_sklearn_output_config", None) or {}).get("transform")
    return None if value in (None, "default") else str(value)


def pipeline(normalizer: Normalizer | None, model: SparseAutoencoder,
             names: list[str] | None = None):
    """``model`` with its preprocessing as :func:`load` gives it back: the autoencoder alone
    without a normalizer (unless saved as a one-step pipeline), else ``Pipeline`` steps
    ``names``, by default ``"normalizer"``, ``"autoencoder"``."""
    if names is None:
        if normalizer is None:
            return model
        names = ["normalizer", "autoencoder"]
    steps = [model] if normalizer is None else [normalizer, model]
    return Pipeline(list(zip(names, steps, strict=True)))


def load(path: str | os.PathLike[str], device: str | None = None):
    """What :func:`save` wrote: a ``SparseAutoencoder``, or a ``Pipeline`` of its
    ``Normalizer`` and the ``SparseAutoencoder`` (:func:`split` takes it apart again), under
    the step names and with the ``set_output`` it was saved with. Anything else of a pipeline
    (memory, verbose) is not kept."""
    return load_with_extra(path, device)[0]


def load_with_extra(path: str | os.PathLike[str], device: str | None = None
                    ) -> tuple[object, dict]:
    """:func:`load`'s model and the ``extra`` saved beside it (``{}`` where none), from one
    read of the folder."""
    config, arrays, part = persistence.read_bundle(path)
    cfg_file = str(Path(path) / persistence.CONFIG)
    model = model_files.from_state(SparseAutoencoder, config, arrays, cfg_file, device)
    normalizer = None if part is None else Normalizer._from_state(
        *part, where=str(Path(path) / persistence.NORMALIZER))
    if normalizer is not None:
        _restore_normalizer_names(normalizer, config, cfg_file)
        if normalizer.n_features_in_ != model.n_features_in_:
            raise ModelFormatError(
                f"{path}: the normalizer takes {normalizer.n_features_in_} features and the "
                f"autoencoder {model.n_features_in_}: the files were altered or mixed from "
                "two models; save the pipeline again")
    names = _step_names(config, 1 if normalizer is None else 2, cfg_file)
    obj = pipeline(normalizer, model, names)
    for key, step in (("transform_output", model), ("normalizer_transform_output", normalizer)):
        output = config.get(key)
        if output is None or step is None:
            continue
        try:
            step.set_output(transform=output)
        except ValueError as e:
            raise ModelFormatError(f"{cfg_file}: field {key!r} is not an output this "
                                   f"scikit-learn knows ({e})") from e
    return obj, config.get("extra") or {}


def _restore_normalizer_names(normalizer: Normalizer, config: dict, file: str) -> None:
    names = config.get("normalizer_feature_names")
    if names is None:
        return
    if not (isinstance(names, list) and len(names) == normalizer.n_features_in_
            and all(isinstance(n, str) for n in names)):
        raise ModelFormatError(f"{file}: field 'normalizer_feature_names' must be "
                               f"{normalizer.n_features_in_} strings (one per feature)")
    normalizer.feature_names_in_ = np.asarray(names, dtype=object)


def _step_names(config: dict, n: int, file: str) -> list[str] | None:
    names = config.get("pipeline_steps")
    if names is None:
        return None
    if not (isinstance(names, list) and len(names) == n and len(set(names)) == n
            and all(isinstance(x, str) and x and "__" not in x for x in names)):
        raise ModelFormatError(f"{file}: field 'pipeline_steps' must be {n} distinct step "
                               f"names, got {names!r}")
    return names
