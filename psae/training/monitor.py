"""What the trainer watches while it trains: which units fire, the mean L0, and what to do about
dead units and a target L0.

- :class:`FiringTracker` counts, per unit, the training samples since it last fired
  (``h > threshold``); a unit silent for ``window`` samples is dead. Its fraction goes into every
  epoch record and the saved model; TopK's AuxK loss reads the dead mask.
- :class:`L0Controller` adapts a mechanism's penalty weight toward a target mean L0 by dual
  ascent on its logarithm, from the training batches (the estimator steers to the end of
  training; ``frozen`` stops it).
- :func:`resample_dead` re-initialises dead units toward poorly reconstructed inputs (the
  remedy of the penalised models' literature), resetting their Adam moments.
"""

from __future__ import annotations

import math

import torch

from ..distributed import SINGLE, Comm
from ..errors import ParameterError
from .masks import EXACT_SUM, indicator
from .network import Autoencoder

__all__ = ["FiringTracker", "L0Controller", "resample_dead", "MIN_PERIODS"]

MIN_PERIODS = 8
"""Controller steps a fit's steering gets at the least (the full matched protocols get 8 or
more at the asked period; quick runs and small files shorter periods)."""


class FiringTracker:
    """Samples since each unit last fired, and the per-batch mean L0."""

    def __init__(self, n_components: int, window: int, threshold: float,
                 device: torch.device, comm: Comm = SINGLE):
        self.window, self.threshold = int(window), float(threshold)
        self.since = torch.zeros(n_components, dtype=torch.long, device=device)
        self.last_l0, self.last_rows = float("nan"), 0
        self.comm = comm

    @torch.no_grad()
    def observe(self, h: torch.Tensor) -> float:
        """Update with one batch of codes; returns the batch's mean L0. Data-parallel, the
        global batch's: every rank then steers, stops and finds dead units alike (each
        rank's own share gave each its own knob and dead units, and the ranks drifted)."""
        # 0/1 floats (:mod:`.masks`: 0.3 against 0.6 ms for a bool matrix reduced twice, 256 ×
        # 1,000 on one thread), reduced once: each unit's count says whether it fired, and
        # their sum is the batch's (exact: integers under 2²⁴ in float32, or float64)
        per_unit = indicator(h.abs(), self.threshold).sum(
            dim=0, dtype=torch.float64 if h.shape[0] >= EXACT_SUM else torch.float32)
        fired = per_unit > 0
        count, rows = float(per_unit.sum(dtype=torch.float64)), h.shape[0]
        if self.comm.world > 1:
            v = self.comm.all_sum(torch.cat([fired.double(), torch.tensor(
                [count, rows], dtype=torch.float64, device=h.device)]))
            fired, count, rows = v[:-2] > 0, float(v[-2]), int(v[-1])
        self.since += rows
        self.since.masked_fill_(fired, 0)
        self.last_l0, self.last_rows = count / rows, rows
        return self.last_l0

    def dead(self) -> torch.Tensor:
        """Units silent for the last ``window`` samples (none before a window has passed)."""
        return self.since >= self.window

    def dead_fraction(self) -> float:
        return float(self.dead().float().mean())


