"""What watches training, as hooks the :class:`~psae.training.trainer.Trainer` calls.

A hook is any object with the methods of :class:`Hook` (each a no-op there). The trainer calls
every hook, in the order it was given them: at each stage's start, around every step, at every
epoch's end (a hook adds its figures to the epoch's record), after each epoch for whether the
stage is over, and once when training ends. :func:`fit_hooks` puts a fit's watchers in the order
they must run: the firing tracker first (its L0 feeds the controller, its dead mask AuxK and
the resampler), the thread tuner last (the step it times includes the others' work).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .monitor import FiringTracker, L0Controller, resample_dead
from .stopping import Plateau
from .threads import ThreadTuner

__all__ = ["Hook", "FiringHook", "ControllerHook", "ResampleHook", "StopHook", "ThreadHook",
           "fit_hooks"]


class Hook:
    """The hook protocol; subclasses override what they need."""

    ends_training = False
    """Whether :meth:`stage_over` may end training early (then ``max_epochs`` may extend the
    last stage past its plan)."""

    def stage_start(self, trainer, stage: int, sigmas: Sequence, batches) -> None:
        """Stage ``stage`` (at ``sigmas[stage]``) begins; its optimiser is fresh."""

    def before_step(self, trainer) -> None:
        """A step is about to run."""

    def after_step(self, trainer, h: torch.Tensor | None) -> None:
        """A step ran; ``h`` its batch's codes (None: not watched, as under L-BFGS)."""

    def dead_units(self) -> torch.Tensor | None:
        """The units AuxK is to train on this step (None: this hook does not say)."""
        return None

    def epoch_end(self, trainer, rec: dict, batches, generator: torch.Generator) -> None:
        """An epoch ended; ``rec`` is its record, to add to."""

    def stage_over(self, trainer, rec: dict, last: bool) -> bool:
        """Whether the stage is over after the epoch of ``rec`` (in the ``last`` stage: whether
        training is)."""
        return False

    def training_end(self, trainer) -> None:
        """The last stage is over (before the final check of the loss)."""


class FiringHook(Hook):
    """The firing tracker: sees every batch's codes; each epoch's mean L0 and dead fraction go
    into its record; with ``auxk`` its dead mask is the one AuxK trains."""

    def __init__(self, tracker: FiringTracker, auxk: bool = False):
        self.tracker, self.auxk = tracker, auxk
        self._l0_sum, self._l0_n = 0.0, 0

    def after_step(self, trainer, h: torch.Tensor | None) -> None:
        if h is None:
            return
        # weighted by the batch's rows, as the epoch's loss terms are
        l0 = self.tracker.observe(h)
        self._l0_sum += l0 * self.tracker.last_rows
        self._l0_n += self.tracker.last_rows

    def dead_units(self) -> torch.Tensor | None:
        return self.tracker.dead() if self.auxk else None

    def epoch_end(self, trainer, rec: dict, batches, generator: torch.Generator) -> None:
        if self._l0_n == 0:  # no step handed codes over (L-BFGS): nothing was tracked
            rec["l0"] = rec["dead_fraction"] = None
            return
        rec["l0"] = self._l0_sum / self._l0_n
        rec["dead_fraction"] = self.tracker.dead_fraction()
        self._l0_sum, self._l0_n = 0.0, 0


class ControllerHook(Hook):
    """The target-L0 controller: steps on every batch's L0 (the ``tracker``'s), steers in the
    stages whose σ is within 2x of the last, records its weight each epoch."""

    def __init__(self, controller: L0Controller, tracker: FiringTracker):
        self.controller, self.tracker = controller, tracker

    def stage_start(self, trainer, stage: int, sigmas: Sequence, batches) -> None:
        """The controller steers in the stages whose σ is within 2x of the last (a wide σ cannot
        make codes exactly sparse); when it first may, it learns how long it has."""
        epochs = trainer.plan
        active = [s is None or s <= 2 * sigmas[-1] for s in sigmas]
        was_frozen = self.controller.frozen or stage == 0
        self.controller.frozen = not active[stage]
        if active[stage] and was_frozen:
            n = len(batches) if trainer.solver == "adam" else 1
            self.controller.start(n * sum(e for e, a in zip(epochs[stage:], active[stage:],
                                                            strict=True) if a))

    def after_step(self, trainer, h: torch.Tensor | None) -> None:
        if h is not None:
            self.controller.update(self.tracker.last_l0)

    def epoch_end(self, trainer, rec: dict, batches, generator: torch.Generator) -> None:
        rec[self.controller.param] = self.controller.weight
        if self.controller.spare:
            rec[self.controller.spare[0]] = self.controller.spare_weight


