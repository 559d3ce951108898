"""The CA classifier: multinomial logistic regression on codes, solved to convergence in torch.

It minimises scikit-learn's ``LogisticRegression(C=C)`` objective on standardised codes, the
mean log-loss plus ``‖W‖² / (2 C n)`` (intercepts unpenalised; the same minimiser as
``C Σ log-loss + ½‖W‖²``), with full-batch L-BFGS until the largest gradient entry is below
``tol``: a converged CA rather than one capped at 100 iterations, and on a CPU with many codes
several times faster than scikit-learn's solver (benchmarks/README.md). Tests check it against
scikit-learn.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["SoftmaxClassifier"]


class SoftmaxClassifier:
    """Standardise, then fit ``softmax(H W + b)`` by L-BFGS; ``predict`` gives class labels."""

    def __init__(self, C: float = 1.0, tol: float = 1e-5, max_iter: int = 2000):
        self.C, self.tol, self.max_iter = C, tol, max_iter

    def fit(self, H: np.ndarray, y: np.ndarray) -> SoftmaxClassifier:
        self.classes_, idx = np.unique(y, return_inverse=True)
        H = np.asarray(H, dtype=np.float64)
        self.mean_ = H.mean(axis=0)
        scale = H.std(axis=0)
        self.scale_ = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(self.mean_)), scale, 1.0)
        Z = torch.from_numpy(((H - self.mean_) / self.scale_).astype(np.float32))
        target = torch.from_numpy(idx.astype(np.int64))
        n, m, k = Z.shape[0], Z.shape[1], len(self.classes_)
        W = torch.zeros(m, k, dtype=torch.float32, requires_grad=True)
        b = torch.zeros(k, dtype=torch.float32, requires_grad=True)
        opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=self.max_iter, history_size=20,
                                tolerance_grad=self.tol, tolerance_change=1e-12,
                                line_search_fn="strong_wolfe")
        l2 = 1.0 / (2.0 * self.C * n)

        def closure():
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(torch.addmm(b, Z, W), target) \
                + l2 * W.square().sum()
            loss.backward()
            return loss

        opt.step(closure)
        state = opt.state[opt._params[0]]
        self.n_iter_ = int(state.get("n_iter", 0))
        self.converged_ = self.n_iter_ < self.max_iter
        self.coef_, self.intercept_ = W.detach().numpy().T.copy(), b.detach().numpy().copy()
        return self

    def decision_function(self, H: np.ndarray) -> np.ndarray:
        Z = (np.asarray(H, dtype=np.float64) - self.mean_) / self.scale_
        return Z @ self.coef_.T + self.intercept_

    def predict(self, H: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(H), axis=1)]
