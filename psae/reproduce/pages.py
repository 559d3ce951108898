"""What a reproduction leaves for each (data set, model) besides numbers: the seed-0 final
model (``models/<data set>__<model>/``, re-usable with ``psae.load``) and its feature-explorer
page on a bounded, stratified sample of the test split (``explore/<data set>__<model>/``)."""

from __future__ import annotations

from pathlib import Path

from .. import bundle, persistence
from ..explore.model_page import write_model_page
from ..metrics import DEFAULT_THRESHOLD
from .labels import dataset_label, model_label

__all__ = ["EXPLORE_SAMPLES", "EXPLORE_VALUES", "explore_rows", "model_dir", "page_dir",
           "save_final_model", "write_pages"]

# rows per page: at most 2,000 and at most 2,000 MNIST images' worth of values (510 CIFAR-10
# images): measured, MNIST at M = 500 gives 0.7 MB, CIFAR-10 at M = 400 under 3 MB even with
# every row among some unit's top inputs
EXPLORE_SAMPLES = 2000
EXPLORE_VALUES = 2000 * 784


def explore_rows(n_features: int) -> int:
    """How many test rows a run's explorer page shows at most, for rows of ``n_features``."""
    return max(1, min(EXPLORE_SAMPLES, EXPLORE_VALUES // max(n_features, 1)))


def model_dir(out: Path, dataset: str, model: str) -> Path:
    return Path(out) / "models" / f"{dataset}__{model}"


def page_dir(out: Path, dataset: str, model: str) -> Path:
    return Path(out) / "explore" / f"{dataset}__{model}"


def save_final_model(out: Path, dataset: str, model: str, normalizer, est, extra: dict) -> None:
    """The seed-0 final model with its preprocessing, as ``psae fit`` would write it."""
    bundle.save(bundle.pipeline(normalizer, est), model_dir(out, dataset, model), extra=extra)


def _page(out: Path, results: dict, ds: str, m: str, sp) -> dict:
    mdir, what = model_dir(out, ds, m), "retrained on all training rows"
    if not persistence.is_model_dir(mdir):  # a matched run keeps the model at one target
        target = ((results.get("matched_protocol") or {}).get(ds) or {}).get("explore_target")
        mdir = model_dir(out, ds, f"{m}_matched")
        what = f"trained to mean L0 {target} (matched protocol)" if m != "rae" else "dense"
    if not persistence.is_model_dir(mdir):
        return {"missing": "no seed-0 final model saved (the fit failed, or the run predates "
                           "saved models)"}
    n, cap = len(sp.X_test), explore_rows(sp.X_test.shape[1])
    label = dataset_label(results, ds)
    name = model_label(results, m)
    meta = {"model": f"{name}, seed 0, {what}",
            "data": f"{label}, test split: "
                    + (f"{cap} of {n} rows (stratified)" if n > cap else f"all {n} rows"),
            "model directory": f"models/{mdir.name} (psae.load)"}
    path, shown = write_model_page(page_dir(out, ds, m), bundle.load(mdir), sp.X_test,
                                   sp.y_test, classes=sp.classes, image_shape=sp.shape,
                                   max_samples=cap, title=f"{label}: {name}", meta=meta,
                                   threshold=results.get("threshold", DEFAULT_THRESHOLD))
    return {"page": path.relative_to(out).as_posix(), "model_dir": mdir.relative_to(out).as_posix(),
            "bytes": path.stat().st_size, "samples": shown, "of": n}


def write_pages(out: Path, results: dict, splits: dict) -> dict[str, dict[str, dict]]:
    """One explorer page per (data set, model) whose seed-0 final model was saved; for the
    others the reason. Keys: data set, then model; paths relative to ``out``."""
    return {ds: {m: _page(Path(out), results, ds, m, splits[ds]) for m in results["models"]}
            for ds in splits}
