import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import check_estimator

from psae import Normalizer, SparseAutoencoder, TrainingDivergedError, metrics


def fit(pen, digits, **kw):
    Xtr, Xte, ytr, yte = digits
    model = SparseAutoencoder(n_components=100, penalty=pen, random_state=0, device="cpu", **kw)
    return model.fit(Xtr), model.transform(Xte)


@pytest.fixture(scope="module")
def rae(digits):
    return fit("none", digits)


@pytest.mark.parametrize("penalty", ["l1", "kl", "sql0", "l0"])
def test_each_sparse_penalty_at_defaults_is_sparser_than_rae(penalty, digits, rae):
    _, H_none = rae
    model, H = fit(penalty, digits)
    s_none, s = metrics.mean_sparseness(H_none), metrics.mean_sparseness(H)
    assert s > s_none + 0.1, f"{penalty}: S={s:.3f} vs RAE S={s_none:.3f}"
    # the codes stay useful: a softmax on them still classifies digits well
    Xtr, Xte, ytr, yte = digits
    assert metrics.classification_accuracy(model.transform(Xtr), ytr, H, yte) > 0.9


def test_rae_reconstructs_better_than_psae(digits, rae):
    Xte = digits[1]
    model_none, H_none = rae
    model, H = fit("sql0", digits)
    re_none = metrics.reconstruction_error(Xte, model_none.inverse_transform(H_none))
    re_psae = metrics.reconstruction_error(Xte, model.inverse_transform(H))
    assert re_none < re_psae < 0.0178  # 0.0178: variance of the normalised data, the mean's RE


def test_gnc_runs_every_stage_and_warm_starts(digits):
    model, _ = fit("sql0", digits, sigmas=(1.0, 0.5, 0.2, 0.1), epochs=(8, 4, 4, 4))
    stages = [h["stage"] for h in model.history_]
    assert stages == [0] * 8 + [1] * 4 + [2] * 4 + [3] * 4
    assert [s["sigma"] for s in model.stages_] == [1.0, 0.5, 0.2, 0.1]
    assert model.n_iter_ == 20
    # warm start: each stage's first epoch carries on from where the previous stage ended,
    # not from a fresh random initialisation
    h = model.history_
    for k in (8, 12, 16):
        prev, now = h[k - 1]["reconstruction"], h[k]["reconstruction"]
        assert abs(now - prev) < 0.25 * prev and now < h[0]["reconstruction"]
    # an int total is spread over the stages, the first getting the remainder
    m2, _ = fit("sql0", digits, epochs=10)
    assert [s["epochs"] for s in m2.stages_] == [3, 3, 2, 2]
    m3, _ = fit("l1", digits, epochs=(3, 3, 2, 2))
    assert m3.n_iter_ == 10 and m3.stages_[0]["sigma"] is None


def test_same_seed_same_codes_and_different_seed_differs(digits):
    Xte = digits[1]
    a = SparseAutoencoder(n_components=30, epochs=8, random_state=3, device="cpu")
    b = SparseAutoencoder(n_components=30, epochs=8, random_state=3, device="cpu")
    c = SparseAutoencoder(n_components=30, epochs=8, random_state=4, device="cpu")
    Ha = a.fit(digits[0]).transform(Xte)
    np.testing.assert_array_equal(Ha, b.fit(digits[0]).transform(Xte))
    assert not np.allclose(Ha, c.fit(digits[0]).transform(Xte))


def test_save_load_identical_transform(tmp_path, digits):
    model, H = fit("sql0", digits, epochs=8)
    model.save(tmp_path / "m")
    loaded = SparseAutoencoder.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.transform(digits[1]), H)
    np.testing.assert_array_equal(loaded.inverse_transform(H), model.inverse_transform(H))
    assert loaded.get_params() == model.get_params()
    assert loaded.history_ == model.history_


def test_lbfgs_solver_reduces_the_loss(digits):
    model, _ = fit("sql0", digits, solver="lbfgs", epochs=(10, 5, 5, 5))
    losses = [h["loss"] for h in model.history_ if h["stage"] == 0]
    assert losses[-1] < losses[0]
    assert model.n_iter_ == 25


@pytest.mark.parametrize("act", ["tanh", "relu", "softplus", "identity"])
def test_other_activations_train(act, digits):
    model = SparseAutoencoder(n_components=20, epochs=4, encoder_activation=act,
                              decoder_activation="identity", random_state=0, device="cpu")
    H = model.fit(digits[0]).transform(digits[1])
    assert H.shape == (digits[1].shape[0], 20) and np.isfinite(H).all()


