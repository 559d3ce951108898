"""The CA classifier solves scikit-learn's LogisticRegression problem, to convergence."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from psae import metrics
from psae.classifier import SoftmaxClassifier


def test_same_solution_as_scikit_learn_converged(digits):
    Xtr, Xte, ytr, yte = digits
    ours = SoftmaxClassifier(C=1.0, tol=1e-6).fit(Xtr, ytr)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, tol=1e-10, max_iter=20000))
    ref.fit(Xtr, ytr)
    assert ours.converged_
    # the same convex problem: the same decision function, to solver tolerance
    d_ours = ours.decision_function(Xte)
    d_ref = ref.decision_function(Xte)
    d_ours -= d_ours.mean(axis=1, keepdims=True)  # softmax is invariant to a shift per row
    d_ref -= d_ref.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(d_ours, d_ref, atol=5e-3 * np.abs(d_ref).max())
    assert np.mean(ours.predict(Xte) == ref.predict(Xte)) > 0.995


def test_classification_accuracy_uses_it_and_labels_can_be_anything(digits):
    Xtr, Xte, ytr, yte = digits
    names = np.array([f"class-{v}" for v in range(10)])
    ca = metrics.classification_accuracy(Xtr, names[ytr], Xte, names[yte])
    assert 0.9 < ca <= 1.0
    assert ca == metrics.classification_accuracy(Xtr, ytr, Xte, yte)


def test_a_settled_training_accuracy_ends_the_solve_early_at_the_same_test_accuracy(digits):
    Xtr, Xte, ytr, yte = digits
    full = SoftmaxClassifier(tol=1e-7, max_iter=5000).fit(Xtr, ytr)
    early = SoftmaxClassifier(tol=1e-7, max_iter=5000, stable=1e-2, check_every=5).fit(Xtr, ytr)
    assert full.converged_ and early.converged_
    assert early.n_iter_ < full.n_iter_  # it stopped on the predictions, not the gradient
    assert early.n_iter_ % 5 == 0 and early.n_iter_ >= 15  # two windows after the first
    ca_full = np.mean(full.predict(Xte) == yte)
    ca_early = np.mean(early.predict(Xte) == yte)
    assert abs(ca_full - ca_early) <= 0.01
    capped = SoftmaxClassifier(tol=1e-7, max_iter=40, stable=0.0, check_every=20).fit(Xtr, ytr)
    assert capped.n_iter_ == 40 and not capped.converged_  # stable=0 never holds: the cap ends it


def test_sparse_codes_take_the_sparse_path_to_the_same_solution(digits, monkeypatch):
    """Codes with exact zeros (as every steered model's are) are solved through a sparse
    matrix; the objective, and so the solution, is scikit-learn's all the same."""
    import psae.classifier as C

    Xtr, Xte, ytr, yte = digits
    rng = np.random.default_rng(0)
    mask_tr, mask_te = (rng.uniform(size=Xtr.shape) < 0.12), (rng.uniform(size=Xte.shape) < 0.12)
    Htr, Hte = Xtr * mask_tr, Xte * mask_te  # ~12 % non-zero
    sparse = SoftmaxClassifier(C=1.0, tol=1e-6).fit(Htr, ytr)
    assert sparse.sparse_ and sparse.converged_
    monkeypatch.setattr(C, "SPARSE_BELOW", 0.0)
    dense = SoftmaxClassifier(C=1.0, tol=1e-6).fit(Htr, ytr)
    assert not dense.sparse_
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, tol=1e-10, max_iter=20000))
    ref.fit(Htr, ytr)
    for ours in (sparse, dense):
        d = ours.decision_function(Hte)
        d_ref = ref.decision_function(Hte)
        d -= d.mean(axis=1, keepdims=True)
        d_ref -= d_ref.mean(axis=1, keepdims=True)
        np.testing.assert_allclose(d, d_ref, atol=5e-3 * np.abs(d_ref).max())
    assert np.array_equal(sparse.predict(Hte), dense.predict(Hte))


