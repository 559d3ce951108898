"""How a run's models and data sets are named in every table, figure and claim."""

from __future__ import annotations

from .. import sparsity

__all__ = ["models", "penalty_of", "label_of", "model_label", "dataset_label", "dataset_keys",
           "not_computed"]


def model_label(results: dict, model: str) -> str:
    """Display name of a model (``model_labels`` entry, else the key)."""
    return str((results.get("model_labels") or {}).get(model, model))


def dataset_label(results: dict, dataset: str) -> str:
    """Display name of a data set (its ``label``, else the key)."""
    info = (results.get("datasets") or {}).get(dataset) or {}
    return str(info.get("label") or dataset)


def dataset_keys(results: dict) -> list[str]:
    """Data sets in plot order: ``datasets`` keys, then any others seen in summary/final."""
    keys = list((results.get("datasets") or {}).keys())
    for ds in (results.get("summary") or {}).keys():
        if ds not in keys:
            keys.append(ds)
    for run in results.get("final") or []:
        ds = run.get("dataset")
        if ds is not None and ds not in keys:
            keys.append(ds)
    return keys


def not_computed(results: dict, dataset: str, metric: str) -> str | None:
    """Why ``metric`` was not computed on ``dataset`` (CA of data without labels), or None."""
    info = (results.get("datasets") or {}).get(dataset) or {}
    return "not computed: no labels" if metric == "CA" and info.get("labels") is False else None


def models() -> tuple[str, ...]:
    """Model names of the reproduction (the registry's keys: rae, l1, kl, psae, l0, ...)."""
    return sparsity.keys()


def penalty_of(model: str) -> str:
    """The ``SparseAutoencoder`` penalty of a reproduction model name (``"psae"`` → sql0)."""
    return sparsity.by_key(model).name


def label_of(model: str) -> str:
    """Display name of a reproduction model (``"psae"`` → PSAE)."""
    return sparsity.by_key(model).label
