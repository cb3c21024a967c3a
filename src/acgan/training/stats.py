"""Training statistics collected per step and flushed per metrics window (EDM's `training_stats`, in small).

Each step adds its named statistics, still on the device; every `every` steps the window's means are taken
over the steps that recorded each statistic (a regulariser that runs every 16th step is averaged over its own
runs, not over the window) and over every process in one all-reduce, the only time the host waits for them.
"""

from __future__ import annotations

import torch

from acgan.objectives import Stats
from acgan.training.distributed import World, mean_over_ranks


class StatsWindow:
    """Sums of named scalar statistics since the last flush, and how many steps recorded each."""

    def __init__(self, every: int, world: World) -> None:
        self.every, self.world = every, world
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def add(self, stats: Stats) -> None:
        for name, value in stats.items():
            self._sums[name] = self._sums[name] + value if name in self._sums else value.clone()
            self._counts[name] = self._counts.get(name, 0) + 1

    def flush_if_due(self, step: int) -> dict[str, float] | None:
        """The means over the steps that recorded each statistic and over every process when `step` ends a window,
        else None."""
        if step % self.every or not self._counts:
            return None
        names = list(self._sums)
        means = torch.stack([self._sums[name].float() / self._counts[name] for name in names])
        values = mean_over_ranks(means, self.world).tolist()
        self._sums, self._counts = {}, {}
        return dict(zip(names, values, strict=True))
