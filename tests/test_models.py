"""TopK, BatchTopK and JumpReLU beside PSAE: their defining properties, dead-unit control and
the target-L0 knob."""

import json

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import check_estimator

from psae import ParameterError, SparseAutoencoder, metrics
from psae.sparsity.jumprelu import _Jump, _Step


def fit(digits, **kw):
    kw = {"n_components": 60, "epochs": 30, "random_state": 0, "device": "cpu", **kw}
    return SparseAutoencoder(**kw).fit(digits[0])


def test_topk_codes_have_at_most_k_non_zeros_and_encode_k_widens_them(digits):
    m = fit(digits, penalty="topk", k=4)
    H = m.transform(digits[1])
    assert (np.count_nonzero(H, axis=1) <= 4).all() and (H >= 0).all()
    assert np.count_nonzero(H, axis=1).mean() > 3
    wide = m.set_params(encode_k=12).transform(digits[1])
    assert (np.count_nonzero(wide, axis=1) <= 12).all()
    assert np.count_nonzero(wide, axis=1).mean() > 8
    # encoding stays one matrix multiply: the pre-encoder bias is folded into the bias
    a = digits[1] @ m.encoder_weight_.T + m.encoder_bias_
    top = np.sort(a, axis=1)[:, -1]
    np.testing.assert_allclose(H.max(axis=1), np.maximum(top, 0), rtol=2e-2, atol=2e-3)


def test_batchtopk_code_of_a_sample_does_not_depend_on_its_batch(digits):
    m = fit(digits, penalty="batchtopk", k=5)
    X = digits[1]
    whole = m.transform(X)
    alone = np.vstack([m.transform(X[i:i + 1]) for i in range(20)])
    # one row goes through BLAS's matrix-vector kernel: the same code up to float rounding
    np.testing.assert_allclose(alone, whole[:20], rtol=1e-5, atol=1e-6)
    shuffled = m.transform(X[::-1])[::-1]
    np.testing.assert_array_equal(shuffled, whole)
    assert 2 < metrics.l0_stats(whole, 0.0)["mean"] < 10  # about k on average
    assert float(m.code_state_["threshold"]) > 0


def test_jumprelu_straight_through_gradients():
    """The θ-gradient of the gate is the finite difference of its smoothed surrogate, the
    rectangle-kernel step ``H_ε(u) = clip(u/ε + 1/2, 0, 1)``; ∂h/∂a is the true H(a − θ)."""
    eps = 0.05
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4000, 3, generator=g, dtype=torch.float64) * 0.6
    theta = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64, requires_grad=True)
    _Step.apply(a, theta, eps).sum().backward()

    def smooth(t):
        return ((a - t) / eps + 0.5).clamp(0, 1).sum(dim=0)

    d = 1e-6
    fd = (smooth(theta.detach() + d) - smooth(theta.detach() - d)) / (2 * d)
    torch.testing.assert_close(theta.grad, fd, rtol=1e-6, atol=1e-6)
    a2 = a.clone().requires_grad_(True)
    theta2 = theta.detach().clone().requires_grad_(True)
    _Jump.apply(a2, theta2, eps).sum().backward()
    torch.testing.assert_close(a2.grad, (a > theta.detach()).double())
    window = ((a - theta.detach()).abs() <= eps / 2).sum(dim=0).double()
    torch.testing.assert_close(theta2.grad, -(theta.detach() / eps) * window)


@pytest.mark.parametrize("penalty, target, extra", [
    ("sql0", 20, {}), ("l1", 10, {}), ("l1", 20, {}), ("jumprelu", 10, {}),
    # KL's knob is ρ; β must be strong enough to hold each unit's mean activation at ρ
    ("kl", 10, {"beta": 0.1}), ("kl", 20, {"beta": 0.1}),
])
def test_target_l0_lands_within_ten_percent_on_held_out_digits(digits, penalty, target, extra):
    m = fit(digits, penalty=penalty, target_l0=target, n_components=100, epochs=300, **extra)
    l0 = metrics.l0_stats(m.transform(digits[1]))["mean"]
    assert abs(l0 - target) <= 0.1 * target, (penalty, target, l0, m.penalty_weight_)
    assert m.penalty_weight_ is not None and m.history_[-1]["l0"] > 0