def test_weight_decay_shrinks_weights(digits):
    a, _ = fit("none", digits, epochs=10)
    b, _ = fit("none", digits, epochs=10, weight_decay=1e-2)
    assert np.linalg.norm(b.encoder_weight_) < 0.8 * np.linalg.norm(a.encoder_weight_)


def test_divergence_raises_and_keeps_last_good_parameters():
    X = np.random.default_rng(0).uniform(size=(64, 8)).astype(np.float32) * 1e19
    model = SparseAutoencoder(n_components=4, penalty="none", epochs=3, learning_rate=1e30,
                              encoder_activation="identity", decoder_activation="identity",
                              random_state=0, device="cpu")
    with pytest.raises(TrainingDivergedError, match="loss became"):
        model.fit(X)
    assert np.isfinite(model.encoder_weight_).all()


@pytest.mark.parametrize("epochs", [1, 3])
def test_divergence_in_the_last_step_is_caught(epochs):
    """The last optimizer step is never followed by a training loss: the final check sees it,
    and the kept parameters are ones whose loss was finite."""
    X = np.random.default_rng(0).uniform(size=(64, 8)).astype(np.float32)
    model = SparseAutoencoder(n_components=4, penalty="none", epochs=epochs, learning_rate=1e37,
                              decoder_activation="identity", random_state=0, device="cpu")
    with pytest.raises(TrainingDivergedError):
        model.fit(X)
    assert np.abs(model.decoder_weight_).max() < 10 and np.isfinite(model.score(X))
    assert model.n_iter_ == len(model.history_) <= epochs


def test_pipeline_and_grid_search(digits):
    Xtr = digits[0]
    pipe = make_pipeline(Normalizer(), SparseAutoencoder(n_components=10, epochs=4,
                                                         random_state=0, device="cpu"))
    grid = GridSearchCV(pipe, {"sparseautoencoder__lam": [1.0, 10.0]}, cv=2)
    grid.fit(Xtr)
    assert grid.best_params_["sparseautoencoder__lam"] in (1.0, 10.0)
    assert grid.transform(Xtr[:5]).shape == (5, 10)
    names = pipe.fit(Xtr).get_feature_names_out()
    assert names[0] == "sparseautoencoder0" and len(names) == 10


BAD_PARAMS = [
    (dict(sigmas=(0.1, 0.5)), "strictly decreasing"),
    (dict(sigmas=(1.0, 1.0)), "strictly decreasing"),
    (dict(sigmas=()), "non-empty"),
    (dict(sigmas=0.5), "sequence"),
    (dict(lam=-1.0), "lam"),
    (dict(penalty="l1", beta=-0.1), "beta"),
    (dict(penalty="kl", rho=1.5), "rho"),
    (dict(penalty="bogus"), "penalty"),
    (dict(n_components=0), "n_components"),
    (dict(epochs=(1, 2)), "epochs"),
    (dict(epochs=2), "fewer than"),
    (dict(solver="sgd"), "solver"),
    (dict(encoder_activation="gelu"), "encoder_activation"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(batch_size=0), "batch_size"),
]


@pytest.mark.parametrize("params, match", BAD_PARAMS)
def test_bad_parameters_name_the_problem(params, match):
    X = np.random.default_rng(0).uniform(size=(20, 4))
    with pytest.raises(ValueError, match=match):
        SparseAutoencoder(device="cpu", **params).fit(X)


def test_bad_inputs_name_the_problem(digits):
    Xtr = digits[0]
    m = SparseAutoencoder(n_components=5, epochs=4, random_state=0, device="cpu")
    with pytest.raises(ValueError, match="NaN"):
        m.fit(np.where(np.arange(Xtr.size).reshape(Xtr.shape) == 7, np.nan, Xtr))
    with pytest.raises(ValueError, match="infinity"):
        m.fit(np.where(np.arange(Xtr.size).reshape(Xtr.shape) == 7, np.inf, Xtr))
    with pytest.raises(ValueError, match="2D array"):
        m.fit(Xtr[0])
    with pytest.raises(ValueError, match="0 sample"):
        m.fit(Xtr[:0])
    with pytest.raises(ValueError, match="could not convert|dtype"):
        m.fit(np.array([["a", "b"], ["c", "d"]], dtype=object))
    m.fit(Xtr)
    with pytest.raises(ValueError, match="64 features"):
        m.transform(Xtr[:, :10])
    with pytest.raises(ValueError, match="n_components=5"):
        m.inverse_transform(np.zeros((2, 7)))


