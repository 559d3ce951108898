"""The CA classifier: multinomial logistic regression on codes, solved to convergence in torch.

It minimises scikit-learn's ``LogisticRegression(C=C)`` objective on standardised codes, the
mean log-loss plus ``‖W‖² / (2 C n)`` (intercepts unpenalised; the same minimiser as
``C Σ log-loss + ½‖W‖²``), with full-batch L-BFGS until the largest gradient entry is below
``tol`` or, with ``stable`` set, until the training accuracy has moved by less than ``stable``
over the last two windows of ``check_every`` iterations: what a converged CA needs (the
accuracy has stopped moving) without the thousands of iterations the last digits of a nearly
unregularised loss take on wide, correlated codes. Tests check it against scikit-learn.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["SoftmaxClassifier"]


class SoftmaxClassifier:
    """Standardise, then fit ``softmax(H W + b)`` by L-BFGS; ``predict`` gives class labels."""

    def __init__(self, C: float = 1.0, tol: float = 1e-5, max_iter: int = 2000,
                 stable: float | None = None, check_every: int = 50):
        self.C, self.tol, self.max_iter = C, tol, max_iter
        self.stable, self.check_every = stable, check_every

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
        chunk = self.max_iter if self.stable is None else min(self.check_every, self.max_iter)
        evals_per_chunk = 4 * chunk
        opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=chunk, max_eval=evals_per_chunk,
                                history_size=20, tolerance_grad=self.tol,
                                tolerance_change=1e-12, line_search_fn="strong_wolfe")
        l2 = 1.0 / (2.0 * self.C * n)

        def closure():
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(torch.addmm(b, Z, W), target) \
                + l2 * W.square().sum()
            loss.backward()
            return loss

        self.n_iter_, self.converged_, accuracy, evals = 0, False, [], 0
        while self.n_iter_ < self.max_iter and not self.converged_:
            opt.step(closure)  # L-BFGS keeps its history across calls: one run, in chunks
            state = opt.state[opt._params[0]]
            iters, self.n_iter_ = state["n_iter"] - self.n_iter_, state["n_iter"]
            calls, evals = state["func_evals"] - evals, state["func_evals"]
            # short of both budgets: it stopped on its own gradient or loss-change tolerance
            self.converged_ = iters < chunk and calls < evals_per_chunk
            if self.stable is not None and not self.converged_:
                with torch.no_grad():
                    accuracy.append(float((torch.addmm(b, Z, W).argmax(1) == target).float()
                                          .mean()))
                last = accuracy[-3:]
                self.converged_ = len(last) == 3 and max(last) - min(last) < self.stable
        self.coef_, self.intercept_ = W.detach().numpy().T.copy(), b.detach().numpy().copy()
        return self

    def decision_function(self, H: np.ndarray) -> np.ndarray:
        Z = (np.asarray(H, dtype=np.float64) - self.mean_) / self.scale_
        return Z @ self.coef_.T + self.intercept_

    def predict(self, H: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(H), axis=1)]
