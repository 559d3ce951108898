"""The record each sparsity mechanism registers: what it needs, how it scores codes, its grid.

Everything that varies between models lives in one :class:`Mechanism`, so the estimator, the
objective, the CLI, ``psae reproduce`` and the docs read one place. A new model is one module
that builds its record plus one line in :mod:`psae.sparsity`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Mechanism", "Settings", "Computed"]

Settings = Mapping[str, Any]
"""The estimator's parameters as the mechanism sees them, with its ``defaults`` filled in."""


@dataclass(frozen=True)
class Computed:
    """A default computed from the other parameters, with the rule in words for docs and
    ``--help`` (``Computed(lambda p: p["n_components"] // 20, "n_components // 20")``)."""

    rule: Callable[[Mapping[str, Any]], Any]
    text: str

    def __call__(self, params: Mapping[str, Any]) -> Any:
        return self.rule(params)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Mechanism:
    """One sparsity mechanism.

    The training cost is ``w_r · mean_j ‖x_j − y_j‖² + w_s · sparsity`` with
    ``(w_r, w_s) = weights(settings)`` and ``sparsity = penalty(h, sigma, settings, **extra)``
    (a batch mean, so mini-batch costs estimate the full cost; ``extra`` is what the code layer
    hands over besides the codes, e.g. JumpReLU's straight-through gates).
    """

    name: str
    """Value of ``SparseAutoencoder(penalty=...)`` and of ``--penalty``."""
    label: str
    """Display name in reports and tables (``"PSAE"``)."""
    summary: str
    """One line: what the mechanism is (``--help``, docs)."""
    formula: str
    """Its training cost, in the paper's notation."""
    key: str = ""
    """Model name in ``psae reproduce --models`` and in results files (``"psae"``); default:
    ``name``."""
    params: tuple[str, ...] = ()
    """Estimator parameters it reads (beyond the ones every model reads)."""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    """Values for those of ``params`` the user left at None."""
    penalty: Callable[..., torch.Tensor] | None = None
    """``(h, sigma, settings, **extra) -> scalar`` sparsity term; None: no penalty."""
    penalty_grad: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None
    """``(h, sigma, settings) -> (sparsity, ∂sparsity/∂h)`` written out by hand, for the fused
    training step (:mod:`psae.training.fused`); None: the step goes through autograd. Tests check it
    against autograd of ``penalty``."""
    weights: Callable[[Settings], tuple[float, float]] = lambda s: (0.5, 0.0)
    """``settings -> (w_r, w_s)``: weights of the reconstruction and sparsity terms."""
    uses_sigma: bool = False
    """Trains along the σ schedule (graduated non-convexity, stage by stage)."""
    code: Callable[[int, Settings], torch.nn.Module] | None = None
    """``(n_components, settings) -> module`` turning pre-activations into codes; None: the
    estimator's ``encoder_activation`` (sigmoid by default). A code module may hold parameters
    (JumpReLU's thresholds) and buffers (BatchTopK's inference threshold); they are saved with
    the model."""
    decoder: str = "sigmoid"
    """Default output activation g (``decoder_activation=None``)."""
    pre_bias: bool = False
    """Encode ``x − b_pre`` with ``b_pre`` the decoder bias, started at the data mean (the TopK
    recipe): without it one shared component wins everywhere and the other units die."""
    tied_init: bool = False
    """Start with unit-norm decoder columns and ``W_enc = W_decᵀ``."""
    unit_norm_decoder: bool = False
    """Keep decoder columns at unit norm (gradient component along each column removed, then
    renormalised after every step)."""
    knob: tuple[str, float] | None = None
    """``(parameter, sign)`` that ``target_l0`` adapts: ``log w += sign · η · (L0 − T)/T``,
    e.g. ``("beta", +1)`` (more weight, sparser) or ``("lam", -1)`` (more λ, denser)."""
    knob_bounds: tuple[float, float] = (0.0, float("inf"))
    """Where ``target_l0`` may move the knob (ρ stays inside (0, 1))."""
    spare_knob: tuple[str, float] | None = None
    """``(parameter, sign)`` that ``target_l0`` moves once the knob is pinned at its bound and
    the codes must still get sparser (KL: ρ at its floor, then β)."""
    spare_bounds: tuple[float, float] = (0.0, float("inf"))
    revive: str = "none"
    """The dead-unit remedy of ``revive="auto"``: ``"auxk"``, ``"resample"`` or ``"none"``."""
    grid: tuple[Mapping[str, Any], ...] = ({},)
    """Points of its own knobs that ``psae reproduce`` tries on the validation split."""
    quick_grid: tuple[Mapping[str, Any], ...] = ({},)
    """The cut-down grid of ``psae reproduce --quick``."""

    def __post_init__(self):
        if not self.key:
            object.__setattr__(self, "key", self.name)

    def settings(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` with this mechanism's defaults in place of None (a callable default is
        given the parameters, e.g. ``k`` from ``n_components``)."""
        out = dict(params)
        for k, v in self.defaults.items():
            if out.get(k) is None:
                out[k] = v(out) if callable(v) else v
        return out