class ResampleHook(Hook):
    """``revive="resample"``: dead units re-initialised at each epoch's end."""

    def __init__(self, tracker: FiringTracker):
        self.tracker = tracker

    def epoch_end(self, trainer, rec: dict, batches, generator: torch.Generator) -> None:
        if bool(self.tracker.dead().any()):
            n = resample_dead(trainer.module, self.tracker.dead(),
                              batches.sample(4096, generator), trainer.optimizer, generator)
            trainer.comm.broadcast_parameters(trainer.module)  # the ranks agree on the dead
            self.tracker.since[self.tracker.dead()] = 0  # a fresh unit gets a fresh window
            rec["resampled"] = n


class StopHook(Hook):
    """The stopping rule (:class:`~psae.training.stopping.Plateau`): an earlier stage hands over
    once settled, the last ends on a second plateau (on target, with a ``controller``), and
    training ends on the last stage's best parameters."""

    ends_training = True

    def __init__(self, stopper: Plateau, controller: L0Controller | None = None):
        self.stopper, self.controller = stopper, controller

    def stage_start(self, trainer, stage: int, sigmas: Sequence, batches) -> None:
        self.stopper.new_stage(last=stage == len(sigmas) - 1)

    def stage_over(self, trainer, rec: dict, last: bool) -> bool:
        return self._converged(trainer, rec) if last else self._settled(trainer, rec)

    def _converged(self, trainer, rec: dict) -> bool:
        """The stopper's verdict in the last stage (validation RE joins the epoch record)."""
        c = self.controller
        on_target = c is None or (c.ramped and c.on_target(rec.get("l0", 0.0)))
        rec["val_re"], stop = self.stopper.after_epoch(trainer, on_target)
        rec["lr"] = trainer.lr
        return stop

    def _settled(self, trainer, rec: dict) -> bool:
        """Whether a stage before the last may hand over: it has stopped improving, and no
        controller is steering in it (a steered stage's RE rises with the sparsity it is
        asked for, which is no plateau)."""
        if self.controller is not None and not self.controller.frozen:
            return False
        rec["val_re"] = re = self.stopper.observe(trainer.module)
        return self.stopper.settled(re)

    def training_end(self, trainer) -> None:
        if trainer.history:
            self._end_on_best(trainer, trainer.history[-1])

    def _end_on_best(self, trainer, rec: dict) -> None:
        """Back to the last stage's best parameters by validation RE; the record says so."""
        if "val_re" in rec and self.stopper.restore_best(trainer.module, rec["val_re"]):
            rec["restored_best"] = self.stopper.best_state_re


class ThreadHook(Hook):
    """The thread tuner (:class:`~psae.training.threads.ThreadTuner`), timing every step."""

    def __init__(self, tuner: ThreadTuner):
        self.tuner = tuner

    def before_step(self, trainer) -> None:
        self.tuner.before_step()

    def after_step(self, trainer, h: torch.Tensor | None) -> None:
        self.tuner.after_step()


def fit_hooks(tracker: FiringTracker, controller: L0Controller | None = None,
              stopper: Plateau | None = None, tuner: ThreadTuner | None = None,
              revive: str = "none") -> list[Hook]:
    """A fit's hooks in the order they must run (the module's docstring says why)."""
    hooks: list[Hook] = [FiringHook(tracker, auxk=revive == "auxk")]
    if controller is not None:
        hooks.append(ControllerHook(controller, tracker))
    if revive == "resample":
        hooks.append(ResampleHook(tracker))
    if stopper is not None:
        hooks.append(StopHook(stopper, controller))
    if tuner is not None:
        hooks.append(ThreadHook(tuner))
    return hooks
