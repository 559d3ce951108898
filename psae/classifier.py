"""The CA classifier: multinomial logistic regression on codes, solved to convergence in torch.

It minimises scikit-learn's ``LogisticRegression(C=C)`` objective on standardised codes, the
mean log-loss plus ``‖W‖² / (2 C n)`` (intercepts unpenalised; the same minimiser as
``C Σ log-loss + ½‖W‖²``; with two classes the penalty is doubled, since scikit-learn then fits
one weight vector, the difference of the softmax's two), with full-batch L-BFGS until the
largest gradient entry is below ``tol`` (an absolute bound on the mean loss's gradient: a
nearly unregularised problem, C in the thousands, needs a smaller one), until the loss stops
changing in float32, or, with ``stable`` set, until the training accuracy has moved by less
than ``stable`` over the last two windows of ``check_every`` iterations: what a converged CA
needs (the accuracy has stopped moving) without the thousands of iterations the last digits of
a nearly unregularised loss take on wide, correlated codes. Dense codes are solved in whitened
coordinates (the same objective, reparametrised), which cuts the iterations that correlated
codes need. Tests check it against scikit-learn.

Sparse codes (under ``SPARSE_BELOW`` of their entries non-zero, as every matched-protocol code
is) take the same objective through a sparse matrix: standardising is kept out of the matrix
(``Z W = (H / s) W − (m / s) W``), so each evaluation costs ``nnz · k`` instead of
``n · M · k``; on MNIST-sized TopK codes (60,000 × 1,000, 25 active) one evaluation measured
15 ms against 127 ms dense. A column far from zero against its spread (a unit on in every row)
would cancel in that difference in float32, so such codes take the dense path; constant
columns, which carry nothing, are left out of the sparse matrix.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["SoftmaxClassifier", "SPARSE_BELOW"]

SPARSE_BELOW = 0.2  # share of non-zero code entries under which the sparse path is taken
_ROWS = 1024  # rows a block where the codes are read or converted a block at a time
MAX_OFFSET = 1e3
"""The largest ``|mean| / std`` of a varying column the sparse path takes: past it, ``S W`` and
``(m / s) W`` are large and nearly equal, and their float32 difference loses the column (one
always-on unit cost TopK codes 4.7 CA points, converged)."""


class _Codes:
    """What both paths share: the loss and its gradient, from a path's ``logits_t`` (the
    logits class by row, ``(Z W + b)ᵀ``) and ``back`` (``Zᵀ G + β C`` from ``Gᵀ``, in the
    solver's coordinates); ``inv`` weighs the penalty per row of the solver's variable (1:
    ``‖W‖²`` itself). The softmax gradient ``(P − Y) / n`` is written out rather than taken
    by autograd; the dense path has its own :meth:`_Dense.loss`, block by block."""

    tol_scale = 1.0  # solved in the codes' own coordinates
    inv: torch.Tensor | float = 1.0

    def coef(self, W: torch.Tensor) -> torch.Tensor:
        """The weights on the standardised codes."""
        return W

    def loss(self, W, b, onehot_t, l2) -> torch.Tensor:
        """The objective at ``(W, b)``, its gradient left in ``W.grad`` and ``b.grad``;
        ``onehot_t``: the labels one-hot, class by row."""
        with torch.no_grad():
            zt = self.logits_t(W.detach(), b.detach())
            n = zt.shape[1]
            per_row, gt = _softmax_terms(zt, onehot_t, dim=0)  # gt: (P − Y)ᵀ
            W.grad = self.back(gt, W * self.inv, 2.0 * l2 * n).div_(n)
            b.grad = gt.sum(dim=1).div_(n)
            return per_row.mean() + l2 * (W.square() * self.inv).sum()

    def logits(self, W, b) -> torch.Tensor:
        """``Z W + b``, sample by row."""
        return self.logits_t(W, b).t()


LOG_P_FLOOR = -80.0
"""The least log-probability the gradient takes (e⁻⁸⁰ ≈ 2·10⁻³⁵): the softmax of a confident
classifier puts probabilities of 10⁻³⁸ and less on the wrong classes, subnormal floats, and a
product with subnormals ran 14× slower (the sparse ``Sᵀ G`` at MNIST size: 90 against 6 ms),
which made SAE+L0's whole solve 3× slower than TopK's. The gradient moves by at most that much
per entry, far under float32's resolution of its sums; the loss itself is exact."""


def _softmax_terms(z: torch.Tensor, onehot: torch.Tensor, dim: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample's log-loss ``lse − z_true`` and ``P − Y``, the latter in ``z``'s place, for
    logits ``z`` with the classes along ``dim``. The loss is taken per sample first: the sums
    of lse and of the true logits each run to n times a large logit, and their difference in
    float32 lost the line search its optimum. ``log P`` is floored at :data:`LOG_P_FLOOR`;
    the gradient's ``1/n`` is left to its sums, as on ``P − Y`` it would make its small
    entries subnormal again."""
    lse = torch.logsumexp(z, dim=dim, keepdim=True)
    per_sample = (lse - (z * onehot).sum(dim=dim, keepdim=True)).squeeze(dim)
    return per_sample, torch.exp_(z.sub_(lse).clamp_(min=LOG_P_FLOOR)).sub_(onehot)


class _Dense(_Codes):
    """``Z W + b`` with the standardised codes held as a dense tensor, solved in
    whitened coordinates: ``Z = U Λ Uᵀ``-decomposed through its covariance ``ZᵀZ / n``, the
    solver's variable is ``V`` with ``W = P V``, ``P = U (Λ + δ)^(-1/2)``, so it sees the codes
    ``Z P`` (covariance near the identity) and the penalty ``‖P V‖² = Σ_i ‖V_i‖² / (λ_i + δ)``:
    the same objective and minimiser, far better conditioned. Dense autoencoder codes are
    strongly correlated: on MNIST RAE codes (60,000 × 1,000) L-BFGS on ``Z`` itself took 500
    iterations to a stable accuracy, on ``Z P`` 150 (same CA). δ, a tenth of the mean
    eigenvalue, keeps the directions the codes barely span from stiffening the penalty (at a
    thousandth, bundled digits stopped further from scikit-learn's optimum).

    The codes are made and kept in float32 a block of rows at a time, and the loss reads each
    block once for both its products (:meth:`loss`): at MNIST size a solve reads 240 MB per
    pass, and one pass an evaluation, in cache-sized blocks, took about a third of the time
    of two whole passes (one thread, busy host)."""

    def __init__(self, H: np.ndarray, mean: np.ndarray, scale: np.ndarray):
        n, m = H.shape
        Z = torch.empty(n, m)
        for s in range(0, n, _ROWS):  # (H − m) / s in float64, a block at a time
            Z[s:s + _ROWS] = torch.from_numpy(((H[s:s + _ROWS] - mean) / scale)
                                              .astype(np.float32))
        lam, U = torch.linalg.eigh((Z.t() @ Z).double() / n)
        lam = lam.clamp_min(0.0)
        lam += 1e-1 * float(lam.mean()) + 1e-12
        self.P = (U * lam.rsqrt()).float()
        self.inv = lam.reciprocal().float().unsqueeze(1)  # PᵀP, diagonal
        for s in range(0, n, _ROWS):  # Z P in place: one copy of the codes lives
            Z[s:s + _ROWS] = Z[s:s + _ROWS] @ self.P
        self.Z = Z
        # ∂/∂V = Pᵀ ∂/∂W, so ‖∂/∂W‖₂ ≤ √λ_max ‖∂/∂V‖₂: the test on V, this much tighter,
        # is about as strict as the same test on W
        self.tol_scale = float(lam.max().rsqrt())

    def loss(self, W, b, onehot_t, l2) -> torch.Tensor:
        """:meth:`_Codes.loss` a block of rows at a time: each block's logits, softmax
        gradient and ``Z_bᵀ G_b`` while the block is in cache. In a block the logits are
        taken sample by row, ``Z_b W``: on a cached block that orientation is the fast one
        (0.34 against 1.17 ms at 1,024 × 1,000, 10 classes, one thread)."""
        with torch.no_grad():
            Wd, bd, n = W.detach(), b.detach(), self.Z.shape[0]
            per_row, g_all = torch.empty(n), torch.empty(n, onehot_t.shape[0])
            grad = torch.mul(Wd * self.inv, 2.0 * l2 * n).t().contiguous()  # n ∂ penalty
            for s in range(0, n, _ROWS):
                Zb, yb = self.Z[s:s + _ROWS], onehot_t[:, s:s + _ROWS].t()
                per_row[s:s + _ROWS], g = _softmax_terms(torch.mm(Zb, Wd).add_(bd), yb, dim=1)
                g_all[s:s + _ROWS] = g
                grad.addmm_(g.t(), Zb)
            W.grad = grad.t().contiguous().div_(n)
            b.grad = g_all.sum(dim=0).div_(n)
            return per_row.mean() + l2 * (Wd.square() * self.inv).sum()

    def logits(self, W, b) -> torch.Tensor:
        with torch.no_grad():
            return torch.addmm(b, self.Z, W)

    def logits_t(self, W, b) -> torch.Tensor:
        return self.logits(W, b).t()

    def coef(self, W: torch.Tensor) -> torch.Tensor:
        return self.P @ W


class _Sparse(_Codes):
    """The same, with ``Z = (H − m) / s`` never formed: ``Z W = S W − (m / s) W`` for the
    sparse ``S = H / s``, and the gradient ``Sᵀ G − (m / s) ⊗ Σ_j G_j`` written out."""

    def __init__(self, H: sp.csr_matrix, mean: np.ndarray, scale: np.ndarray):
        S = H.astype(np.float32, copy=False) @ sp.diags((1.0 / scale).astype(np.float32))
        # torch's CSR product runs on every thread: 2.5 ms for S W and 3.1 ms for Sᵀ G at
        # MNIST size (60,000 × 1,000, 25 per row, 10 classes, 2 threads) against scipy's 5.6
        # and 8.5 ms on one
        self.S, self.ST = _torch_csr(S.tocsr()), _torch_csr(S.T.tocsr())
        self.shift = torch.from_numpy((mean / scale).astype(np.float32))

    def logits_t(self, W, b) -> torch.Tensor:
        with torch.no_grad():
            return (self.S @ W + (b - self.shift @ W)).t().contiguous()

    def back(self, gt: torch.Tensor, C: torch.Tensor, beta: float) -> torch.Tensor:
        # contiguous: L-BFGS flattens the gradient with view(-1)
        return (self.ST @ gt.t() - torch.outer(self.shift, gt.sum(dim=1)) + beta * C).contiguous()


def _codes(H) -> tuple[np.ndarray | None, sp.csr_matrix | None]:
    """The codes as a float array, or as a CSR matrix where under :data:`SPARSE_BELOW` of
    their entries are non-zero (a sparse matrix given stays one: its zeros are never
    written out). Sparse codes are measured in their sparse matrix: a float64 copy of
    MNIST's training codes, and its passes, cost seconds a cell."""
    if sp.issparse(H):
        S = sp.csr_matrix(H, copy=True)  # canonical, on a copy: the caller's matrix is theirs
        S.sum_duplicates()  # a repeated entry is one value, their sum
        S.eliminate_zeros()  # stored zeros count toward no density
        if S.dtype not in (np.float32, np.float64):
            S = S.astype(np.float64)
        if S.nnz < SPARSE_BELOW * S.shape[0] * S.shape[1]:
            return None, S
        return S.toarray(), None
    H = np.asarray(H)
    if H.dtype not in (np.float32, np.float64):
        H = H.astype(np.float64)
    return H, (_csr(H) if np.count_nonzero(H) < SPARSE_BELOW * H.size else None)


def _csr(H: np.ndarray) -> sp.csr_matrix:
    """``H`` as a CSR matrix, built a block of rows at a time (each block's scan in cache:
    0.48 against 0.64 s whole, at MNIST size in blocks of 4,096)."""
    return sp.vstack([sp.csr_matrix(H[s:s + _ROWS])
                      for s in range(0, H.shape[0], _ROWS)], format="csr")


def _column_stats(H: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each column's mean, standard deviation and largest ``|h|``, in float64, a block of
    rows at a time (no float64 copy of float32 codes)."""
    n, m = H.shape
    total, sq, peak = np.zeros(m), np.zeros(m), np.zeros(m)
    for s in range(0, n, _ROWS):
        B = H[s:s + _ROWS].astype(np.float64)
        total += B.sum(axis=0)
        np.maximum(peak, np.abs(B).max(axis=0), out=peak)
    mean = total / n
    for s in range(0, n, _ROWS):  # two passes, as np.std: no E[h²] − mean² cancellation
        D = H[s:s + _ROWS] - mean
        sq += (D * D).sum(axis=0)
    return mean, np.sqrt(sq / n), peak


def _sparse_column_stats(S: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_column_stats` from the non-zeros alone, in float64: the zeros add
    ``(n − count) · mean²`` to each column's sum of squared deviations."""
    n, m = S.shape
    cols, vals = S.indices, S.data.astype(np.float64)
    count = np.bincount(cols, minlength=m)
    mean = np.bincount(cols, weights=vals, minlength=m) / n
    dev = vals - mean[cols]
    var = (np.bincount(cols, weights=dev * dev, minlength=m) + (n - count) * mean**2) / n
    peak = np.zeros(m)
    np.maximum.at(peak, cols, np.abs(vals))
    return mean, np.sqrt(var), peak


def _torch_csr(m: sp.csr_matrix) -> torch.Tensor:
    # 32-bit indices where they fit: the products read them once per non-zero, and at MNIST
    # size S W took 1.6 against 4.8 ms (Sᵀ G 3.3 against 5.1) with int32 (one thread)
    index = torch.int32 if max(m.nnz, *m.shape) < 2**31 else torch.int64
    with warnings.catch_warnings():  # "support is in beta": products are all we use
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(torch.from_numpy(m.indptr).to(index),
                                       torch.from_numpy(m.indices).to(index),
                                       torch.from_numpy(m.data.astype(np.float32)),
                                       size=m.shape,
                                       check_invariants=False)  # scipy's own: well formed


class SoftmaxClassifier:
    """Standardise, then fit ``softmax(H W + b)`` by L-BFGS; ``predict`` gives class labels.
    ``converged_`` is False only where ``max_iter`` ended the solve; ``stop_reason_`` says
    what did."""

    def __init__(self, C: float = 1.0, tol: float = 1e-5, max_iter: int = 2000,
                 stable: float | None = None, check_every: int = 50):
        self.C, self.tol, self.max_iter = C, tol, max_iter
        self.stable, self.check_every = stable, check_every

    def fit(self, H: np.ndarray | sp.spmatrix, y: np.ndarray) -> SoftmaxClassifier:
        self.classes_, idx = np.unique(y, return_inverse=True)
        H, S = _codes(H)
        self.mean_, scale, peak = _column_stats(H) if S is None else _sparse_column_stats(S)
        # constant: no spread beyond rounding, relative to the column's own size (an absolute
        # floor took every unit of codes scaled by 1e-12 for constant)
        varies = scale > 1e-12 * np.maximum(np.abs(self.mean_), peak)
        self.scale_ = np.where(varies, scale, 1.0)
        offset = np.abs(self.mean_[varies]) / self.scale_[varies]
        self.sparse_ = bool(S is not None and not (offset > MAX_OFFSET).any())
        if S is not None and not self.sparse_:  # an always-on unit: the dense path
            H = S.toarray() if H is None else H
        codes = (_Sparse(S, self.mean_, np.where(varies, self.scale_, np.inf)) if self.sparse_
                 else _Dense(H, self.mean_, self.scale_))
        target = torch.from_numpy(idx.astype(np.int64))
        onehot_t = torch.nn.functional.one_hot(target, len(self.classes_)).t().float().contiguous()
        (n, m), k = (S.shape if H is None else H.shape), len(self.classes_)
        W = torch.zeros(m, k, dtype=torch.float32, requires_grad=True)
        b = torch.zeros(k, dtype=torch.float32, requires_grad=True)
        chunk = self.max_iter if self.stable is None else min(self.check_every, self.max_iter)
        evals_per_chunk = 4 * chunk
        opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=chunk, max_eval=evals_per_chunk,
                                history_size=20, tolerance_grad=self.tol * codes.tol_scale,
                                tolerance_change=1e-12, line_search_fn="strong_wolfe")
        l2 = (2.0 if k == 2 else 1.0) / (2.0 * self.C * n)

        def closure():  # no zero_grad: loss() sets both gradients (zero_grad's wrapper cost
            return codes.loss(W, b, onehot_t, l2)  # 0.7 ms a call, a tenth of a small solve)

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
                    accuracy.append(float((codes.logits(W, b).argmax(1) == target).float()
                                          .mean()))
                last = accuracy[-3:]
                self.converged_ = len(last) == 3 and max(last) - min(last) < self.stable
        self.stop_reason_ = self._stop_reason(W, b, codes, accuracy)
        self.coef_ = codes.coef(W.detach()).numpy().T.copy()
        self.intercept_ = b.detach().numpy().copy()
        return self

    def _stop_reason(self, W, b, codes, accuracy) -> str:
        """Why the solve ended: ``"gradient"`` (below ``tol``), ``"stalled"`` (the loss stopped
        changing in float32 first: near the optimum, short of ``tol``), ``"stable"`` (the
        training accuracy settled) or ``"max_iter"`` (the cap, not converged)."""
        if not self.converged_:
            return "max_iter"
        g = max(float(W.grad.abs().max()), float(b.grad.abs().max())) \
            if W.grad is not None and b.grad is not None else 0.0
        if g <= self.tol * codes.tol_scale:
            return "gradient"
        return "stable" if len(accuracy) >= 3 else "stalled"

    def decision_function(self, H: np.ndarray) -> np.ndarray:
        # ((H − m) / s) Wᵀ + b as H (W / s)ᵀ + (b − (m / s) Wᵀ): no centred copy of H
        W = self.coef_ / self.scale_
        H = sp.csr_matrix(H, dtype=np.float64) if sp.issparse(H) else np.asarray(H, np.float64)
        return np.asarray(H @ W.T) + (self.intercept_ - W @ self.mean_)

    def predict(self, H: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(H), axis=1)]
