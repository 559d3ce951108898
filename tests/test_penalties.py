import numpy as np
import pytest
import torch

from psae.penalties import bernoulli_kl, kl_penalty, l1_penalty, smoothed_l0, smoothed_l0_cost


def analytic_grad_W1(X, W1, b1, sigma):
    """SPEC.md's corrected eq. (11)/(12) for sigmoid f: returns (dCs/dW1, dCs/db1)."""
    A = X @ W1.T + b1
    H = 1 / (1 + np.exp(-A))
    E = np.exp(-(H**2) / (2 * sigma**2))
    L0 = W1.shape[0] - E.sum(axis=1, keepdims=True)
    dH = 2 * L0 * (H / sigma**2) * E
    dA = dH * H * (1 - H)
    return dA.T @ X, dA.sum(axis=0)


@pytest.mark.parametrize("sigma", [1.0, 0.3, 0.1])
def test_autograd_gradient_equals_corrected_analytic_gradient(sigma):
    rng = np.random.default_rng(0)
    X = rng.uniform(0.1, 0.9, size=(7, 5))
    W1 = rng.normal(scale=0.8, size=(4, 5))
    b1 = rng.normal(scale=0.3, size=4)
    W1t = torch.tensor(W1, requires_grad=True)
    b1t = torch.tensor(b1, requires_grad=True)
    H = torch.sigmoid(torch.tensor(X) @ W1t.T + b1t)
    smoothed_l0_cost(H, sigma).backward()
    gW, gb = analytic_grad_W1(X, W1, b1, sigma)
    np.testing.assert_allclose(W1t.grad.numpy(), gW, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b1t.grad.numpy(), gb, rtol=1e-10, atol=1e-12)
    # the printed eq. (11) (h^2/(2σ^2), no factor 2) is a different vector: the fix matters
    A = X @ W1.T + b1
    Hn = 1 / (1 + np.exp(-A))
    E = np.exp(-(Hn**2) / (2 * sigma**2))
    printed = ((4 - E.sum(1, keepdims=True)) * Hn**2 / (2 * sigma**2) * E * Hn * (1 - Hn)).T @ X
    assert not np.allclose(printed, gW)


def test_smoothed_l0_tends_to_l0():
    H = torch.tensor([[0.0, 0.5, 0.0, 0.9], [0.0, 0.0, 0.0, 0.0], [0.3, 0.2, 0.7, 0.1]],
                     dtype=torch.float64)
    exact = torch.tensor([2.0, 0.0, 4.0], dtype=torch.float64)
    assert torch.allclose(smoothed_l0(H, 1e-3), exact, atol=1e-9)
    coarse = smoothed_l0(H, 1.0)
    assert torch.all(coarse < exact + 1e-12) and torch.all(coarse >= 0)


TOY_H1 = np.array([[0, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 0, 0, 1, 0], [1, 1, 0, 0, 1]], float)
TOY_H2 = np.array([[1, 0, 1, 0, 0], [0, 1, 1, 0, 1], [1, 1, 0, 1, 0], [0, 0, 0, 1, 1]], float)


def test_toy_example_square_prefers_even_sparsity():
    """Section III-B: codes are columns; with a small σ the sum of L0 prefers H1 (9 < 10) and
    the sum of squared L0 prefers H2 (20 < 21)."""
    H1 = torch.tensor(TOY_H1.T)
    H2 = torch.tensor(TOY_H2.T)
    sigma = 0.05
    assert np.allclose(smoothed_l0(H1, sigma).numpy(), [3, 3, 1, 1, 1])
    assert np.allclose(smoothed_l0(H2, sigma).numpy(), [2, 2, 2, 2, 2])
    un1, un2 = smoothed_l0_cost(H1, sigma, squared=False), smoothed_l0_cost(H2, sigma, False)
    sq1, sq2 = smoothed_l0_cost(H1, sigma), smoothed_l0_cost(H2, sigma)
    assert un1 < un2 and abs(float(un1) - 9) < 1e-6 and abs(float(un2) - 10) < 1e-6
    assert sq2 < sq1 and abs(float(sq1) - 21) < 1e-6 and abs(float(sq2) - 20) < 1e-6


def test_l1_and_kl_values_and_gradients():
    H = torch.tensor([[0.1, 0.2], [0.3, 0.0]], dtype=torch.float64, requires_grad=True)
    assert torch.allclose(l1_penalty(H), torch.tensor([0.3, 0.3], dtype=torch.float64))
    rho = 0.05
    q = np.array([0.2, 0.1])
    expected = np.sum(rho * np.log(rho / q) + (1 - rho) * np.log((1 - rho) / (1 - q)))
    kl = kl_penalty(H, rho)
    assert abs(float(kl.detach()) - expected) < 1e-12
    kl.backward()
    assert H.grad is not None and torch.all(torch.isfinite(H.grad))
    assert float(bernoulli_kl(rho, torch.tensor(rho))) == pytest.approx(0.0, abs=1e-12)


def test_penalty_input_errors():
    with pytest.raises(ValueError, match="shape"):
        smoothed_l0(torch.zeros(3), 0.1)
    with pytest.raises(ValueError, match="sigma"):
        smoothed_l0(torch.zeros(2, 3), 0.0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        l1_penalty(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="rho"):
        kl_penalty(torch.zeros(2, 2), 1.5)
