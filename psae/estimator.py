"""``SparseAutoencoder``: the paper's model and its baselines as a scikit-learn transformer."""

from __future__ import annotations

import numbers
import time
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

from . import persistence, sparsity
from .batches import make_batches
from .distributed import Comm
from .errors import InputError, ModelFormatError, ParameterError, TrainingCollapsedError
from .network import ACTIVATIONS, Activation, Autoencoder
from .objective import Objective
from .precision import resolve_precision
from .streaming import check_streamed, is_streamed
from .threads import ThreadTuner, plan_threads
from .trainer import Trainer, TrainingDivergedError
from .validation import check_finite, validated

__all__ = ["SparseAutoencoder", "resolve_device"]

TRANSFORM_BATCH = 8192
COLLAPSE_SPREAD = 1e-6
"""A fit whose every unit varies by at most this much across training inputs has collapsed."""
_WEIGHTS = ("encoder_weight_", "encoder_bias_", "decoder_weight_", "decoder_bias_")
_TENSORS = ("encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"``/None picks CUDA when available, else the CPU; ``"cpu"``, ``"cuda"`` and
    ``"cuda:N"`` are checked against what this machine has."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ParameterError(f"device {device!r} is not one psae can use; choose 'auto', "
                             "'cpu', 'cuda' or 'cuda:N'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ParameterError(f"device {device!r} was asked for but CUDA is not available "
                                 "on this machine; use 'cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ParameterError(f"device {device!r}: this machine has "
                                 f"{torch.cuda.device_count()} CUDA device(s)")
    return dev


def _stage_epochs(epochs, n_stages: int) -> list[int]:
    """Split ``epochs`` over the stages: an int is a total spread evenly (earlier stages get the
    remainder); a sequence gives each stage's count."""
    if isinstance(epochs, numbers.Integral) and not isinstance(epochs, bool):
        if epochs < 1:
            raise ParameterError(f"epochs must be at least 1, got {epochs}")
        if epochs < n_stages:
            raise ParameterError(f"epochs={epochs} is fewer than the {n_stages} sigma stages "
                                 "(give at least one epoch per stage)")
        base, extra = divmod(int(epochs), n_stages)
        return [base + (k < extra) for k in range(n_stages)]
    counts = list(epochs)
    if len(counts) != n_stages or not all(
        isinstance(c, numbers.Integral) and c >= 1 for c in counts
    ):
        raise ParameterError(
            f"epochs must be a positive int or {n_stages} positive ints (one per sigma stage), "
            f"got {epochs!r}"
        )
    return [int(c) for c in counts]


def _check_number(name, value, strict=True, integer=False) -> None:
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    ok = ok and (value > 0 if strict else value >= 0) and np.isfinite(value)
    if not ok:
        what = "an integer" if integer else "a number"
        raise ParameterError(f"{name} must be {what} {'> 0' if strict else '>= 0'}, got {value!r}")


