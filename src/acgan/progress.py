"""What the terminal shows of long work: a live bar on a terminal, plain lines in a log file.

A progress bar redraws itself with carriage returns; redirected to a file (nohup, Slurm, CI) every frame is
kept, about a megabyte an hour of training. So bars only draw on a terminal, and training writes a plain
line every PLAIN_EVERY_S seconds instead when its output is not one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm import tqdm

PLAIN_EVERY_S = 30.0  # seconds between plain progress lines when stderr is not a terminal
REDRAW_S = 0.5  # at most two redraws a second


def interactive(stream: TextIO | None = None) -> bool:
    """Whether `stream` (stderr by default) is a terminal a bar can redraw on."""
    stream = stream or sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def bar(iterable: Iterable[Any] | None = None, *, show: bool = True, **options: Any) -> tqdm[Any]:
    """A tqdm bar on stderr, drawn only when `show` and stderr is a terminal (no carriage-return frames in logs)."""
    return tqdm(iterable, disable=not (show and interactive()), mininterval=REDRAW_S, **options)


class TrainingProgress:
    """A run's progress: a tqdm bar on a terminal; elsewhere a plain line every `every_s` seconds and at the end.

    `update(step)` after every step; `statistics` (the latest metrics window's means) ride along.
    """

    statistics: dict[str, float]

    def __init__(self, total: int | None, initial: int, show: bool, every_s: float = PLAIN_EVERY_S,
                 stream: TextIO | None = None) -> None:  # fmt: skip
        self.total, self.show, self.every_s = total, show, every_s
        self.stream = stream or sys.stderr
        self.plain = show and not interactive(self.stream)
        self.statistics: dict[str, float] = {}
        self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, mininterval=REDRAW_S,
                         disable=not show or self.plain, file=self.stream)  # fmt: skip
        self._start_step, self._start = initial, time.monotonic()
        self._last_line = self._start
        self._step = initial

    def update(self, step: int) -> None:
        if self.statistics and not self._bar.disable:
            self._bar.set_postfix({k: f"{v:.2f}" for k, v in self.statistics.items()}, refresh=False)
        self._bar.update(step - self._step)
        self._step = step
        now = time.monotonic()
        if self.plain and now - self._last_line >= self.every_s:
            self._last_line = now
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float | None = None) -> str:
        """step 1,200/3,000 (40%), 11.5 steps/s, 2.6 min left; d_real_source 0.69, ..."""
        elapsed = (now or time.monotonic()) - self._start
        rate = (self._step - self._start_step) / elapsed if elapsed > 0 else 0.0
        where = f"step {self._step:,}"
        if self.total:
            left = f", {(self.total - self._step) / rate / 60:.1f} min left" if rate > 0 else ""
            where += f"/{self.total:,} ({self._step / self.total:.0%}){f', {rate:.1f} steps/s' if rate else ''}{left}"
        elif rate:
            where += f", {rate:.1f} steps/s"
        stats = ", ".join(f"{k} {v:.3f}" for k, v in self.statistics.items())
        return f"{where}{'; ' + stats if stats else ''}"

    def close(self) -> None:
        self._bar.close()
        if self.plain and self._step > self._start_step:
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def __enter__(self) -> TrainingProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