def test_strongly_correlated_dense_codes_are_solved_to_the_optimum_in_few_iterations():
    # sigmoid codes of 120 units driven by 8 latent factors: the standardised codes' covariance
    # has 8 large eigenvalues and 112 tiny ones, as dense autoencoder codes do; solved on the
    # codes themselves L-BFGS took 130 iterations and stopped 1.5e-6 above the optimum
    from scipy.special import logsumexp

    rng = np.random.default_rng(0)
    n, m, r = 2000, 120, 8
    latent = rng.normal(size=(n, r))
    y = np.argmax(latent[:, :4] + 0.5 * rng.normal(size=(n, 4)), axis=1)
    H = 1 / (1 + np.exp(-(latent @ rng.normal(size=(r, m)) + 0.05 * rng.normal(size=(n, m)))))

    def objective(mean, scale, coef, intercept, classes):
        logits = ((H - mean) / scale) @ coef.T + intercept
        picked = logits[np.arange(n), np.searchsorted(classes, y)]
        return np.mean(logsumexp(logits, axis=1) - picked) + np.sum(coef ** 2) / (2 * n)

    ref = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, tol=1e-10, max_iter=50000))
    ref.fit(H, y)
    best = objective(ref[0].mean_, ref[0].scale_, ref[-1].coef_, ref[-1].intercept_,
                     ref[-1].classes_)
    ours = SoftmaxClassifier(C=1.0).fit(H, y)
    assert ours.converged_ and not ours.sparse_
    assert ours.n_iter_ < 60
    got = objective(ours.mean_, ours.scale_, ours.coef_, ours.intercept_, ours.classes_)
    assert got - best < 1e-6


def test_an_always_on_unit_in_sparse_codes_costs_no_accuracy(digits):
    """The sparse path's float32 ``S W − (m / s) W`` cancelled a column far from zero against
    its spread: TopK-like codes with one unit at 1.0 or just under scored 4.7-11 points below
    the dense path and scikit-learn, reported converged."""
    Xtr, Xte, ytr, yte = digits
    rng = np.random.default_rng(0)
    # each row's largest eighth, as a top-k code keeps it (old: CA 75.6 % against 86.7 %)
    Htr, Hte = (X * (X >= np.quantile(X, 0.88, axis=1, keepdims=True)) for X in (Xtr, Xte))
    on = [np.where(rng.uniform(size=(len(H), 1)) < 0.5, 1.0, np.nextafter(np.float32(1), 0))
          for H in (Htr, Hte)]
    Htr, Hte = np.hstack([Htr, on[0]]), np.hstack([Hte, on[1]])
    ours = SoftmaxClassifier(C=1.0, tol=1e-6).fit(Htr, ytr)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, tol=1e-10, max_iter=20000))
    assert abs(np.mean(ours.predict(Hte) == yte)
               - np.mean(ref.fit(Htr, ytr).predict(Hte) == yte)) <= 0.005


def test_codes_of_any_scale_and_two_classes_solve_scikit_learns_problem(digits):
    """Codes times 1e-12 had every unit taken for constant (CA at chance); with two classes
    the softmax's two weight vectors were penalised as scikit-learn's one at twice C."""
    Xtr, Xte, ytr, yte = digits
    base = np.mean(SoftmaxClassifier().fit(Xtr, ytr).predict(Xte) == yte)
    tiny = np.mean(SoftmaxClassifier().fit(Xtr * 1e-12, ytr).predict(Xte * 1e-12) == yte)
    assert tiny == base
    two_tr = ytr % 2
    ours = SoftmaxClassifier(C=0.01, tol=1e-8).fit(Xtr, two_tr)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, tol=1e-12, max_iter=20000))
    ref.fit(Xtr, two_tr)
    w = ours.coef_[1] - ours.coef_[0]
    np.testing.assert_allclose(w, ref[-1].coef_[0], atol=1e-3 * np.abs(ref[-1].coef_).max())


def test_a_capped_solve_warns_and_labels_of_another_kind_are_refused(digits):
    import pytest
    from sklearn.exceptions import ConvergenceWarning

    from psae.errors import InputError

    Xtr, Xte, ytr, yte = digits
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        metrics.classification_accuracy(Xtr, ytr, Xte, yte, max_iter=3, stable=None)
    with pytest.raises(InputError, match="same kind of labels"):
        metrics.classification_accuracy(Xtr, ytr, Xte, yte.astype(str))
    clf = SoftmaxClassifier(tol=1e-5).fit(Xtr, ytr)
    assert clf.stop_reason_ in ("gradient", "stalled")
    assert SoftmaxClassifier(max_iter=3).fit(Xtr, ytr).stop_reason_ == "max_iter"


