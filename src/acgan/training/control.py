"""The control point: where the loop looks up from its steps, and every process agrees on what it sees.

It owns the stop flag (a signal), the clock (the time bound, minutes since the last checkpoint) and the first
step whose losses were not finite. Losses are checked on the device without waiting for it (`note`); the
host looks at control points only: every metrics window (and, in a one-process run, at once when a signal
came or a time is up), and always before anything is written. One small all-reduce agrees every decision across processes, so no rank
waits for a collective the others never reach.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from acgan.errors import TrainingDiverged
from acgan.objectives import Stats
from acgan.training.distributed import World, agree_max, barrier
from acgan.training.signals import GracefulStop


@dataclass(frozen=True)
class Decision:
    """What every process agreed at a control point."""

    stop_requested: bool
    time_up: bool
    bad_step: float  # the first step with a non-finite loss on any process, or -1
    seconds: float  # seconds of training so far (the most of any process)


class ControlPoint:
    """Stop flag, clock and non-finite losses of one training run, agreed across processes."""

    def __init__(self, world: World, device: torch.device, max_minutes: float | None, every: int,
                 checkpoint_minutes: float = 0.0) -> None:  # fmt: skip
        self.world, self.device, self.max_minutes, self.every = world, device, max_minutes, every
        self.checkpoint_minutes = checkpoint_minutes
        # SIGINT/SIGTERM become a flag while the loop runs (`with control:`); a torchrun worker notes repeats only
        self.stop = GracefulStop(repeat_interrupts=not world.distributed)
        self.start = self.last_save = time.monotonic()
        self.minutes_since_save = 0.0  # as agreed by all ranks at the last control point
        self._first_bad = torch.full((), -1.0, dtype=torch.float64, device=device)  # first non-finite step
        self._bad_losses: torch.Tensor | None = None  # that step's losses (this rank's)
        self._loss_names: list[str] = []

    def __enter__(self) -> ControlPoint:
        self.stop.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.__exit__(*exc)

    @property
    def elapsed(self) -> float:
        """Seconds since this process started training."""
        return time.monotonic() - self.start

    def due(self, step: int) -> bool:
        """Every `every` steps (a metrics window), and in a one-process run also at once when a stop was asked for
        or a time is up (free checks on the host: no waiting for the device)."""
        if step % self.every == 0:
            return True
        if self.world.distributed:
            return False  # every rank must reach the same control points
        minutes = self.max_minutes
        return (
            self.stop.requested
            or (minutes is not None and self.elapsed >= 60 * minutes)
            or (self.checkpoint_minutes > 0 and time.monotonic() - self.last_save >= 60 * self.checkpoint_minutes)
        )

    def note(self, step: int, stats: Stats) -> None:
        """Record, on the device and without waiting for it, whether this step's losses are finite."""
        new = [name for name in stats if not name.endswith("acc") and name not in self._loss_names]
        if new:  # a phase seen for the first time (one that runs every few steps, a penalty)
            self._loss_names += new
            if self._bad_losses is not None:
                self._bad_losses = torch.cat([self._bad_losses, self._bad_losses.new_zeros(len(new))])
        zero = self._first_bad.new_zeros(())
        losses = torch.stack([stats[name].double() if name in stats else zero for name in self._loss_names])  # (L,)
        newly_bad = (self._first_bad < 0) & ~torch.isfinite(losses).all()
        self._first_bad = torch.where(newly_bad, float(step), self._first_bad)
        self._bad_losses = losses if self._bad_losses is None else torch.where(newly_bad, losses, self._bad_losses)

    def agree(self) -> Decision:
        """One all-reduce: a stop requested on any rank, the time bound, minutes since the last save, bad steps, the
        seconds trained."""
        elapsed = self.elapsed
        flags = torch.tensor([float(self.stop.requested),
                              float(self.max_minutes is not None and elapsed >= 60 * self.max_minutes),
                              (time.monotonic() - self.last_save) / 60, elapsed], dtype=torch.float64,
                             device=self.device)  # fmt: skip
        requested, time_up, self.minutes_since_save, seconds, bad_step = agree_max(
            torch.cat([flags, self._first_bad.reshape(1)]), self.world
        ).tolist()
        return Decision(bool(requested), bool(time_up), bad_step, seconds)

    def saved(self) -> None:
        """A checkpoint was just written: the clock of `checkpoint_minutes` starts again."""
        self.last_save, self.minutes_since_save = time.monotonic(), 0.0

    def check_finite(self, last_checkpoint: str, agreed_bad: float | None = None) -> None:
        """TrainingDiverged if any rank saw a non-finite loss (agreed by all ranks unless given)."""
        bad_step = agree_max(self._first_bad.reshape(1), self.world).item() if agreed_bad is None else agreed_bad
        if bad_step < 0:
            return
        barrier(self.world)  # every rank stops here together
        own = self._bad_losses is not None and self._first_bad.item() == bad_step
        values = "on another process"
        if own and self._bad_losses is not None:
            values = ", ".join(f"{name}={value:.4g}" for name, value in zip(self._loss_names, self._bad_losses.tolist(),
                                                                            strict=True))  # fmt: skip
        raise TrainingDiverged(f"loss became non-finite at step {int(bad_step)} ({values}); stopped without saving; "
                               f"last good checkpoint: {last_checkpoint}")  # fmt: skip
