"""``SparseAutoencoder``: the paper's model and its baselines as a scikit-learn transformer."""

from __future__ import annotations

import numbers
import time
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .batches import make_batches
from .network import ACTIVATIONS, Autoencoder, activation
from .objective import Objective, uses_sigma
from .penalties import PENALTIES
from .streaming import check_streamed, is_streamed
from .training import TrainingDivergedError, train

__all__ = ["SparseAutoencoder", "DEFAULT_BETA", "resolve_device"]

DEFAULT_BETA = {"l1": 0.003, "kl": 0.01}
"""β used when ``beta=None`` for SAE+L1 and SAE+Ber (chosen on scikit-learn's digits: both give
clearly sparser codes than the plain autoencoder there; tune β for your data)."""

TRANSFORM_BATCH = 8192


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None picks CUDA when available, else the CPU; anything else is passed to torch."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available")
    return dev


def _stage_epochs(epochs, n_stages: int) -> list[int]:
    """Split ``epochs`` over the stages: an int is a total spread evenly (earlier stages get the
    remainder); a sequence gives each stage's count."""
    if isinstance(epochs, numbers.Integral):
        if epochs < n_stages:
            raise ValueError(f"epochs={epochs} is fewer than the {n_stages} sigma stages")
        base, extra = divmod(int(epochs), n_stages)
        return [base + (k < extra) for k in range(n_stages)]
    counts = list(epochs)
    if len(counts) != n_stages or not all(
        isinstance(c, numbers.Integral) and c >= 1 for c in counts
    ):
        raise ValueError(
            f"epochs must be a positive int or {n_stages} positive ints (one per sigma stage), "
            f"got {epochs!r}"
        )
    return [int(c) for c in counts]


class SparseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """One-hidden-layer sparse autoencoder: PSAE (squared smoothed L0) and its baselines.

    Codes are ``h = f(W1 x + b1)`` (eq. 2): after ``fit``, ``transform`` is one matrix multiply
    and an activation. The penalty picks the model:

    ============  =========================================================================
    ``"sql0"``    PSAE, eq. (9): ``(1/2N) Σ_j L0σ(h_j)² + (λ/2N) Σ_j ‖x_j − y_j‖²``
    ``"l0"``      ablation: the same with the smoothed L0 unsquared
    ``"l1"``      SAE+L1: ``(1/2N) Σ_j ‖x_j − y_j‖² + (β/N) Σ_j ‖h_j‖₁``
    ``"kl"``      SAE+Ber: ``(1/2N) Σ_j ‖x_j − y_j‖² + β Σ_i KL(ρ ‖ ρ̂_i)``
    ``"none"``    RAE: reconstruction only
    ============  =========================================================================

    Parameters
    ----------
    n_components : int, default=100
        Number of code units M.
    penalty : {"sql0", "l0", "l1", "kl", "none"}, default="sql0"
    lam : float, default=10.0
        λ of eq. (9): weight of the reconstruction cost for ``"sql0"`` and ``"l0"``. Larger λ
        means better reconstruction and denser codes.
    beta : float or None, default=None
        Penalty weight for ``"l1"`` and ``"kl"``; None uses :data:`DEFAULT_BETA`.
    rho : float, default=0.05
        Target mean activation of ``"kl"``.
    sigmas : tuple of float, default=(1.0, 0.5, 0.2, 0.1)
        Strictly decreasing σ schedule of graduated non-convexity (eq. 3, 7); each stage starts
        from the parameters the previous one ended with. Used by ``"sql0"`` and ``"l0"`` only.
    epochs : int or tuple of int, default=100
        Total epochs, spread evenly over the σ stages, or one count per stage. Penalties
        without σ train for the total, so every model gets the same budget.
    solver : {"adam", "lbfgs"}, default="adam"
        Mini-batch Adam, or full-batch L-BFGS (one "epoch" is one L-BFGS iteration).
    learning_rate : float or None, default=None
        Adam's step size, None: ``min(1e-2, 1/n_features)`` (Adam moves every weight by about
        the step size, so a pre-activation can move by ``n_features`` times it: wide inputs
        need smaller steps or the sigmoid units saturate and die); L-BFGS's, None: 1.0.
    batch_size : int, default=128
    weight_decay : float, default=0.0
        Adds ``(weight_decay/2)(‖W1‖² + ‖W2‖²)`` to the cost.
    encoder_activation, decoder_activation : str, default="sigmoid"
        One of ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"softplus"``, ``"identity"``.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    random_state : int, RandomState or None
        Seeds initialisation and shuffling; the same seed gives the same codes.
    verbose : bool, default=False
        Show a progress bar during ``fit``.

    Attributes
    ----------
    components_ : ndarray (n_components, n_features)
        Decoder atoms (rows of W2ᵀ): what each code unit adds to the reconstruction.
    encoder_weight_, encoder_bias_, decoder_weight_, decoder_bias_ : ndarray
        W1 (M, D), b1 (M,), W2 (D, M), b2 (D,).
    history_ : list of dict
        One record per epoch: stage, sigma, epoch, loss, reconstruction, sparsity, seconds.
    stages_ : list of dict
        One record per σ stage: sigma, epochs, final loss.
    n_iter_ : int
        Epochs run.
    """

    def __init__(
        self,
        n_components: int = 100,
        penalty: str = "sql0",
        lam: float = 10.0,
        beta: float | None = None,
        rho: float = 0.05,
        sigmas: Sequence[float] = (1.0, 0.5, 0.2, 0.1),
        epochs: int | Sequence[int] = 100,
        solver: str = "adam",
        learning_rate: float | None = None,
        batch_size: int = 128,
        weight_decay: float = 0.0,
        encoder_activation: str = "sigmoid",
        decoder_activation: str = "sigmoid",
        device: str = "auto",
        random_state=None,
        verbose: bool = False,
    ):
        self.n_components = n_components
        self.penalty = penalty
        self.lam = lam
        self.beta = beta
        self.rho = rho
        self.sigmas = sigmas
        self.epochs = epochs
        self.solver = solver
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.encoder_activation = encoder_activation
        self.decoder_activation = decoder_activation
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ parameters
    def _validate_params(self) -> None:
        def positive(name, value, strict=True, integer=False):
            kind = numbers.Integral if integer else numbers.Real
            ok = isinstance(value, kind) and not isinstance(value, bool)
            ok = ok and (value > 0 if strict else value >= 0) and np.isfinite(value)
            if not ok:
                what = "an integer" if integer else "a number"
                sign = "> 0" if strict else ">= 0"
                raise ValueError(f"{name} must be {what} {sign}, got {value!r}")

        if self.penalty not in PENALTIES:
            raise ValueError(f"unknown penalty {self.penalty!r}; choose one of {PENALTIES}")
        positive("n_components", self.n_components, integer=True)
        positive("lam", self.lam, strict=False)
        if self.beta is not None:
            positive("beta", self.beta, strict=False)
        if not (isinstance(self.rho, numbers.Real) and 0 < self.rho < 1):
            raise ValueError(f"rho must lie in (0, 1), got {self.rho!r}")
        if self.learning_rate is not None:
            positive("learning_rate", self.learning_rate)
        positive("batch_size", self.batch_size, integer=True)
        positive("weight_decay", self.weight_decay, strict=False)
        try:
            sig = np.asarray(self.sigmas, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            sig = np.array([np.nan])
        if (np.ndim(self.sigmas) != 1 or sig.size == 0 or not np.all(np.isfinite(sig))
                or np.any(sig <= 0)):
            raise ValueError(f"sigmas must be a non-empty sequence of positive numbers, "
                             f"got {self.sigmas!r}")
        if np.any(np.diff(sig) >= 0):
            raise ValueError(f"sigmas must be strictly decreasing (graduated non-convexity), "
                             f"got {tuple(self.sigmas)}")
        if self.solver not in ("adam", "lbfgs"):
            raise ValueError(f"unknown solver {self.solver!r}; choose 'adam' or 'lbfgs'")
        for name in ("encoder_activation", "decoder_activation"):
            if getattr(self, name) not in ACTIVATIONS:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; "
                                 f"choose one of {ACTIVATIONS}")

    def _schedule(self) -> tuple[list[float | None], list[int]]:
        if uses_sigma(self.penalty):
            sigmas = [float(s) for s in self.sigmas]
            return sigmas, _stage_epochs(self.epochs, len(sigmas))
        if isinstance(self.epochs, numbers.Integral):
            return [None], _stage_epochs(self.epochs, 1)
        return [None], [sum(_stage_epochs(self.epochs, len(self.epochs)))]

    def _learning_rate(self, n_features: int) -> float:
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return min(1e-2, 1.0 / n_features) if self.solver == "adam" else 1.0

    def _objective(self) -> Objective:
        beta = DEFAULT_BETA.get(self.penalty, 0.0) if self.beta is None else float(self.beta)
        return Objective(self.penalty, float(self.lam), beta, float(self.rho),
                         float(self.weight_decay))

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None) -> SparseAutoencoder:
        """Train on ``X`` (n_samples, n_features); ``y`` is ignored.

        ``X`` may be a ``np.memmap`` (or :func:`psae.streaming.open_shards` of ``.npy`` shards):
        it is then streamed in chunks instead of being loaded whole.
        """
        self._validate_params()
        if is_streamed(X):
            check_streamed(X)
            self.n_features_in_ = X.shape[1]
        else:
            X = validate_data(self, X, dtype=[np.float32, np.float64], ensure_min_samples=2)
        self._fit(X)
        return self

    def _fit(self, X, rank: int = 0, world: int = 1, wrap=None, seed: int | None = None) -> None:
        device = resolve_device(self.device)
        if seed is None:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        init_gen = torch.Generator().manual_seed(seed)
        shuffle_gen = torch.Generator().manual_seed(seed + 1)
        module = Autoencoder(X.shape[1], self.n_components, self.encoder_activation,
                             self.decoder_activation, generator=init_gen).to(device)
        batches = make_batches(X, self.batch_size, device, rank=rank, world=world)
        sigmas, epochs = self._schedule()
        objective = self._objective()
        self.device_ = str(device)
        t0 = time.perf_counter()
        try:
            history = train(
                module, batches, objective, sigmas=sigmas, epochs=epochs, solver=self.solver,
                lr=self._learning_rate(X.shape[1]), generator=shuffle_gen,
                net=wrap(module) if wrap else None, progress=bool(self.verbose),
            )
        except TrainingDivergedError as e:
            self._set_weights(module)
            self.history_ = e.history
            self.n_iter_ = len(e.history)
            self.stages_ = []
            raise
        self.fit_time_ = time.perf_counter() - t0
        self._set_weights(module)
        self.history_ = history
        self.n_iter_ = len(history)
        self.stages_ = [
            {"sigma": s, "epochs": e,
             "loss": [h["loss"] for h in history if h["stage"] == k][-1]}
            for k, (s, e) in enumerate(zip(sigmas, epochs, strict=True))
        ]

    def _set_weights(self, module: Autoencoder) -> None:
        def np_(t):
            return t.detach().to("cpu", torch.float32).numpy().copy()

        self.encoder_weight_ = np_(module.W1)
        self.encoder_bias_ = np_(module.b1)
        self.decoder_weight_ = np_(module.W2)
        self.decoder_bias_ = np_(module.b2)

    @property
    def components_(self) -> np.ndarray:
        check_is_fitted(self, "decoder_weight_")
        return self.decoder_weight_.T

    @property
    def _n_features_out(self) -> int:
        return self.n_components

    # ------------------------------------------------------------------ encoding
    def _check_input(self, X):
        check_is_fitted(self, "encoder_weight_")
        if is_streamed(X):
            check_streamed(X, n_features=self.n_features_in_, name=type(self).__name__)
            return X
        return validate_data(self, X, dtype=[np.float64, np.float32], reset=False)

    def _apply(self, X, weight, bias, act_name, out=None, batch=TRANSFORM_BATCH):
        device = resolve_device(self.device)
        dtype = torch.float64 if np.dtype(getattr(X, "dtype", np.float32)) == np.float64 \
            else torch.float32
        W = torch.as_tensor(weight).to(device=device, dtype=dtype)
        b = torch.as_tensor(bias).to(device=device, dtype=dtype)
        f = activation(act_name)
        n = X.shape[0]
        if out is None:
            out = np.empty((n, W.shape[0]), dtype=np.float64 if dtype == torch.float64
                           else np.float32)
        elif out.shape != (n, W.shape[0]):
            raise ValueError(f"out has shape {out.shape}, expected {(n, W.shape[0])}")
        with torch.inference_mode():
            for s in range(0, n, batch):
                rows = np.asarray(X[s:s + batch])
                if not rows.flags.writeable:
                    rows = rows.copy()
                xb = torch.from_numpy(rows).to(device=device, dtype=dtype)
                out[s:s + batch] = f(torch.addmm(b, xb, W.t())).cpu().numpy()
        return out

    def transform(self, X, out=None):
        """Codes ``H = f(X W1ᵀ + b1)`` (eq. 2), computed in batches.

        ``out`` (an array or ``np.memmap`` of shape (n_samples, n_components)) receives the
        codes without holding them all in memory at once. float32 input gives float32 codes.
        """
        X = self._check_input(X)
        return self._apply(X, self.encoder_weight_, self.encoder_bias_,
                           self.encoder_activation, out)

    def inverse_transform(self, H):
        """Reconstructions ``Y = g(H W2ᵀ + b2)`` from codes of shape (n_samples, n_components)."""
        check_is_fitted(self, "decoder_weight_")
        H = self._check_codes(H)
        return self._apply(H, self.decoder_weight_, self.decoder_bias_,
                           self.decoder_activation)

    def _check_codes(self, H):
        H = check_array(H, dtype=[np.float64, np.float32])
        if H.shape[1] != self.n_components:
            raise ValueError(f"H has {H.shape[1]} code units, but {type(self).__name__} has "
                             f"n_components={self.n_components}")
        return H

    def score(self, X, y=None) -> float:
        """Negative mean reconstruction error (eq. 13), so that higher is better.

        Computed batch by batch, so streamed input is never loaded whole."""
        X = self._check_input(X)
        total = 0.0
        for s in range(0, X.shape[0], TRANSFORM_BATCH):
            xb = np.asarray(X[s:s + TRANSFORM_BATCH], dtype=np.float64)
            x_hat = self.inverse_transform(self.transform(xb))
            total += float(np.sum((xb - x_hat) ** 2))
        return -total / (X.shape[0] * X.shape[1])

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write ``path/`` (safetensors weights + JSON config), atomically."""
        from .persistence import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path, device: str | None = None) -> SparseAutoencoder:
        """Read a model directory written by :meth:`save` (``device`` overrides the saved one)."""
        from .persistence import load_model

        return load_model(path, device=device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.non_deterministic = False
        return tags