def test_sparse_codes_given_as_a_sparse_matrix_solve_exactly_as_given_dense(digits):
    """The reproduction hands MNIST's training codes over as CSR (their dense array is 240 MB
    of mostly zeros): the solve must not see the difference."""
    import scipy.sparse as sp

    Xtr, Xte, ytr, yte = digits
    rng = np.random.default_rng(1)
    Htr = (Xtr * (rng.uniform(size=Xtr.shape) < 0.1)).astype(np.float32)
    Hte = (Xte * (rng.uniform(size=Xte.shape) < 0.1)).astype(np.float32)
    dense = SoftmaxClassifier(C=1.0, tol=1e-6).fit(Htr, ytr)
    given = SoftmaxClassifier(C=1.0, tol=1e-6).fit(sp.csr_matrix(Htr), ytr)
    assert dense.sparse_ and given.sparse_
    assert dense.n_iter_ == given.n_iter_
    np.testing.assert_array_equal(dense.coef_, given.coef_)  # the same solve, bit for bit
    np.testing.assert_allclose(dense.decision_function(Hte),  # a sparse product's sums
                               given.decision_function(sp.csr_matrix(Hte)), atol=1e-12)
    assert metrics.classification_accuracy(sp.csr_matrix(Htr), ytr, Hte, yte) \
        == metrics.classification_accuracy(Htr, ytr, Hte, yte)
    # denser than SPARSE_BELOW: a sparse matrix given is solved on the dense path
    full = SoftmaxClassifier(C=1.0, tol=1e-6).fit(sp.csr_matrix(Xtr), ytr)
    assert not full.sparse_ and full.converged_


def test_column_statistics_from_the_non_zeros_are_numpys():
    import scipy.sparse as sp

    from psae.classifier import _column_stats, _sparse_column_stats

    rng = np.random.default_rng(2)
    H = rng.standard_normal((3000, 40)) * (rng.uniform(size=(3000, 40)) < 0.05) + 5.0 * (
        rng.uniform(size=(3000, 40)) < 0.01)
    H[:, 3] = 0.0  # an empty column
    for stats, tol in ((_column_stats(H), 1e-12), (_sparse_column_stats(sp.csr_matrix(H)), 1e-12),
                       (_column_stats(H.astype(np.float32)), 1e-6)):
        mean, std, peak = stats
        np.testing.assert_allclose(mean, H.mean(axis=0), rtol=tol, atol=tol)
        np.testing.assert_allclose(std, H.std(axis=0), rtol=tol, atol=tol)
        np.testing.assert_allclose(peak, np.abs(H).max(axis=0), rtol=tol)


