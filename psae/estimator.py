"""``SparseAutoencoder``: the paper's model and its baselines as a scikit-learn transformer.

The estimator holds the parameters and their checks; fitting lives in :mod:`psae.training.fit`,
encoding in :mod:`psae.encode`, saving and loading in :mod:`psae.model_files`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from . import encode, model_files, sparsity
from .distributed import Comm
from .errors import InputError, ParameterError, TrainingDivergedError
from .params import resolve_device, stage_epochs, validate
from .streaming import check_streamed, is_streamed
from .training import fit as fitting
from .training.network import Activation
from .validation import checked_array, validated

LAYOUT = ("n_components", "penalty", "encoder_activation", "decoder_activation")
"""The parameters that say how the fitted weights are laid out and read: fixed by ``fit``."""

__all__ = ["SparseAutoencoder", "resolve_device"]


def _is_fitted_attribute(name: str) -> bool:
    return (name.endswith("_") and not name.startswith("__")) or name == "_fitted_layout"


def _fitted_state(est) -> dict:
    """What ``fit`` writes: the attributes with scikit-learn's trailing underscore, and the
    layout the weights were fitted with."""
    return {k: v for k, v in vars(est).items() if _is_fitted_attribute(k)}


def _restore_fitted_state(est, state: dict) -> None:
    """Put back :func:`_fitted_state`'s ``state``: an attribute it lacks is removed."""
    for name in [k for k in vars(est) if _is_fitted_attribute(k) and k not in state]:
        delattr(est, name)
    for name, value in state.items():
        setattr(est, name, value)


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
        means better reconstruction and denser codes. Like every parameter of some penalties
        only (``beta``, ``rho``, ``sigmas``, ``k``, ``encode_k``, ``target_l0``,
        ``bandwidth``), setting it for a penalty that ignores it is an error in ``fit``.
    beta : float or None, default=None
        Penalty weight for ``"l1"``, ``"kl"``, ``"jumprelu"`` and ``"sqjumprelu"``; None uses
        the mechanism's default
        ({beta_defaults}).
    rho : float, default=0.05
        Target mean activation of ``"kl"``.
    sigmas : tuple of float, default=(1.0, 0.5, 0.2, 0.1)
        Strictly decreasing σ schedule of graduated non-convexity (eq. 3, 7); each stage starts
        from the parameters the previous one ended with. Used by ``"sql0"`` and ``"l0"`` only.
    k : int or None, default=None
        Active units per sample of ``"topk"`` (per sample on average for ``"batchtopk"``);
        None: ``max(1, n_components // 20)``.
    encode_k : int or None, default=None
        ``"topk"`` only: units kept when encoding after training (Makhzani & Frey took
        classification features with a larger k than they trained with); None: ``k``.
    target_l0 : float or None, default=None
        Penalised models: steer the penalty's knob (λ, β, or KL's ρ, then its β once ρ is at
        its floor) during training so that the mean number of active units per sample
        (|h| > 0.01) approaches this target: damped steps on its logarithm from the training
        batches' L0, waiting while L0 is still on its way (σ models steer in their last
        stages, σ ≤ 2·σ_final). It steers to the end: frozen
        earlier, L0 kept drifting past the target (the model answers a weight change slowly).
        The knob starts at the given ``lam``/``beta``/``rho``: a start near the right value
        (from a shorter fit, say) lands closer. The final weight is ``penalty_weight_``; the
        training L0 reached, ``history_[-1]["l0"]``. Unless ``raw_codes``, training aims
        ``AIM`` (15 %) above the target and an inference threshold (``inference_threshold_``)
        chosen on held-out rows (the early-stopping rows, else a sample of the training rows)
        then puts the mean L0 of the codes ``transform`` returns exactly on it: their small
        activations become exact zeros.
    raw_codes : bool, default=False
        With ``target_l0`` (or ``"batchtopk"`` with ``early_stopping``, whose threshold is
        likewise chosen on the held-out rows): keep the codes as the code layer makes them
        (no inference threshold; training aims at the target itself).
    bandwidth : float or None, default=None
        ``"jumprelu"``/``"sqjumprelu"``: width ε of the straight-through estimator's kernel;
        None: 0.05.
    epochs : int or tuple of int, default=100
        Total epochs, spread evenly over the σ stages, or one count per stage. Penalties
        without σ train for the total, so every model gets the same budget. With
        ``early_stopping``, the most it may run.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows and stop once their
        reconstruction error has converged: when it has not improved by ``tol`` (relative) for
        ``n_iter_no_change`` epochs the learning rate drops to 0.3x, and the next such plateau
        ends training (σ models only in their last stage; with ``target_l0`` only once L0 is
        on target; each σ stage before the last ends once its RE has settled, giving its
        remaining epochs to the last). The RE watched is that of the codes the model will be
        judged on: with an inference threshold, the trimmed codes. ``history_`` records
        ``val_re`` and ``lr`` per epoch.
    max_epochs : int or None, default=None
        With ``early_stopping``: the last stage goes on past ``epochs`` until the stopping rule
        ends it, at most ``max_epochs`` epochs in all (``epochs`` stays the schedule the σ
        stages and the target-L0 ramp are laid out on). None: ``epochs`` is the cap.
    validation_fraction : float, default=0.1
        Share of the training rows held out for ``early_stopping``.
    n_iter_no_change : int, default=3
        Epochs without improvement that make a plateau.
    tol : float, default=0.005
        Relative improvement of validation RE that counts as progress (relative to the RE, or
        to a tenth of the held-out rows' variance once the RE is below that).
    solver : {{"adam", "lbfgs"}}, default="adam"
        Mini-batch Adam, or full-batch L-BFGS (one "epoch" is one L-BFGS iteration).
    learning_rate : float or None, default=None
        Adam's step size, None: ``min(1e-2, 1/n_features) · sqrt(batch_size / 128)`` (Adam
        moves every weight by about the step size, so a pre-activation can move by
        ``n_features`` times it: wide inputs need smaller steps or the sigmoid units saturate
        and die; the square root keeps the noise of a step constant across batch sizes);
        L-BFGS's, None: 1.0.
    batch_size : int or "auto", default="auto"
        Samples per mini-batch (the global batch under data parallelism). ``"auto"``: 256 from
        20,000 training samples up, else 128, rounded up to a multiple of the world size under
        data parallelism. 256 measured best on MNIST (benchmarks/README.md):
        CA as at 128, RE 12 % higher at the same epochs, each epoch 1.5x faster; 512 and 1024
        lost more RE and left more units dead; small data sets need the steps of 128.
    weight_decay : float, default=0.0
        Adds ``(weight_decay/2)(‖W1‖² + ‖W2‖²)`` to the cost.
    encoder_activation : {{"sigmoid", "tanh", "relu", "softplus", "identity"}} or None, \
