"""How many CPU threads a fit uses: the faster of one and all, measured while training.

On a 2-core machine shared with another busy process, two OpenMP threads stall at every barrier
while one of them waits for a core: an MNIST-sized fit took 1.9x as long with 2 threads as with
1 (benchmarks/contention.py; 2.6-3x in an earlier measurement), while on an idle machine 2
threads are 1.5x faster. No fixed count is right in both cases, so :class:`ThreadTuner` times a
few steps at the other count every so often and keeps the faster, with a margin so that noise
does not make it flip.

Small problems (a step under :data:`SMALL_STEP_FLOPS`) are dispatch-bound: extra threads do not
speed them up, so they run on one thread and never tune. Results are bit-for-bit repeatable at a
fixed thread count; the thread count changes the order of a few float reductions, so under
``threads="auto"`` two fits of a large model on a machine whose load changes agree to float
rounding (about 1e-6), not bit for bit: pass ``threads=N`` where bits matter.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

__all__ = ["ThreadTuner", "SMALL_STEP_FLOPS", "plan_threads"]

SMALL_STEP_FLOPS = 2e8
"""Below this many useful FLOPs a step (10·B·D·M), one thread is as fast as several."""


def plan_threads(threads: int | str, step_flops: float, device: torch.device,
                 available: int | None = None) -> tuple[int, bool]:
    """``(threads to start with, whether to tune)`` for a fit."""
    available = available or torch.get_num_threads()
    if device.type != "cpu":
        return available, False
    if threads != "auto":
        return int(threads), False
    if step_flops < SMALL_STEP_FLOPS or available == 1:
        return 1, False
    return available, True


class ThreadTuner:
    """Switch torch's thread count between ``high`` and 1 to whichever runs steps faster.

    Call :meth:`before_step` and :meth:`after_step` around each training step. After the first
    ``probe`` steps, and then every ``period`` seconds, it runs ``probe`` steps at the other
    count (after one warm-up step) and moves there when their median step time beats the
    current count's by more than ``margin``.
    """

    def __init__(self, high: int, period: float = 2.0, probe: int = 8, margin: float = 1.15,
                 clock: Callable[[], float] = time.perf_counter,
                 set_threads: Callable[[int], None] = torch.set_num_threads):
        self.choices = (high, 1)
        self.current = high
        self.period, self.probe, self.margin = period, probe, margin
        self.clock, self.set_threads = clock, set_threads
        self.switches = 0
        self._recent: list[float] = []  # step times at the current count
        self._trial: list[float] | None = None  # step times at the other count while probing
        self._last_decision = -float("inf")  # probe as soon as there is a baseline
        self._t0 = 0.0
        self.set_threads(self.current)

    @property
    def probing(self) -> bool:
        return self._trial is not None

    def _other(self) -> int:
        return self.choices[1] if self.current == self.choices[0] else self.choices[0]

    def before_step(self) -> None:
        self._t0 = self.clock()
        if (self._trial is None and len(self._recent) == self.probe
                and self._t0 - self._last_decision >= self.period):
            self._trial = []
            self.set_threads(self._other())
            self._warm = True

    def after_step(self) -> None:
        dt = self.clock() - self._t0
        if self._trial is None:
            self._recent = (self._recent + [dt])[-self.probe:]
        elif self._warm:  # the first step at a new count warms it up
            self._warm = False
        else:
            self._trial.append(dt)
            if len(self._trial) == self.probe:
                self._decide()

    def _decide(self) -> None:
        mine, theirs = statistics.median(self._recent), statistics.median(self._trial)
        if theirs * self.margin < mine:
            self.current = self._other()
            self.switches += 1
            self._recent = list(self._trial)
        self.set_threads(self.current)
        self._trial = None
        self._last_decision = self.clock()
