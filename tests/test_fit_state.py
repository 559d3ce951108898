"""What a fit leaves behind: a failed refit keeps the model it was replacing, short fits still
steer, epoch records weigh every row alike, and the fitted attributes say what ran."""

import numpy as np
import pytest

from psae import InputError, ParameterError, SparseAutoencoder
from psae.training import trainer as trainer_module
from psae.training.monitor import MIN_PERIODS, L0Controller


def _rows(n=60, d=8, seed=0):
    return np.random.default_rng(seed).random((n, d)).astype(np.float32)


def _steered(**kw):
    return SparseAutoencoder(n_components=6, epochs=8, threads=1, random_state=3, device="cpu",
                             penalty="l1", target_l0=2.0, **kw)


def _snapshot(model):
    return {k: v for k, v in vars(model).items() if k.endswith("_")}


def _same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else
               (a[k] == b[k] if not isinstance(a[k], dict) else
                all(np.array_equal(a[k][j], b[k][j]) for j in a[k]))
               for k in a)


def test_a_refit_refused_after_it_began_leaves_the_fitted_model_as_it_was():
    X = _rows()
    model = _steered().fit(X)
    before, codes = _snapshot(model), model.transform(X)
    assert model.inference_threshold_ is not None
    model.set_params(early_stopping=True)
    with pytest.raises(ParameterError, match="at least"):
        model.fit(X[:3])  # too few rows to hold out: refused inside fit, after it started
    assert _same(before, _snapshot(model))
    np.testing.assert_array_equal(model.transform(X), codes)


def test_an_interrupted_refit_leaves_the_fitted_model_and_a_first_fit_none(monkeypatch):
    X = _rows()
    model = _steered().fit(X)
    before, codes = _snapshot(model), model.transform(X)
    real = trainer_module.Trainer.epoch
    calls = {"n": 0}

    def interrupted(self, batches, generator):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, batches, generator)

    monkeypatch.setattr(trainer_module.Trainer, "epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.set_params(batch_size=16).fit(X)
    assert _same(before, _snapshot(model)) and model.batch_size_ != 16
    np.testing.assert_array_equal(model.transform(X), codes)

    calls["n"] = 0
    fresh = _steered()
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(X)
    assert _snapshot(fresh) == {}
    with pytest.raises(Exception, match="not fitted"):
        fresh.transform(X)


def test_a_fit_shorter_than_one_controller_period_still_steers():
    """60 rows in batches of 16 for 6 epochs are 24 steps, under the 50-step period: the
    knob never moved before."""
    c = L0Controller({"beta": 1.0}, ("beta", 1.0), target=2.0, period=50)
    c.start(24)
    assert c.period == max(1, 24 // MIN_PERIODS)
    for _ in range(24):
        c.update(6.0)
    assert c.weight > 1.0  # pushed sparser
    model = _steered(raw_codes=True, batch_size=16).set_params(epochs=6).fit(_rows())
    start = SparseAutoencoder(penalty="l1").get_params()["beta"]
    assert model.penalty_weight_ != pytest.approx(start)


def test_a_long_fit_keeps_the_asked_period():
    c = L0Controller({"beta": 1.0}, ("beta", 1.0), target=2.0, period=105)
    c.start(2110)  # MNIST's PSAE schedule in the matched protocol
    assert c.period == 105


@pytest.mark.parametrize("n", [256, 129])
def test_epoch_records_weigh_every_row_alike(n):
    """With a step size too small to move anything, an epoch's record is the whole set's
    value, whatever the short last batch holds."""
    X = _rows(n)
    model = SparseAutoencoder(n_components=6, penalty="topk", k=3, epochs=1, batch_size=128,
                              learning_rate=1e-12, threads=1, random_state=0,
                              device="cpu").fit(X)
    rec = model.history_[-1]
    H = model.transform(X)
    assert rec["l0"] == pytest.approx(float((np.abs(H) > 0.01).sum(axis=1).mean()), rel=1e-4)
    recon = float(((X - model.inverse_transform(H)) ** 2).sum(axis=1).mean())
    assert rec["reconstruction"] == pytest.approx(recon, rel=1e-3)


def test_a_one_row_memmap_is_refused_as_an_array_is(tmp_path):
    np.save(tmp_path / "one.npy", _rows(1))
    X = np.load(tmp_path / "one.npy", mmap_mode="r")
    with pytest.raises(InputError, match="minimum of 2"):
        SparseAutoencoder(n_components=4, epochs=4, threads=1, device="cpu").fit(X)


def test_lbfgs_reports_the_whole_set_as_its_batch():
    X = _rows(300)
    model = SparseAutoencoder(n_components=4, solver="lbfgs", epochs=4, threads=1,
                              random_state=0, device="cpu").fit(X)
    assert model.batch_size_ == 300


def test_a_tensor_that_requires_grad_is_read_as_its_values():
    import torch

    X = torch.from_numpy(_rows()).requires_grad_(True)
    model = SparseAutoencoder(n_components=4, epochs=4, threads=1, random_state=0,
                              device="cpu").fit(X)
    np.testing.assert_array_equal(model.transform(X), model.transform(X.detach().numpy()))
