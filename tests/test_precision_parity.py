"""bf16 training lands where float32 training does (issue 10, item 4), on digits with loose
bounds: the benchmark (benchmarks/precision_parity.py) holds the tight ones on MNIST/OPTDIGITS."""

import warnings

import numpy as np
import pytest

from psae import SparseAutoencoder, metrics

# Three mechanisms with different code paths: the sigmoid penalty with its σ stages, a hard
# top-k and a thresholded ReLU with its straight-through threshold gradient.
MODELS = {"sql0": {}, "topk": {"k": 8}, "jumprelu": {}}


def _score(model, Xtr, Xte, ytr, yte) -> dict:
    H = model.transform(Xte)
    r = metrics.evaluate(Xte, H, model.inverse_transform(H), H_train=model.transform(Xtr),
                         y_train=ytr, y=yte)
    return {"L0_mean": r["L0"]["mean"], **{k: float(r[k]) for k in ("CA", "S", "RE")}}


@pytest.mark.parametrize("penalty", list(MODELS))
def test_bf16_quality_matches_float32_on_digits(digits, penalty):
    Xtr, Xte, ytr, yte = digits
    scores = {}
    for precision in ("fp32", "bf16"):
        with warnings.catch_warnings():  # explicit bf16 on a CPU without bf16 units still runs
            warnings.simplefilter("ignore", UserWarning)
            m = SparseAutoencoder(n_components=64, penalty=penalty, epochs=60, random_state=0,
                                  precision=precision, device="cpu", **MODELS[penalty]).fit(Xtr)
        assert m.precision_ == precision
        scores[precision] = _score(m, Xtr, Xte, ytr, yte)
    a, b = scores["fp32"], scores["bf16"]
    assert np.isfinite(list(b.values())).all()
    assert abs(b["CA"] - a["CA"]) <= 0.03, scores
    assert abs(b["S"] - a["S"]) <= 0.05, scores
    assert abs(b["L0_mean"] - a["L0_mean"]) <= 0.2 * a["L0_mean"], scores
    assert b["RE"] <= 1.25 * a["RE"], scores