def test_the_dense_loss_block_by_block_is_the_whole_loss(monkeypatch):
    """The dense path reads its codes a block of rows at a time; its loss and gradient are
    the softmax's whatever the block size (against autograd on the whitened codes)."""
    import torch

    import psae.classifier as C

    rng = np.random.default_rng(3)
    H = rng.standard_normal((500, 30)).astype(np.float32)
    y = rng.integers(0, 4, 500)
    onehot_t = torch.nn.functional.one_hot(torch.from_numpy(y), 4).t().float().contiguous()
    W0, b0 = torch.randn(30, 4) * 0.3, torch.randn(4) * 0.1
    results = []
    for rows in (7, 64, 4096):
        monkeypatch.setattr(C, "_ROWS", rows)
        codes = C._Dense(H, H.mean(axis=0, dtype=np.float64), H.std(axis=0, dtype=np.float64))
        W, b = W0.clone().requires_grad_(), b0.clone().requires_grad_()
        loss = codes.loss(W, b, onehot_t, 1e-3)
        results.append((float(loss), W.grad.clone(), b.grad.clone()))
        Wa, ba = W0.clone().requires_grad_(), b0.clone().requires_grad_()
        ref = torch.nn.functional.cross_entropy(codes.Z @ Wa + ba, torch.from_numpy(y)) \
            + 1e-3 * (Wa.square() * codes.inv).sum()
        ref.backward()
        assert float(loss) == pytest.approx(float(ref.detach()), rel=1e-5)
        torch.testing.assert_close(W.grad, Wa.grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(b.grad, ba.grad, rtol=1e-4, atol=1e-6)
    for loss, gW, gb in results[1:]:
        assert loss == pytest.approx(results[0][0], rel=1e-6)
        torch.testing.assert_close(gW, results[0][1], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(gb, results[0][2], rtol=1e-5, atol=1e-7)


def test_a_confident_classifiers_gradient_has_no_subnormal_floats():
    """Probabilities of 1e-38 and under on the wrong classes are subnormal floats, and the
    sparse ``Sᵀ G`` with them ran 14× slower (SAE+L0's CA solve 3× TopK's). The gradient's
    ``P`` is floored at e⁻⁸⁰ and its 1/n applied after the sums: no subnormal, and the same
    gradient as autograd's to float32's resolution."""
    import scipy.sparse as sp
    import torch

    import psae.classifier as C

    rng = np.random.default_rng(4)
    H = (rng.exponential(size=(400, 50)) * (rng.uniform(size=(400, 50)) < 0.1)).astype(np.float32)
    y = rng.integers(0, 5, 400)
    onehot_t = torch.nn.functional.one_hot(torch.from_numpy(y), 5).t().float().contiguous()
    mean, std = H.mean(axis=0, dtype=np.float64), H.std(axis=0, dtype=np.float64)
    codes = C._Sparse(sp.csr_matrix(H), mean, std)
    W0 = torch.from_numpy(rng.standard_normal((50, 5)).astype(np.float32)) * 40  # confident
    W = W0.clone().requires_grad_()
    b = torch.zeros(5, requires_grad=True)
    seen, back = [], codes.back
    codes.back = lambda gt, *a: seen.append(gt.clone()) or back(gt, *a)  # what Sᵀ G multiplies
    loss = codes.loss(W, b, onehot_t, 1e-4)
    logp = torch.log_softmax(codes.logits(W0, torch.zeros(5)), dim=1)
    assert bool(((logp > -103) & (logp < -87)).any())  # exp of these is subnormal
    tiny = torch.finfo(torch.float32).tiny
    for g in (seen[0], W.grad, b.grad):
        assert not bool(((g != 0) & (g.abs() < tiny)).any())
    Wa, ba = W0.clone().requires_grad_(), torch.zeros(5, requires_grad=True)
    Z = torch.from_numpy(((H - mean) / std).astype(np.float32))
    ref = torch.nn.functional.cross_entropy(Z @ Wa + ba, torch.from_numpy(y)) \
        + 1e-4 * Wa.square().sum()
    ref.backward()
    assert float(loss) == pytest.approx(float(ref.detach()), rel=1e-5)
    torch.testing.assert_close(W.grad, Wa.grad, rtol=1e-4, atol=1e-6)


def test_a_sparse_matrix_with_repeats_stored_zeros_or_an_always_on_unit(digits):
    """A sparse matrix is taken as the values it stands for: repeated entries summed and
    stored zeros dropped (on a copy; the caller's matrix is left as it was), and codes with a
    unit on in every row go to the dense path as a dense array would."""
    import scipy.sparse as sp

    Xtr, _, ytr, _ = digits
    rng = np.random.default_rng(5)
    H = (Xtr * (rng.uniform(size=Xtr.shape) < 0.1)).astype(np.float32)
    S = sp.csr_matrix(H)
    indices, data, indptr = [], [], [0]
    for r in range(H.shape[0]):  # each entry stored twice, as two halves, and a stored zero
        cols, vals = S.indices[S.indptr[r]:S.indptr[r + 1]], S.data[S.indptr[r]:S.indptr[r + 1]]
        indices += [*np.repeat(cols, 2), 0]
        data += [*np.stack([vals / 2, vals - vals / 2], axis=1).ravel(), 0.0]
        indptr.append(len(indices))
    messy = sp.csr_matrix((np.array(data, np.float32), np.array(indices), np.array(indptr)),
                          shape=H.shape)
    assert not messy.has_canonical_format
    stored = messy.nnz
    clean = SoftmaxClassifier(C=1.0, tol=1e-6).fit(H, ytr)
    given = SoftmaxClassifier(C=1.0, tol=1e-6).fit(messy, ytr)
    assert messy.nnz == stored  # untouched
    np.testing.assert_allclose(given.mean_, clean.mean_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(given.scale_, clean.scale_, rtol=1e-6, atol=1e-9)
    assert given.sparse_ and np.mean(given.predict(H) == clean.predict(H)) > 0.995
    on = np.hstack([H, np.ones((H.shape[0], 1), np.float32) + 1e-3 * (ytr[:, None] % 2)])
    dense, sparse = (SoftmaxClassifier(C=1.0, tol=1e-6).fit(A, ytr)
                     for A in (on, sp.csr_matrix(on)))
    assert not dense.sparse_ and not sparse.sparse_
    np.testing.assert_array_equal(dense.predict(on), sparse.predict(on))