def test_check_estimator_passes():
    results = check_estimator(
        SparseAutoencoder(n_components=5, epochs=8, random_state=0, device="cpu"),
        on_fail=None,
    )
    failed = [(r["check_name"], r["exception"]) for r in results if r["status"] == "failed"]
    assert not failed
    # the one check scikit-learn itself skips here needs SCIPY_ARRAY_API, not this estimator
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert skipped <= {"check_array_api_input"}
    assert len(results) > 40


# --- what a demanding scikit-learn user tries (a helper's review, 2026-12-05) ---------------
def _small(rows=60, cols=6):
    return np.random.default_rng(0).random((rows, cols)).astype(np.float32)


def test_pandas_output_and_dataframe_input_work_without_warnings():
    import warnings

    import pandas as pd

    X = pd.DataFrame(_small(), columns=[f"f{i}" for i in range(6)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        model = SparseAutoencoder(n_components=4, epochs=4, random_state=0)
        H = model.set_output(transform="pandas").fit_transform(X)
        model.score(X)
    assert isinstance(H, pd.DataFrame) and H.shape == (60, 4)


def test_a_batch_larger_than_the_data_is_the_data_and_sets_the_step_size():
    small = SparseAutoencoder(n_components=4, epochs=4, batch_size=1000, random_state=0)
    exact = SparseAutoencoder(n_components=4, epochs=4, batch_size=40, random_state=0)
    X = _small(40)
    small.fit(X)
    exact.fit(X)
    assert small.batch_size_ == 40
    np.testing.assert_array_equal(small.encoder_weight_, exact.encoder_weight_)


def test_steering_that_cannot_steer_is_refused_before_the_fit():
    from psae.errors import ParameterError

    X = _small()
    with pytest.raises(ParameterError, match="solver='lbfgs'"):
        SparseAutoencoder(n_components=4, solver="lbfgs", target_l0=1, epochs=4).fit(X)
    with pytest.raises(ParameterError, match="lam=0.0"):
        SparseAutoencoder(n_components=4, lam=0.0, target_l0=1, epochs=4).fit(X)


def test_early_stopping_on_too_few_rows_says_so():
    from psae.errors import ParameterError

    with pytest.raises(ParameterError, match="1 held out and 11 to train on"):
        SparseAutoencoder(n_components=2, epochs=4, early_stopping=True).fit(_small(12))
    SparseAutoencoder(n_components=2, epochs=4, early_stopping=True,
                      validation_fraction=0.2).fit(_small(12))  # 2 and 10: enough


def test_set_params_after_fit_cannot_misread_the_weights(tmp_path):
    from psae.errors import ParameterError

    X = _small()
    model = SparseAutoencoder(n_components=4, epochs=4, random_state=0).fit(X)
    H = model.transform(X)
    model.set_params(n_components=8)
    assert len(model.get_feature_names_out()) == 4  # the fitted model's outputs
    for use in (lambda: model.transform(X), lambda: model.inverse_transform(H),
                lambda: model.score(X), lambda: model.save(tmp_path / "m")):
        with pytest.raises(ParameterError, match=r"fitted with n_components=4.*n_components=8"):
            use()
    model.set_params(n_components=4, penalty="psae")  # "psae" names "sql0": the same model
    model.save(tmp_path / "m")
    back = SparseAutoencoder.load(tmp_path / "m")
    np.testing.assert_array_equal(back.transform(X), H)
    assert back.batch_size_ == model.batch_size_ and back.stopped_early_ is False
    back.set_params(penalty="topk")
    with pytest.raises(ParameterError, match="penalty='sql0'"):
        back.transform(X)


def test_an_lbfgs_fit_does_not_claim_a_firing_record_it_never_kept():
    model = SparseAutoencoder(n_components=4, solver="lbfgs", epochs=4, random_state=0)
    model.fit(_small())
    assert model.dead_fraction_ is None and all(h["l0"] is None for h in model.history_)
    assert SparseAutoencoder(n_components=4, epochs=4, random_state=0).fit(
        _small()).dead_fraction_ is not None
