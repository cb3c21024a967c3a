"""Training statistics collected per step and flushed per metrics window (EDM's `training_stats`, in small).

Each step adds its named statistics, still on the device; every `every` steps the window's means are taken
over its steps and over every process in one all-reduce, the only time the host waits for them.
"""

from __future__ import annotations

import torch

from acgan.objectives import Stats
from acgan.training.distributed import World, mean_over_ranks


class StatsWindow:
    """Sums of named scalar statistics since the last flush."""

    def __init__(self, every: int, world: World) -> None:
        self.every, self.world = every, world
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0

    def add(self, stats: Stats) -> None:
        for name, value in stats.items():
            self._sums[name] = self._sums[name] + value if name in self._sums else value.clone()
        self._count += 1

    def flush_if_due(self, step: int) -> dict[str, float] | None:
        """The means over the window's steps and every process when `step` ends a window, else None."""
        if step % self.every or not self._count:
            return None
        names = list(self._sums)
        summed = mean_over_ranks(torch.stack([self._sums[name].float() for name in names]), self.world)
        means = dict(zip(names, (summed / self._count).tolist(), strict=True))
        self._sums, self._count = {}, 0
        return means