default=None
        The code layer f of the paper's models; None: sigmoid. Models with a code layer of their
        own (topk, batchtopk, jumprelu, sqjumprelu) take None only.
    decoder_activation : {{"sigmoid", "tanh", "relu", "softplus", "identity"}} or None, \
default=None
        The output layer g; None: the mechanism's (sigmoid for the paper's models, identity
        for topk, batchtopk, jumprelu, sqjumprelu).
    revive : {{"auto", "auxk", "resample", "none"}}, default="auto"
        What to do about dead units (silent for ``dead_window`` training samples): ``"auxk"``
        trains them on the residual (TopK's auxiliary loss, weight 1/32, 2k units);
        ``"resample"`` points them at poorly reconstructed inputs at each epoch's end;
        ``"auto"``: auxk for topk/batchtopk, resample for l1 and kl, none for the rest.
    dead_window : int, default=10000
        Training samples without firing after which a unit counts as dead.
    device : str, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    precision : {{"auto", "fp32", "bf16"}}, default="auto"
        Where the matrix products of ``fit`` and ``transform`` run: ``"bf16"`` in bfloat16 with
        float32 results, master weights, optimiser state and loss sums (4-5x the float32
        matrix speed on CPUs with AMX or AVX512-BF16, and on GPU tensor cores); ``"auto"``
        picks bf16 where the hardware runs it natively and the layer has at least 78,125
        weights (smaller products lose more to the casts than they gain), else ``"fp32"``. The
        choice made is ``precision_``.
    threads : int or "auto", default="auto"
        CPU threads for ``fit``. ``"auto"``: one for small problems; for large ones the faster
        of one and all of torch's threads, re-measured while training (on a machine shared
        with a busy process, two threads were 1.9x slower than one in
        ``benchmarks/contention.py``). Results are repeatable bit
        for bit at a fixed count; give an int for that on a machine whose load changes.
    random_state : int, RandomState or None, default=None
        Seeds initialisation and shuffling; the same seed gives the same codes. An int must lie
        in 0 .. 2**32 - 1 (numpy's seeds).
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
        A fit whose codes collapsed (every input the same code) is restarted, at most twice,
        from a start centred on the data with a 10x lower step size each time (with a
        ``ConvergenceWarning``); its records then carry ``restart`` (1 or 2).
    stages_ : list of dict
        One record per σ stage: sigma, epochs, final loss.
    n_iter_ : int
        Epochs run.
    batch_size_ : int
        The batch size ``fit`` used (at most the number of training rows; all of them with
        ``solver="lbfgs"``, which steps on the whole set).
    stopped_early_ : bool
        Whether the stopping rule (``early_stopping``) ended the fit: it judged the fit
        converged (on target, with ``target_l0``), if only on the last epoch it was allowed.
        False where the epochs, or ``max_epochs``, ran out first.
    precision_ : {{"fp32", "bf16"}}
        The precision ``fit`` ran in.
    dead_fraction_ : float
        Fraction of units that had not fired (|h| > 0.01) in the last ``dead_window``
        training samples when training ended (before ``revive="resample"`` re-initialised
        them).
    penalty_weight_ : float or None
        The penalty's knob as training ended (λ, β, or KL's ρ; adapted when ``target_l0`` is
        set). KL's β, which ``target_l0`` moves once ρ is at its floor, is in ``history_``.
    code_state_ : dict of ndarray
        The code layer's own parameters and buffers (JumpReLU thresholds, BatchTopK's
        inference threshold); empty for the paper's models.
    """

    def __init__(
        self,
        n_components: int = 100,
        penalty: str = "sql0",
        lam: float = 10.0,
        beta: float | None = None,
        rho: float = 0.05,
        sigmas: Sequence[float] = (1.0, 0.5, 0.2, 0.1),
        k: int | None = None,
        encode_k: int | None = None,
        target_l0: float | None = None,
        raw_codes: bool = False,
        bandwidth: float | None = None,
        epochs: int | Sequence[int] = 100,
        early_stopping: bool = False,
        max_epochs: int | None = None,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 3,
        tol: float = 0.005,
        solver: str = "adam",
        learning_rate: float | None = None,
        batch_size: int | str = "auto",
        weight_decay: float = 0.0,
        encoder_activation: str | None = None,
        decoder_activation: str | None = None,
        revive: str = "auto",
        dead_window: int = 10000,
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
        self.k = k
        self.encode_k = encode_k
        self.target_l0 = target_l0
        self.raw_codes = raw_codes
        self.bandwidth = bandwidth
        self.epochs = epochs
        self.early_stopping = early_stopping
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.solver = solver
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.encoder_activation = encoder_activation
        self.decoder_activation = decoder_activation
        self.revive = revive
        self.dead_window = dead_window
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
        validate(self)

    def _settings(self) -> dict:
        """The parameters as the mechanism reads them, its defaults filled in."""
        return self.mechanism.settings(self.get_params())

    def _schedule(self) -> tuple[list[float | None], list[int]]:
        if self.mechanism.uses_sigma:
            sigmas = [float(s) for s in self.sigmas]
            return sigmas, stage_epochs(self.epochs, len(sigmas))
        if isinstance(self.epochs, numbers.Integral):
            return [None], stage_epochs(self.epochs, 1)
        return [None], [sum(stage_epochs(self.epochs, len(self.epochs)))]

    def _learning_rate(self, n_features: int) -> float:
        if self.learning_rate is not None:
            return float(self.learning_rate)
        if self.solver != "adam":
            return 1.0
        return min(1e-2, 1.0 / n_features) * (self.batch_size_ / 128) ** 0.5

    def _code_layer(self, settings: dict) -> torch.nn.Module:
        make = self.mechanism.code
        return Activation(self.encoder_activation or "sigmoid") if make is None else \
            make(self.n_components, settings)

    @property
    def _decoder(self) -> str:
        return self.decoder_activation or self.mechanism.decoder

    def _revive(self) -> str:
        return self.mechanism.revive if self.revive == "auto" else self.revive

    def _layout(self) -> dict:
        """The parameters the weights are laid out and read by (:data:`LAYOUT`), now."""
        now = {name: getattr(self, name) for name in LAYOUT}
        now["penalty"] = self.mechanism.name  # "psae" and "sql0" are one model
        return now

    def _check_layout(self) -> None:
        """Refuse to read the fitted weights by a layout ``set_params`` changed since ``fit``
        (they would fail to load, or encode by another code layer without a word)."""
        fitted = getattr(self, "_fitted_layout", None)  # None: pickled by an older psae
        if fitted is None:
            return
        now = self._layout()
        changed = [name for name in LAYOUT if now[name] != fitted[name]]
        if changed:
            was = ", ".join(f"{n}={fitted[n]!r}" for n in changed)
            raise ParameterError(
                f"this model was fitted with {was}, and set_params has since made it "
                + ", ".join(f"{n}={now[n]!r}" for n in changed)
                + f": fit it again, or set_params({was}) to use the fitted weights")

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None) -> SparseAutoencoder:
        """Train on ``X`` (n_samples, n_features); ``y`` is ignored.

        ``X`` may be a ``np.memmap`` (or :func:`psae.streaming.open_shards` of ``.npy`` shards):
        it is then streamed in chunks instead of being loaded whole. Inside
        :func:`psae.distributed.process_group` (under ``torchrun``) every rank calls ``fit``
        on the same ``X`` and takes its share of each batch.
        """
        self._validate_params()
        before = _fitted_state(self)
        try:
            comm = Comm.current()
            comm.check_device(resolve_device(self.device))  # before any collective
            try:
                X = self._check_fit_input(X)
            except Exception as e:  # every rank stops, not only the one whose rows were bad
                comm.same_input(None, e)
                raise
            comm.same_input(X)
            fitting.fit(self, X, comm)
        except TrainingDivergedError:
            raise  # it keeps the last parameters whose loss was finite, as its message says
        except BaseException:
            # a refit that fails (bad rows, a collapse, Ctrl-C) leaves the model it replaces
            # as it was, not half overwritten (a threshold gone, the new batch size beside
            # the old weights) yet still counting as fitted
            _restore_fitted_state(self, before)
            raise
        return self

    def _check_fit_input(self, X):
        if is_streamed(X):
            check_streamed(X, min_samples=2)
            self.n_features_in_ = X.shape[1]
            if hasattr(self, "feature_names_in_"):  # an earlier fit's, on a DataFrame
                del self.feature_names_in_
            return X
        return validated(self, X, dtype=[np.float32, np.float64], ensure_min_samples=2)

    @property
    def components_(self) -> np.ndarray:
        check_is_fitted(self, "decoder_weight_")
        return self.decoder_weight_.T

    @property
    def _n_features_out(self) -> int:
        fitted = getattr(self, "encoder_weight_", None)
        return self.n_components if fitted is None else fitted.shape[0]

    # ------------------------------------------------------------------ encoding
    def _check_input(self, X):
        check_is_fitted(self, "encoder_weight_")
        self._check_layout()
        if is_streamed(X):
            check_streamed(X, n_features=self.n_features_in_, name=type(self).__name__)
            return X
        return validated(self, X, dtype=[np.float64, np.float32], reset=False)

    def transform(self, X, out=None, *, raw: bool = False):
        """Codes ``H = f(X W1ᵀ + b1)`` (eq. 2), computed in batches; where the fit chose an
        inference threshold (``target_l0``), activations at or under it are exact zeros
        (``raw=True``: the code layer's own output).

        ``out`` (an array or ``np.memmap`` of shape (n_samples, n_components)) receives the
        codes without holding them all in memory at once. float32 input gives float32 codes.
        """
        X = self._check_input(X)
        return encode.transform(self, X, out, raw=raw)

    def inverse_transform(self, H):
        """Reconstructions ``Y = g(H W2ᵀ + b2)`` from codes of shape (n_samples, n_components)."""
        check_is_fitted(self, "decoder_weight_")
        self._check_layout()
        H = self._check_codes(H)
        return encode.inverse_transform(self, H)

    def _check_codes(self, H):
        H = checked_array(H, "H")
        if H.shape[1] != self.n_components:
            raise InputError(f"H has {H.shape[1]} code units, but {type(self).__name__} has "
                             f"n_components={self.n_components}")
        return H

    def score(self, X, y=None) -> float:
        """Negative mean reconstruction error (eq. 13), so that higher is better.

        Computed batch by batch, so streamed input is never loaded whole."""
        X = self._check_input(X)
        return encode.score(self, X)

    # ------------------------------------------------------------------ persistence
    def save(self, path, *, force: bool = False) -> None:
        """Write ``path/`` (safetensors weights + JSON config), atomically; a directory holding
        files psae did not write is refused unless ``force``."""
        model_files.save(self, path, force=force)

    @classmethod
    def load(cls, path, device: str | None = None, *, drop_preprocessing: bool = False
             ) -> SparseAutoencoder:
        """Read a model directory written by :meth:`save` (``device`` overrides the saved one).

        A directory that also holds preprocessing (what ``psae fit`` and ``psae.save`` of a
        pipeline write) loads whole with :func:`psae.load`; here it is an error unless
        ``drop_preprocessing=True`` says that only the autoencoder is wanted.
        """
        return model_files.load(cls, path, device, drop_preprocessing)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.non_deterministic = False
        return tags


SparseAutoencoder.__doc__ = SparseAutoencoder.__doc__.format(
    penalties=_penalty_table(), beta_defaults=sparsity.defaults_of("beta"))