def test_auxk_keeps_topk_units_alive_where_they_otherwise_die(digits):
    off = fit(digits, penalty="topk", k=2, n_components=200, revive="none", dead_window=2000)
    on = fit(digits, penalty="topk", k=2, n_components=200, dead_window=2000)
    assert off.dead_fraction_ > 0.5  # measured: 0.62 without AuxK, 0.32 with it
    assert on.dead_fraction_ < off.dead_fraction_ - 0.2
    assert "dead_fraction" in on.history_[-1]


def test_resampling_revives_the_units_a_strong_l1_penalty_kills(digits):
    off = fit(digits, penalty="l1", beta=0.01, n_components=100, dead_window=2000,
              revive="none")
    on = fit(digits, penalty="l1", beta=0.01, n_components=100, dead_window=2000,
             revive="resample")
    assert off.dead_fraction_ > 0.5
    assert on.dead_fraction_ < off.dead_fraction_ - 0.3
    assert sum(h.get("resampled", 0) for h in on.history_) > 0
    # the count before the last resampling, not the fresh window it gave the dead units
    # (which read 0.0 for SAE+L1 on MNIST while 84 % of its units died every epoch)
    assert on.history_[-1].get("resampled", 0) > 0
    assert on.dead_fraction_ == on.history_[-1]["dead_fraction"] > 0


@pytest.mark.parametrize("params, match", [
    ({"penalty": "topk", "k": 0}, "k must be an integer from 1"),
    ({"penalty": "topk", "k": 61}, "n_components=60"),
    ({"penalty": "sql0", "k": 5}, "k=5 has no effect"),
    ({"penalty": "sql0", "target_l0": 0}, "target_l0 must be a number in"),
    ({"penalty": "l1", "target_l0": 60}, "target_l0 must be a number in"),
    ({"penalty": "topk", "target_l0": 5}, "target_l0=5 has no effect"),
    ({"penalty": "jumprelu", "encoder_activation": "tanh"}, "own code layer"),
    ({"penalty": "sql0", "revive": "auxk"}, "needs a TopK-style code"),
])
def test_bad_k_and_targets_are_clear_errors(digits, params, match):
    with pytest.raises(ParameterError, match=match):
        SparseAutoencoder(n_components=60, device="cpu", **params).fit(digits[0])


@pytest.mark.parametrize("penalty", ["topk", "batchtopk", "jumprelu", "sqjumprelu"])
def test_new_models_round_trip_and_pass_check_estimator(penalty, digits, tmp_path):
    m = fit(digits, penalty=penalty, epochs=8)
    m.save(tmp_path / penalty)
    back = SparseAutoencoder.load(tmp_path / penalty)
    np.testing.assert_array_equal(back.transform(digits[1]), m.transform(digits[1]))
    assert back.dead_fraction_ == m.dead_fraction_
    results = check_estimator(SparseAutoencoder(penalty=penalty, n_components=5, k=None,
                                                epochs=8, random_state=0, device="cpu"),
                              on_fail=None)
    failed = [(r["check_name"], r["exception"]) for r in results if r["status"] == "failed"]
    assert not failed


def test_squared_exact_count_decides_the_toy_example_the_papers_way():
    """SPEC.md's toy example: H1 has per-sample counts 3, 3, 1, 1, 1; H2 has 2, 2, 2, 2, 2.
    The unsquared exact L0 prefers H1 (9 < 10), the squared one H2 (20 < 21)."""
    from psae.sparsity.jumprelu import l0_penalty
    from psae.sparsity.sqjumprelu import squared_l0_penalty

    def gates(counts):
        g = torch.zeros(len(counts), 4)
        for j, c in enumerate(counts):
            g[j, :c] = 1.0
        return g

    H1, H2 = gates([3, 3, 1, 1, 1]), gates([2, 2, 2, 2, 2])
    assert l0_penalty(H1, None, {}, gate=H1) * 5 == 9
    assert l0_penalty(H2, None, {}, gate=H2) * 5 == 10
    assert squared_l0_penalty(H1, None, {}, gate=H1) * 5 == 21
    assert squared_l0_penalty(H2, None, {}, gate=H2) * 5 == 20


