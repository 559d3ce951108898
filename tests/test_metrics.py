import numpy as np
import pytest

from psae import metrics


def test_reconstruction_error_is_mean_of_per_sample_mse():
    X = np.array([[0.0, 0.0], [1.0, 1.0]])
    Y = np.array([[1.0, 0.0], [1.0, 3.0]])
    assert np.allclose(metrics.reconstruction_error(X, Y, per_sample=True), [0.5, 2.0])
    assert metrics.reconstruction_error(X, Y) == pytest.approx(1.25)
    with pytest.raises(ValueError, match="shape"):
        metrics.reconstruction_error(X, Y[:, :1])


def test_hoyer_extremes_and_zero_codes():
    H = np.array([[0, 0, 5.0, 0], [1, 1, 1, 1.0], [0, 0, 0, 0.0], [-2, 0, 0, 0.0]])
    S = metrics.hoyer_sparseness(H)
    assert S[0] == pytest.approx(1.0) and S[1] == pytest.approx(0.0)
    assert np.isnan(S[2]) and S[3] == pytest.approx(1.0)
    assert metrics.zero_codes(H) == 1
    # the all-zero code is left out of S and SSD
    assert metrics.mean_sparseness(H) == pytest.approx(2 / 3)
    assert metrics.sparsity_std(H) == pytest.approx(np.std([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="all-zero"):
        metrics.mean_sparseness(np.zeros((3, 4)))


def test_hoyer_known_value():
    h = np.array([[3.0, 4.0, 0.0, 0.0]])
    expected = (2 - 7 / 5) / (2 - 1)
    assert metrics.hoyer_sparseness(h)[0] == pytest.approx(expected)


def test_l0_stats_and_dead_units():
    H = np.array([[0.5, 0.0, 0.001, 0.0], [0.5, 0.2, 0.0, 0.0], [0.9, 0.3, 0.4, 0.0]])
    st = metrics.l0_stats(H, threshold=0.01)
    assert st["mean"] == pytest.approx(2.0) and st["min"] == 1 and st["max"] == 3
    assert metrics.dead_units(H, 0.01) == pytest.approx(0.25)
    assert metrics.dead_units(H, 0.0) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="threshold"):
        metrics.l0_stats(H, -1)


def test_classification_accuracy_on_separable_codes():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    H = np.eye(3)[y] * 2 + rng.normal(scale=0.1, size=(120, 3))
    assert metrics.classification_accuracy(H[::2], y[::2], H[1::2], y[1::2]) == 1.0
    with pytest.raises(ValueError, match="labels"):
        metrics.classification_accuracy(H[::2], y[:10], H[1::2], y[1::2])
    with pytest.raises(ValueError, match="units"):
        metrics.classification_accuracy(H[::2], y[::2], H[1::2, :2], y[1::2])


@pytest.mark.parametrize("bad, match", [
    (np.zeros(4), "shape"),
    (np.zeros((0, 3)), "empty"),
    (np.array([[1.0, np.nan]]), "NaN"),
    (np.array([["a", "b"]]), "numeric"),
])
def test_metric_input_errors(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        metrics.hoyer_sparseness(bad)


def test_fvu_is_one_for_the_mean_and_zero_for_exact_reconstruction():
    from psae.metrics import fraction_of_variance_unexplained as fvu

    X = np.random.default_rng(0).normal(3.0, 2.0, size=(200, 7))  # far from zero: around-zero
    assert fvu(X, X) == 0.0                                          # would not give 1 below
    assert fvu(X, np.broadcast_to(X.mean(axis=0), X.shape)) == pytest.approx(1.0)
    assert fvu(X, np.zeros_like(X)) > 2.0  # predicting 0 is worse than the mean here
    with pytest.raises(ValueError, match="constant"):
        fvu(np.ones((5, 3)), np.ones((5, 3)))


def test_evaluate_gives_fvu_and_the_spread_of_per_sample_l0():
    from psae.metrics import evaluate

    H = np.zeros((4, 5))
    H[0, :1] = H[1, :2] = H[2, :3] = H[3, :4] = 1.0  # per-sample L0 1, 2, 3, 4
    X = np.random.default_rng(1).uniform(size=(4, 3))
    r = evaluate(X, H, X * 0.5)
    assert r["L0"]["mean"] == 2.5 and r["L0"]["std"] == pytest.approx(np.std([1, 2, 3, 4]))
    assert (r["L0"]["min"], r["L0"]["max"]) == (1, 4) and "L0_mean" not in r  # one shape
    assert 0 < r["FVU"]


def test_atom_stability_is_one_for_a_model_against_itself_in_any_order(digits):
    from psae import SparseAutoencoder

    a = SparseAutoencoder(n_components=20, epochs=8, random_state=0, device="cpu").fit(digits[0])
    b = SparseAutoencoder(n_components=20, epochs=8, random_state=1, device="cpu").fit(digits[0])
    A = a.components_
    perm = np.random.default_rng(0).permutation(len(A))
    assert metrics.atom_stability(A, A) == pytest.approx(1.0)
    assert metrics.atom_stability(A, A[perm]) == pytest.approx(1.0)
    assert metrics.atom_stability(A, 3.0 * A[perm]) == pytest.approx(1.0)  # scale-free
    two_seeds = metrics.atom_stability(A, b.components_)
    assert 0 < two_seeds < 0.999
    assert metrics.atom_stability(A, b.components_) == pytest.approx(
        metrics.atom_stability(b.components_, A))


def test_distinct_atom_share_discounts_atoms_that_resemble_each_other():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(20, 50))
    perm = rng.permutation(20)
    assert metrics.distinct_atom_share(A, A) == 1.0
    assert metrics.distinct_atom_share(A, 2.0 * A[perm]) == 1.0
    # a second fit that found the same distinct features, a little off
    assert metrics.distinct_atom_share(A, A + 0.3 * rng.normal(size=A.shape)) == 1.0
    # two "seeds" whose atoms all lie near one shared direction: matched cosines are high,
    # yet no atom is reproduced more closely than its own dictionary's nearest other atom
    u = rng.normal(size=50)
    R1, R2 = u + 0.05 * rng.normal(size=(20, 50)), u + 0.05 * rng.normal(size=(20, 50))
    assert metrics.atom_stability(R1, R2) > 0.8
    assert metrics.distinct_atom_share(R1, R2) <= 0.2
    # unrelated dictionaries of MNIST's shape share no feature, though their matched pairs
    # often beat their atoms' nearest others (cosines about 0.1 on both sides)
    U, V = rng.normal(size=(300, 784)), rng.normal(size=(300, 784))
    assert metrics.distinct_atom_share(U, V) == 0.0
    assert metrics.distinct_atom_share(U, V, min_cosine=-1.0) > 0.1
    # duplicated and zero atoms are not distinct features, whatever the rounding
    for seed in range(10):
        D = np.random.default_rng(seed).normal(size=(30, 50)).astype(np.float32)
        D = np.vstack([D, D[:3]])
        assert metrics.distinct_atom_share(D, D[::-1]) == 27 / 33
    Z = A.copy()
    Z[0] = 0
    assert metrics.distinct_atom_share(Z, Z) == 19 / 20
    assert metrics.distinct_atom_share(A, Z) == metrics.distinct_atom_share(Z, A)


def test_a_tiny_but_nonzero_code_has_a_sparseness_and_is_not_a_zero_code():
    H = np.array([[1e-200, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    S = metrics.hoyer_sparseness(H)
    assert S[0] == 1.0 and np.isnan(S[1])  # float64 norms of 1e-200 underflow to 0 unscaled
    assert metrics.zero_codes(H) == 1


def test_evaluate_on_one_code_unit_reports_all_but_sparseness():
    rng = np.random.default_rng(0)
    X, H = rng.random((20, 5)), rng.random((20, 1)) + 0.5
    out = metrics.evaluate(X, H, 0.9 * X)
    assert np.isnan(out["S"]) and "one code unit" in out["S_note"]
    assert out["L0"]["mean"] == 1.0 and out["RE"] > 0


def test_calibrated_threshold_with_tied_saturated_codes_keeps_them_rather_than_none():
    """Sigmoid codes saturate to exactly 1.0 in float32: with 6 such units a row and a target
    of 5, cutting every tied value left L0 0."""
    import torch

    from psae.metrics import calibrated_threshold, l0_counts

    a = torch.randn(200, 20, generator=torch.Generator().manual_seed(0)) * 4
    a[:, :6] += 30
    H = torch.sigmoid(a).numpy()
    assert (H[:, :6] == 1.0).all()
    for target, want in ((1, 6.0), (2, 6.0), (3, 6.0), (5, 6.0), (6, 6.0), (8, 8.0)):
        assert l0_counts(H, calibrated_threshold(H, target)).mean() == want
    rand = np.random.default_rng(0).random((100, 50)).astype(np.float32)  # no ties: exact
    assert l0_counts(rand, calibrated_threshold(rand, 10.3)).mean() == pytest.approx(10.3)


def test_evaluate_takes_lists_with_one_code_unit():
    out = metrics.evaluate([[0, 1], [1, 0]], [[0.5], [0.2]], [[0, 1], [1, 0]])
    assert np.isnan(out["S"]) and out["L0"]["mean"] == 1.0


def test_float32_codes_are_measured_as_their_float64_copy():
    """Codes are measured without a float64 copy of them (seconds a cell on MNIST); each
    measure still compares and sums in float64, so it gives its float64 copy's value."""
    rng = np.random.default_rng(0)
    H = (rng.exponential(size=(3000, 50)) * (rng.uniform(size=(3000, 50)) < 0.1)).astype(
        np.float32)
    H[5] = 0.0
    X = rng.standard_normal((3000, 20)).astype(np.float32)
    Y = (X + 0.1 * rng.standard_normal(X.shape)).astype(np.float32)
    H64, X64, Y64 = H.astype(np.float64), X.astype(np.float64), Y.astype(np.float64)
    np.testing.assert_array_equal(metrics.hoyer_sparseness(H), metrics.hoyer_sparseness(H64))
    np.testing.assert_array_equal(metrics.l0_counts(H), metrics.l0_counts(H64))
    assert metrics.zero_codes(H) == metrics.zero_codes(H64) >= 1
    assert metrics.dead_units(H, 0.5) == metrics.dead_units(H64, 0.5)
    for target in (0.5, 2.0, 4.0):
        assert metrics.calibrated_threshold(H, target) == metrics.calibrated_threshold(H64, target)
    np.testing.assert_array_equal(metrics.reconstruction_error(X, Y, per_sample=True),
                                  np.mean((X64 - Y64) ** 2, axis=1))
    fvu = np.sum((X64 - Y64) ** 2) / np.sum((X64 - X64.mean(axis=0)) ** 2)
    assert metrics.fraction_of_variance_unexplained(X, Y) == pytest.approx(fvu, rel=1e-12)


def test_a_threshold_that_float32_rounds_up_is_compared_in_float64():
    """Against a float32 array a Python float is compared in float32: a threshold just under
    a float32 value would round up to it and stop counting the entries equal to it."""
    v = np.float32(0.3)
    t = float(v) - 1e-12  # float32(t) == v: in float32, v > t is False
    H = np.array([[v, 0.0], [0.0, 0.0]], dtype=np.float32)
    assert np.float32(t) == v
    assert list(metrics.l0_counts(H, t)) == [1, 0]
    assert metrics.dead_units(H, t) == 0.5


def test_only_the_ca_takes_a_sparse_matrix_the_others_say_so():
    import scipy.sparse as sp

    from psae.errors import InputError

    H = sp.random(50, 8, density=0.2, format="csr", random_state=0)
    for measure in (metrics.hoyer_sparseness, metrics.l0_counts, metrics.zero_codes,
                    metrics.dead_units, lambda A: metrics.calibrated_threshold(A, 1.0),
                    lambda A: metrics.reconstruction_error(A, H.toarray())):
        with pytest.raises(InputError, match="dense array, got a scipy sparse matrix"):
            measure(H)