def _check_sigmas(sigmas) -> None:
    try:
        sig = np.asarray(sigmas, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        sig = np.array([np.nan])
    if np.ndim(sigmas) != 1 or sig.size == 0 or not np.all(np.isfinite(sig)) or np.any(sig <= 0):
        raise ParameterError(f"sigmas must be a non-empty sequence of positive numbers, "
                         f"got {sigmas!r}")
    if np.any(np.diff(sig) >= 0):
        raise ParameterError(f"sigmas must be strictly decreasing (graduated non-convexity), "
                         f"got {tuple(sigmas)}")


def _penalty_table() -> str:
    rows = [(f'``"{m.name}"``', f"{m.summary}: ``{m.formula}``")
            for m in (sparsity.get(n) for n in sparsity.names())]
    width = max(len(a) for a, _ in rows)
    rule = "=" * width + "  " + "=" * 60
    lines = [rule] + [f"    {a:<{width}}  {b}" for a, b in rows] + ["    " + rule]
    return "\n".join(lines)


class SparseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """One-hidden-layer sparse autoencoder: PSAE (squared smoothed L0) and its baselines.

    Codes are ``h = f(W1 x + b1)`` (eq. 2): after ``fit``, ``transform`` is one matrix multiply
    and an activation. The penalty picks the model (the registry :mod:`psae.sparsity`):

    {penalties}

    Parameters
    ----------
    n_components : int, default=100
        Number of code units M.
    penalty : str, default="sql0"
        The sparsity mechanism, one of :func:`psae.sparsity.names`.
    lam : float, default=10.0
        λ of eq. (9): weight of the reconstruction cost for ``"sql0"`` and ``"l0"``. Larger λ
        means better reconstruction and denser codes.
    beta : float or None, default=None
        Penalty weight for ``"l1"`` and ``"kl"``; None uses the mechanism's default
        ({beta_defaults}).
    rho : float, default=0.05
        Target mean activation of ``"kl"``.
    sigmas : tuple of float, default=(1.0, 0.5, 0.2, 0.1)
        Strictly decreasing σ schedule of graduated non-convexity (eq. 3, 7); each stage starts
        from the parameters the previous one ended with. Used by ``"sql0"`` and ``"l0"`` only.
    epochs : int or tuple of int, default=100
        Total epochs, spread evenly over the σ stages, or one count per stage. Penalties
        without σ train for the total, so every model gets the same budget.
    solver : {{"adam", "lbfgs"}}, default="adam"
        Mini-batch Adam, or full-batch L-BFGS (one "epoch" is one L-BFGS iteration).
    learning_rate : float or None, default=None
        Adam's step size, None: ``min(1e-2, 1/n_features)`` (Adam moves every weight by about
        the step size, so a pre-activation can move by ``n_features`` times it: wide inputs
        need smaller steps or the sigmoid units saturate and die); L-BFGS's, None: 1.0.
    batch_size : int, default=128
        Samples per mini-batch (the global batch under data parallelism).
    weight_decay : float, default=0.0
        Adds ``(weight_decay/2)(‖W1‖² + ‖W2‖²)`` to the cost.
    encoder_activation : {{"sigmoid", "tanh", "relu", "softplus", "identity"}}, default="sigmoid"
        The code layer f of the paper's models.
    decoder_activation : {{"sigmoid", "tanh", "relu", "softplus", "identity"}}, default="sigmoid"
        The output layer g.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    precision : {{"auto", "fp32", "bf16"}}, default="auto"
        Where the matrix products of ``fit`` and ``transform`` run: ``"bf16"`` in bfloat16 with
        float32 results, master weights, optimiser state and loss sums (4-5x the float32
        matrix speed on CPUs with AMX or AVX512-BF16, and on GPU tensor cores); ``"auto"``
        picks bf16 where the hardware runs it natively, else ``"fp32"``. The choice made is
        ``precision_``.
    threads : int or "auto", default="auto"
        CPU threads for ``fit``. ``"auto"``: one for small problems; for large ones the faster
        of one and all of torch's threads, re-measured while training (on a machine shared
        with a busy process, two threads can be 3x slower than one). Results are repeatable bit
        for bit at a fixed count; give an int for that on a machine whose load changes.
    random_state : int, RandomState or None, default=None
        Seeds initialisation and shuffling; the same seed gives the same codes.
    verbose : bool, default=False
        Show a progress bar during ``fit`` (on the main rank only under data parallelism).

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
    precision_ : {{"fp32", "bf16"}}
        The precision ``fit`` ran in.
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
        precision: str = "auto",
        threads: int | str = "auto",
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
        self.precision = precision
        self.threads = threads
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ parameters
    @property
    def mechanism(self) -> sparsity.Mechanism:
        """The registry record of ``penalty``."""
        return sparsity.get(self.penalty)

    def _validate_params(self) -> None:
        self.mechanism  # noqa: B018 - raises for an unknown penalty
        _check_number("n_components", self.n_components, integer=True)
        _check_number("lam", self.lam, strict=False)
        if self.beta is not None:
            _check_number("beta", self.beta, strict=False)
        if not (isinstance(self.rho, numbers.Real) and 0 < self.rho < 1):
            raise ParameterError(f"rho must lie in (0, 1), got {self.rho!r}")
        if self.learning_rate is not None:
            _check_number("learning_rate", self.learning_rate)
        _check_number("batch_size", self.batch_size, integer=True)
        _check_number("weight_decay", self.weight_decay, strict=False)
        _check_sigmas(self.sigmas)
        if self.threads != "auto":
            _check_number("threads", self.threads, integer=True)
        resolve_precision(self.precision, resolve_device(self.device), warn=False)
        if self.solver not in ("adam", "lbfgs"):
            raise ParameterError(f"unknown solver {self.solver!r}; choose 'adam' or 'lbfgs'")
        for name in ("encoder_activation", "decoder_activation"):
            if getattr(self, name) not in ACTIVATIONS:
                raise ParameterError(f"unknown {name} {getattr(self, name)!r}; "
                                 f"choose one of {ACTIVATIONS}")

    def _settings(self) -> dict:
        """The parameters as the mechanism reads them, its defaults filled in."""
        return self.mechanism.settings(self.get_params())

    def _schedule(self) -> tuple[list[float | None], list[int]]:
        if self.mechanism.uses_sigma:
            sigmas = [float(s) for s in self.sigmas]
            return sigmas, _stage_epochs(self.epochs, len(sigmas))
        if isinstance(self.epochs, numbers.Integral):
            return [None], _stage_epochs(self.epochs, 1)
        return [None], [sum(_stage_epochs(self.epochs, len(self.epochs)))]

    def _learning_rate(self, n_features: int) -> float:
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return min(1e-2, 1.0 / n_features) if self.solver == "adam" else 1.0

    def _code_layer(self, settings: dict) -> torch.nn.Module:
        make = self.mechanism.code
        return Activation(self.encoder_activation) if make is None else \
            make(self.n_components, settings)

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None) -> SparseAutoencoder:
        """Train on ``X`` (n_samples, n_features); ``y`` is ignored.

        ``X`` may be a ``np.memmap`` (or :func:`psae.streaming.open_shards` of ``.npy`` shards):
        it is then streamed in chunks instead of being loaded whole. Inside
        :func:`psae.distributed.process_group` (under ``torchrun``) every rank calls ``fit``
        on the same ``X`` and takes its share of each batch.
        """
        self._validate_params()
        X = self._check_fit_input(X)
        comm = Comm.current()
        if comm.world > 1 and self.batch_size % comm.world:
            import warnings

            warnings.warn(f"batch_size={self.batch_size} is not divisible by the world size "
                          f"{comm.world}: ranks get unequal shares and steps differ slightly "
                          "from a single process", stacklevel=2)
        self._fit(X, comm)
        return self

    def _check_fit_input(self, X):
        if is_streamed(X):
            check_streamed(X)
            self.n_features_in_ = X.shape[1]
            return X
        return validated(self, X, dtype=[np.float32, np.float64], ensure_min_samples=2)

    def _seed(self, comm: Comm) -> int:
        if self.random_state is None and comm.world > 1:
            return comm.shared_seed(None)  # every rank must draw the same init and shuffles
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _fit(self, X, comm: Comm) -> None:
        device = resolve_device(self.device)
        seed = self._seed(comm)
        settings = self._settings()
        module = Autoencoder(X.shape[1], self.n_components, self._code_layer(settings),
                             self.decoder_activation,
                             generator=torch.Generator().manual_seed(seed)).to(device)
        batches = make_batches(X, self.batch_size, device, comm)
        sigmas, epochs = self._schedule()
        restore = torch.get_num_threads()
        n_threads, tune = plan_threads(
            self.threads, 10.0 * batches.batch_size * X.shape[1] * self.n_components, device)
        torch.set_num_threads(n_threads)
        self.precision_ = resolve_precision(self.precision, device)
        trainer = Trainer(module, Objective(self.mechanism, settings),
                          lr=self._learning_rate(X.shape[1]), solver=self.solver,
                          weight_decay=float(self.weight_decay), comm=comm,
                          progress=bool(self.verbose), precision=self.precision_,
                          tuner=ThreadTuner(n_threads) if tune else None)
        self.device_ = str(device)
        t0 = time.perf_counter()
        try:
            history = trainer.fit(batches, sigmas, epochs, torch.Generator().manual_seed(seed + 1))
        except TrainingDivergedError as e:
            self._store(module, e.history, [])
            raise
        finally:
            torch.set_num_threads(restore)
        self.fit_time_ = time.perf_counter() - t0
        stages = [{"sigma": s, "epochs": e,
                   "loss": [h["loss"] for h in history if h["stage"] == k][-1]}
                  for k, (s, e) in enumerate(zip(sigmas, epochs, strict=True))]
        self._store(module, history, stages)
        self._check_not_collapsed(X)

    def _check_not_collapsed(self, X, rows: int = 2048) -> None:
        """A fit whose codes do not depend on the input (all zero, or every unit saturated)
        failed, whatever its loss says."""
        H = self.transform(np.asarray(X[:rows]))
        spread = float(np.ptp(H, axis=0).max()) if H.size else 0.0
        if spread > COLLAPSE_SPREAD:
            return
        level = float(np.abs(H).mean())
        state = "all zero" if level <= COLLAPSE_SPREAD else f"stuck at {level:.3g}"
        err = TrainingCollapsedError(
            f"the fit collapsed: every training input gets the same code ({state}; no unit "
            f"varies by more than {spread:.1e} across {H.shape[0]} inputs), so the codes carry "
            f"no information. Lower the learning rate (it was "
            f"{self._learning_rate(X.shape[1]):.3g}; None gives min(1e-2, 1/n_features)) or the "
            "penalty weight, or check that the inputs differ and are scaled (psae.Normalizer).")
        err.history = self.history_
        raise err

    def _store(self, module: Autoencoder, history: list[dict], stages: list[dict]) -> None:
        def np_(t):
            return t.detach().to("cpu", torch.float32).numpy().copy()

        for name, p in zip(_WEIGHTS, (module.W1, module.b1, module.W2, module.b2), strict=True):
            setattr(self, name, np_(p))
        self.history_ = history
        self.n_iter_ = len(history)
        self.stages_ = stages

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
        return validated(self, X, dtype=[np.float64, np.float32], reset=False)

    def _apply(self, X, weight, bias, post, out=None, batch=TRANSFORM_BATCH):
        """``post(X Wᵀ + b)`` batch by batch, into ``out`` (allocated when None); float32 input
        multiplies in this model's precision, float64 input in float64."""
        device = resolve_device(self.device)
        dtype = torch.float64 if np.dtype(getattr(X, "dtype", np.float32)) == np.float64 \
            else torch.float32
        bf16 = dtype == torch.float32 and \
            resolve_precision(self.precision, device, warn=False) == "bf16"
        W = torch.as_tensor(weight).to(device=device, dtype=torch.bfloat16 if bf16 else dtype)
        b = torch.as_tensor(bias).to(device=device, dtype=dtype)
        n = X.shape[0]
        if out is None:
            out = np.empty((n, W.shape[0]), dtype=np.float64 if dtype == torch.float64
                           else np.float32)
        elif out.shape != (n, W.shape[0]):
            raise ParameterError(f"out has shape {out.shape}, expected {(n, W.shape[0])}")
        with torch.inference_mode():
            for s in range(0, n, batch):
                rows = np.asarray(X[s:s + batch])
                if not rows.flags.writeable:
                    rows = rows.copy()
                xb = torch.from_numpy(rows).to(device=device, dtype=W.dtype)
                a = torch.mm(xb, W.t()).float().add_(b) if bf16 else torch.addmm(b, xb, W.t())
                out[s:s + batch] = post(a).cpu().numpy()
        return out

    def transform(self, X, out=None):
        """Codes ``H = f(X W1ᵀ + b1)`` (eq. 2), computed in batches.

        ``out`` (an array or ``np.memmap`` of shape (n_samples, n_components)) receives the
        codes without holding them all in memory at once. float32 input gives float32 codes.
        """
        X = self._check_input(X)
        code = self._code_layer(self._settings()).eval()
        return self._apply(X, self.encoder_weight_, self.encoder_bias_, code, out)

    def inverse_transform(self, H):
        """Reconstructions ``Y = g(H W2ᵀ + b2)`` from codes of shape (n_samples, n_components)."""
        check_is_fitted(self, "decoder_weight_")
        H = self._check_codes(H)
        return self._apply(H, self.decoder_weight_, self.decoder_bias_,
                           Activation(self.decoder_activation))

    def _check_codes(self, H):
        check_finite(H, "H")
        try:
            H = check_array(H, dtype=[np.float64, np.float32])
        except ValueError as e:
            raise InputError(str(e)) from e
        if H.shape[1] != self.n_components:
            raise InputError(f"H has {H.shape[1]} code units, but {type(self).__name__} has "
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
    def _state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """This fitted model as ``(config, arrays)``: what :mod:`psae.persistence` writes."""
        check_is_fitted(self, "encoder_weight_")
        arrays = {t: np.ascontiguousarray(getattr(self, a))
                  for t, a in zip(_TENSORS, _WEIGHTS, strict=True)}
        config = {"params": persistence.jsonable(self.get_params()),
                  "n_features_in": int(self.n_features_in_),
                  "history": getattr(self, "history_", []),
                  "stages": getattr(self, "stages_", []),
                  "fit_time": getattr(self, "fit_time_", None),
                  "precision": getattr(self, "precision_", None)}
        if hasattr(self, "feature_names_in_"):
            config["feature_names_in"] = [str(n) for n in self.feature_names_in_]
        return config, arrays

    @classmethod
    def _from_state(cls, config: dict, arrays: dict[str, np.ndarray], where: str = "model",
                    device: str | None = None) -> SparseAutoencoder:
        """Rebuild a fitted model from what :meth:`_state` returned (shapes checked)."""
        params = dict(config["params"])
        for k in ("sigmas", "epochs"):
            if isinstance(params.get(k), list):
                params[k] = tuple(params[k])
        if device is not None:
            params["device"] = device
        elif str(params.get("device", "auto")).startswith("cuda") \
                and not torch.cuda.is_available():
            params["device"] = "auto"
        try:
            model = cls(**params)
        except TypeError as e:
            raise persistence.ModelFormatError(f"{where}: unexpected parameters ({e})") from e
        D, M = int(config["n_features_in"]), int(params["n_components"])
        shapes = {"encoder.weight": (M, D), "encoder.bias": (M,),
                  "decoder.weight": (D, M), "decoder.bias": (D,)}
        persistence.check_shapes(arrays, shapes, where)
        for t, a in zip(_TENSORS, _WEIGHTS, strict=True):
            setattr(model, a, arrays[t])
        model.n_features_in_ = D
        if "feature_names_in" in config:
            model.feature_names_in_ = np.asarray(config["feature_names_in"], dtype=object)
        model.history_ = config.get("history", [])
        model.stages_ = config.get("stages", [])
        model.n_iter_ = len(model.history_)
        if config.get("fit_time") is not None:
            model.fit_time_ = config["fit_time"]
        if config.get("precision") is not None:
            model.precision_ = config["precision"]
        return model

    def save(self, path) -> None:
        """Write ``path/`` (safetensors weights + JSON config), atomically."""
        config, arrays = self._state()
        persistence.write_model(path, config, arrays)

    @classmethod
    def load(cls, path, device: str | None = None, *, drop_preprocessing: bool = False
             ) -> SparseAutoencoder:
        """Read a model directory written by :meth:`save` (``device`` overrides the saved one).

        A directory that also holds preprocessing (what ``psae fit`` and ``psae.save`` of a
        pipeline write) loads whole with :func:`psae.load`; here it is an error unless
        ``drop_preprocessing=True`` says that only the autoencoder is wanted.
        """
        config, arrays = persistence.read_model(path)
        if config.get("normalizer") is not None and not drop_preprocessing:
            raise ModelFormatError(
                f"{path} holds a Normalizer and a SparseAutoencoder (the preprocessing it was "
                "trained with): load both with psae.load(path), or only the autoencoder with "
                "SparseAutoencoder.load(path, drop_preprocessing=True)")
        return cls._from_state(config, arrays, str(path), device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.non_deterministic = False
        return tags


SparseAutoencoder.__doc__ = SparseAutoencoder.__doc__.format(
    penalties=_penalty_table(), beta_defaults=sparsity.defaults_of("beta"))