class L0Controller:
    """Steers the mechanism's knob toward ``target`` mean L0 from the training batches.

    The model answers a new weight slowly (units silenced by a too strong penalty take hundreds
    of steps to come back; JumpReLU thresholds climb at Adam's pace and, once above every
    pre-activation, never come back), so asking for the target at once makes any integral
    controller overshoot. Instead the setpoint moves geometrically from the L0 of the first
    ``period`` steps to ``target`` over the first ``ramp`` of the steering steps (as gradual
    pruning schedules do) and then holds; the mean L0 of each ``period`` steps decides one step
    ``log w += sign · gain · log(L̂0 / setpoint)``, clipped to ±``max_step`` (a damped Newton
    step for ``L0 ∝ w^(−sign)``), where ``L̂0`` extrapolates the trend of the period means
    ``lead`` periods ahead (the derivative term of a PD controller, for a lagging model).
    ``settings`` is the objective's (mutable) settings dict;
    nothing moves while ``frozen``; :meth:`start` says how many steps it will steer. ``band``:
    the L0s, as multiples of ``target``, at which training counts as on target. ``spare``: a
    second ``(parameter, sign)`` that takes the steps the knob cannot, once the knob is pinned
    at its bound on the sparser side (KL's ρ at its floor, then β); it never goes denser than
    its start, and gives its moves back before the knob moves the denser way again.
    """

    def __init__(self, settings: dict, knob: tuple[str, float], target: float,
                 period: int = 50, gain: float = 1.0, max_step: float = 0.3,
                 bounds: tuple[float, float] = (0.0, math.inf), ramp: float = 0.6,
                 lead: float = 1.0, band: tuple[float, float] = (0.95, 1.05),
                 spare: tuple[str, float] | None = None,
                 spare_bounds: tuple[float, float] = (0.0, math.inf)):
        self.settings, (self.param, self.sign) = settings, knob
        self.spare, self.spare_bounds = spare, spare_bounds
        self._spare_start = float(settings[spare[0]]) if spare else None
        self.band = band
        self.target, self.period = float(target), max(1, int(period))
        self._asked_period = self.period
        self.gain, self.max_step, self.bounds, self.ramp = gain, max_step, bounds, ramp
        self.lead = lead
        self.frozen = False
        self._last: float | None = None
        self._sum, self._n, self._step, self._steps = 0.0, 0, 0, 1
        self._start_l0: float | None = None
        if not self.settings.get(self.param):
            raise ValueError(f"target_l0 adapts {self.param}, which must start > 0")
        if spare and not spare_bounds[0] < self._spare_start <= spare_bounds[1]:
            raise ParameterError(f"target_l0 may adapt {spare[0]}, which must start in "
                                 f"({spare_bounds[0]}, {spare_bounds[1]}]: got "
                                 f"{self._spare_start}")

    def start(self, steps: int) -> None:
        """Steering begins now and lasts ``steps`` steps, in periods of the asked length or,
        where that leaves fewer than :data:`MIN_PERIODS`, shorter ones: a fit of fewer steps
        than one period (60 rows, batch 16, 6 epochs: 24 steps against 50) never moved its
        knob, and said nothing."""
        self._steps, self._step = max(1, int(steps)), 0
        self.period = max(1, min(self._asked_period, self._steps // MIN_PERIODS))

    @property
    def ramped(self) -> bool:
        """The setpoint has reached the target."""
        return self._start_l0 is not None and self._step >= self.ramp * self._steps

    def on_target(self, l0: float) -> bool:
        """Whether ``l0`` is within the band around the target (a fit may stop only there)."""
        return self.band[0] <= l0 / self.target <= self.band[1]

    def setpoint(self) -> float:
        if self._start_l0 is None:
            return self.target
        p = min(1.0, self._step / (self.ramp * self._steps))
        return self.target * (self._start_l0 / self.target) ** (1.0 - p)

    def update(self, l0: float) -> None:
        if self.frozen or not math.isfinite(l0):
            return
        self._step += 1
        self._sum += l0
        self._n += 1
        if self._n < self.period:
            return
        mean = self._sum / self._n
        self._sum, self._n = 0.0, 0
        mean = max(mean, 0.05)
        if self._start_l0 is None:
            self._start_l0 = mean
        # where L0 is heading ``lead`` periods on, not where it is: the model lags the weight
        trend = 0.0 if self._last is None else math.log(mean / self._last)
        self._last = mean
        # > 0: the codes must get sparser
        sparser = self.gain * (math.log(mean / self.setpoint()) + self.lead * trend)
        sparser = max(-self.max_step, min(self.max_step, sparser))
        if self.spare and (self._spare_moved() or (sparser > 0 and self._pinned())):
            name, sign = self.spare
            value = self.settings[name] * math.exp(sign * sparser)
            # never denser than where it started: from there on the knob steers again
            value = max(value, self._spare_start) if sign > 0 else min(value, self._spare_start)
            self.settings[name] = _clip(value, self.spare_bounds)
            return
        value = self.settings[self.param] * math.exp(self.sign * sparser)
        self.settings[self.param] = _clip(value, self.bounds)

    def _pinned(self) -> bool:
        """The knob sits at its bound on the sparser side."""
        w = self.settings[self.param]
        return w <= self.bounds[0] if self.sign < 0 else w >= self.bounds[1]

    def _spare_moved(self) -> bool:
        """The spare knob has moved away from its start (always to the sparser side)."""
        return self.settings[self.spare[0]] != self._spare_start

    @property
    def spare_weight(self) -> float | None:
        return float(self.settings[self.spare[0]]) if self.spare else None

    @property
    def weight(self) -> float:
        return float(self.settings[self.param])


def _clip(value: float, bounds: tuple[float, float]) -> float:
    return float(min(max(value, bounds[0]), bounds[1]))


@torch.no_grad()
def resample_dead(module: Autoencoder, dead: torch.Tensor, x: torch.Tensor,
                  optimizer: torch.optim.Optimizer | None, generator: torch.Generator) -> int:
    """Point each dead unit at an input drawn with probability ∝ its squared reconstruction
    error (Bricken et al., 2023): encoder row along the input's residual at the alive rows' mean
    norm, decoder column along it at a small norm, bias making the unit fire there; their Adam
    moments start afresh. Returns the number of units resampled."""
    idx = torch.nonzero(dead).flatten()
    if idx.numel() == 0:
        return 0
    fwd = module(x)
    residual = x - fwd.y
    err = residual.square().sum(dim=1)
    if float(err.sum()) <= 0:
        return 0
    pick = torch.multinomial(err / err.sum(), idx.numel(), replacement=True, generator=generator)
    direction = torch.nn.functional.normalize(residual[pick], dim=1)
    alive = ~dead
    norm = module.W1[alive].norm(dim=1).mean() if alive.any() else module.W1.norm(dim=1).mean()
    centred = x[pick] - (module.b2 if getattr(module, "pre_bias", False) else 0.0)
    module.W1[idx] = direction * norm
    module.b1[idx] = -(direction * norm * centred).sum(dim=1)  # a = 0 at the chosen input
    module.atoms[idx] = direction * 0.2
    if optimizer is not None:  # moments of the old, dead unit would steer the new one
        for p in (module.W1, module.b1, module.atoms):
            for key in ("exp_avg", "exp_avg_sq"):
                if p in optimizer.state and key in optimizer.state[p]:
                    optimizer.state[p][key][idx] = 0
    return int(idx.numel())