def test_squared_penalty_threshold_gradient_matches_its_smoothed_surrogate():
    """∂/∂θ of Σ_j L0_j² through the straight-through gate equals the finite difference of the
    smoothed surrogate Σ_j (Σ_i H_ε(a_ji − θ_i))² wherever no sample sits inside a kernel window
    at the hard count's edge, i.e. up to O(ε): here, to 5 %."""
    from psae.sparsity.sqjumprelu import squared_l0_penalty

    eps = 0.01
    g = torch.Generator().manual_seed(3)
    a = torch.rand(3000, 6, generator=g, dtype=torch.float64)
    theta = torch.linspace(0.2, 0.7, 6, dtype=torch.float64).requires_grad_(True)
    gate = _Step.apply(a, theta, eps)
    (squared_l0_penalty(gate, None, {}, gate=gate) * a.shape[0]).backward()

    def surrogate(t):
        return ((a - t) / eps + 0.5).clamp(0, 1).sum(dim=1).square().sum()

    fd = torch.stack([(surrogate(theta.detach() + d) - surrogate(theta.detach() - d)) / 2e-6
                      for d in torch.eye(6, dtype=torch.float64) * 1e-6])
    torch.testing.assert_close(theta.grad, fd, rtol=0.05, atol=0.0)
    assert (theta.grad < 0).all()  # a higher threshold lowers every count


def test_sqjumprelu_fits_saves_and_reaches_a_target(digits, tmp_path):
    from psae.cli import main

    m = fit(digits, penalty="sqjumprelu", target_l0=10, n_components=100, epochs=300)
    l0 = metrics.l0_stats(m.transform(digits[1]))["mean"]
    assert abs(l0 - 10) <= 1.0, (l0, m.penalty_weight_)
    m.save(tmp_path / "m")
    np.testing.assert_array_equal(SparseAutoencoder.load(tmp_path / "m").transform(digits[1]),
                                  m.transform(digits[1]))
    data = tmp_path / "d.npz"
    np.savez(data, X=digits[0])
    assert main(["fit", "--data", str(data), "--penalty", "sqjumprelu", "--n-components", "20",
                 "--epochs", "4", "--quiet", "--out", str(tmp_path / "cli")]) == 0


@pytest.mark.parametrize("penalty", ["topk", "batchtopk", "jumprelu"])
def test_new_models_through_psae_fit_and_evaluate(digits, tmp_path, capsys, penalty):
    from psae.cli import main

    data = tmp_path / "d.npz"
    np.savez(data, X_train=digits[0], y_train=digits[2], X_test=digits[1], y_test=digits[3])
    extra = ["--k", "5"] if penalty != "jumprelu" else []
    assert main(["fit", "--data", str(data), "--penalty", penalty, "--n-components", "20",
                 "--epochs", "4", *extra, "--quiet", "--out", str(tmp_path / "m")]) == 0
    assert main(["evaluate", "--model", str(tmp_path / "m"), "--data", str(data),
                 "--json", str(tmp_path / "e.json")]) == 0
    assert "FVU" in capsys.readouterr().out
    result = json.loads((tmp_path / "e.json").read_text())
    assert 0.0 <= result["FVU"] <= 1.0 and result["L0"]["std"] >= 0.0 and "CA" in result
    if penalty == "topk":
        assert result["L0"]["max"] <= 5  # at most k units per code
    if penalty == "batchtopk":  # k per sample on average; its inference threshold varies it
        assert 2.5 <= result["L0"]["mean"] <= 10


def test_target_l0_steers_the_unsquared_l0_and_its_weight_survives_save_load(digits, tmp_path):
    m = fit(digits, penalty="l0", target_l0=10, n_components=100, epochs=300)
    l0 = metrics.l0_stats(m.transform(digits[1]))["mean"]
    assert abs(l0 - 10) <= 1.5, (l0, m.penalty_weight_)  # ±15 %: the smoothed count lands low
    assert m.penalty_weight_ != SparseAutoencoder(penalty="l0").lam  # it moved
    m.save(tmp_path / "m")
    back = SparseAutoencoder.load(tmp_path / "m")
    assert back.penalty_weight_ == m.penalty_weight_
