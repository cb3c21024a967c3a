"""Values that change over a run, as pure functions of the step (so a resumed run continues exactly).

- The conditioning transition (Shahbazi et al. 2022, "Collapse by Conditioning: Training Class-conditional GANs
  with Limited Data", section 4): the class input of G and D's class-conditional logit, and the objective's class
  terms, are faded in by a strength rising linearly from 0 at step START to 1 at step END (`--condition-ramp
  START:END`): G and D first learn the images of every class, then what sets the classes apart.
- R3GAN's schedules (Huang et al. 2024, section 4, appendix: learning rate, gamma and Adam's beta2 follow cosine
  schedules): each from its configured value to its `_end` value over `schedule_steps`, then constant. A run
  bounded only by time has no step count: its length is fixed once the first `FIT_SHARE` of its minutes have
  passed, from the step rate seen so far (`fitted_length`), and saved with every checkpoint from then on; until
  then every scheduled value stays at its start, where the cosine is flat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from acgan.config import TrainConfig, parse_ramp
from acgan.errors import AcganError

FIT_SHARE = 0.05  # the share of a schedule's minutes whose step rate fixes its length in steps


def ramp(step: int, start: int, end: int) -> float:
    """0 before `start`, 1 from `end` on, linear between."""
    return min(1.0, max(0.0, (step - start) / (end - start)))


def cosine(step: int, start: float, end: float, steps: int) -> float:
    """From `start` at step 0 to `end` at step `steps` along half a cosine, then `end`."""
    done = min(1.0, step / steps)
    return end + (start - end) * (1 + math.cos(math.pi * done)) / 2


@dataclass(frozen=True)
class Schedules:
    """The run's changing values (none by default: every value constant)."""

    ramp: tuple[int, int] | None = None  # condition strength from 0 at the first step to 1 at the second
    steps: int = 0  # the cosine schedules' length
    lr: tuple[tuple[float, float], tuple[float, float]] | None = None  # (G's, D's) (start, end)
    beta2: tuple[float, float] | None = None
    gamma: float | None = None  # the penalties' gamma at the end, as a fraction of their configured one

    @property
    def active(self) -> bool:
        return self.ramp is not None or self.steps > 0

    def condition_strength(self, step: int) -> float:
        return 1.0 if self.ramp is None else ramp(step, *self.ramp)

    def learning_rates(self, step: int) -> tuple[float, float] | None:
        """(G's, D's) learning rate at `step`, or None when constant."""
        if self.lr is None:
            return None
        (g_start, g_end), (d_start, d_end) = self.lr
        return cosine(step, g_start, g_end, self.steps), cosine(step, d_start, d_end, self.steps)

    def beta2_at(self, step: int) -> float | None:
        return None if self.beta2 is None else cosine(step, *self.beta2, self.steps)

    def gamma_factor(self, step: int) -> float:
        return 1.0 if self.gamma is None else cosine(step, 1.0, self.gamma, self.steps)


def fitted_length(step: int, steps_per_second: float, seconds_trained: float, minutes: float) -> int:
    """The step a run at `step`, trained for `seconds_trained` so far, reaches after `minutes` of training in all
    at `steps_per_second` (at least 1)."""
    return max(1, step + round(steps_per_second * max(0.0, 60 * minutes - seconds_trained)))


def decays_learning_rate(config: TrainConfig) -> bool:
    """Whether the learning rates follow a cosine: an end rate given, or a decay below 1 (the preset's or given)."""
    return config.lr_end is not None or (config.lr_decay is not None and config.lr_decay < 1.0)


def needs_schedule_length(config: TrainConfig) -> bool:
    """Whether the configuration asks for a cosine schedule (which needs a length in steps)."""
    return decays_learning_rate(config) or config.beta2_end is not None or config.gamma_decay is not None


def schedules_of(config: TrainConfig) -> Schedules:
    """A configuration's schedules; the cosine ones span `schedule_steps` (a new run sets it from its step bound
    when it is 0, or fits it to `schedule_minutes`, and saves it, so a resumed run keeps the same schedule)."""
    ramp_steps = parse_ramp(config.condition_ramp) if config.condition_ramp else None
    if not needs_schedule_length(config):
        return Schedules(ramp=ramp_steps)
    if not config.schedule_steps:
        if config.schedule_minutes is not None:
            return Schedules(ramp=ramp_steps)  # every value at its start until the length is fitted
        raise AcganError("lr_decay, lr_end, beta2_end and gamma_decay need a length: --schedule-steps N, "
                         "--schedule-minutes M, or a --steps, --epochs or --max-minutes bound")  # fmt: skip
    lr_g, lr_d = config.learning_rates
    end_d = config.lr_end if config.lr_end is not None else lr_d * (config.lr_decay or 1.0)
    lr = ((lr_g, end_d * lr_g / lr_d), (lr_d, end_d)) if decays_learning_rate(config) else None
    beta2 = None if config.beta2_end is None else (config.beta2, config.beta2_end)
    return Schedules(ramp=ramp_steps, steps=config.schedule_steps, lr=lr, beta2=beta2, gamma=config.gamma_decay)
