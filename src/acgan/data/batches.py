"""Real training batches: drawn from pixels held on the device, or streamed from the decode cache.

A data set that fits (see `fits_in_memory`) is held on the device as uint8 and each batch is gathered
there (`MemoryBatches`). One that does not is read from its memory-mapped cache by DataLoader workers a few
batches ahead (`StreamedBatches`). Streamed batch `step` is drawn from its own generator seeded by (seed,
step), so a resumed run reads exactly the batches an uninterrupted one would have. Both give the loop the
same thing: `next()` -> images (count, C, H, W) in [-1, 1] and labels (count,), on the training device.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from acgan.data.dataset import ImageDataset, uint8_to_model_range
from acgan.device import conv_layout
from acgan.memory import available_memory

MEMORY_SHARE = 0.5  # hold a data set in memory when its uint8 pixels take at most this share of what is free


def fits_in_memory(nbytes: int, device: torch.device) -> bool:
    """True when `nbytes` of pixels take at most MEMORY_SHARE of the memory free on `device` (or it is unknown)."""
    free = available_memory(device)
    return free is None or nbytes <= MEMORY_SHARE * free


def step_indices(num_images: int, count: int, seed: int, step: int, rank: int = 0) -> np.ndarray:
    """The `count` real-image indices of streamed batch `step` of process `rank`: uniform with replacement, a pure
    function (rank 0's are a 1-process run's)."""
    entropy = [seed, step] if rank == 0 else [seed, step, rank]
    return np.random.default_rng(entropy).integers(num_images, size=count)


class _StepBatches(Sampler[list[int]]):
    """Index lists of batches start_step, start_step + 1, ... (endless)."""

    def __init__(self, num_images: int, count: int, seed: int, start_step: int, rank: int) -> None:
        self.num_images, self.count, self.seed, self.start_step = num_images, count, seed, start_step
        self.rank = rank

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while True:
            yield step_indices(self.num_images, self.count, self.seed, step, self.rank).tolist()
            step += 1


class _Rows(torch.utils.data.Dataset[Any]):
    """Batched row access to an ImageDataset (DataLoader calls __getitems__ with a whole batch of indices)."""

    def __init__(self, dataset: ImageDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = np.asarray(indices)
        order = np.argsort(index, kind="stable")  # sorted reads are kinder to a memory map on disk
        pixels = np.empty((len(index), *self.dataset.pixels.shape[1:]), dtype=np.uint8)
        pixels[order] = np.asarray(self.dataset.pixels[index[order]])
        return torch.from_numpy(pixels), self.dataset.labels[torch.from_numpy(index)]


def _as_is(batch: Any) -> Any:
    return batch


def streamed_batches(dataset: ImageDataset, count: int, seed: int, start_step: int, pin_memory: bool,
                     workers: int | None = None, rank: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
    """Endless (pixels (count, H, W, C) uint8, labels (count,)) batches of process `rank`, read ahead by
    DataLoader workers."""
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    loader = DataLoader(_Rows(dataset), batch_sampler=_StepBatches(len(dataset), count, seed, start_step, rank),
                        collate_fn=_as_is, num_workers=workers, pin_memory=pin_memory,
                        prefetch_factor=4 if workers else None)  # fmt: skip
    return iter(loader)


class MemoryBatches:
    """Batches gathered on the device from the whole data set held there as uint8 (a quarter of float32's memory),
    the indices drawn from the training loop's generator `rng`."""

    def __init__(self, dataset: ImageDataset, count: int, device: torch.device, rng: torch.Generator) -> None:
        pixels = dataset.to_memory().pixels
        assert isinstance(pixels, torch.Tensor)
        self.images = (
            pixels.permute(0, 3, 1, 2).to(device).contiguous(memory_format=conv_layout(device))
        )  # (N, C, H, W)
        self.labels = dataset.labels.to(device)  # (N,)
        self.count, self.rng = count, rng

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(len(self.labels), (self.count,), generator=self.rng, device=self.labels.device)
        return uint8_to_model_range(self.images[index]), self.labels[index]  # (count, C, H, W) in [-1, 1], (count,)


class StreamedBatches:
    """Batches read ahead from the decode cache by DataLoader workers (see `streamed_batches`), moved to the device."""

    def __init__(self, dataset: ImageDataset, count: int, device: torch.device, seed: int, start_step: int,
                 rank: int = 0) -> None:  # fmt: skip
        self.device = device
        self._batches = streamed_batches(dataset, count, seed, start_step, device.type == "cuda", rank=rank)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        pixels, labels = next(self._batches)  # (count, H, W, C) uint8, (count,)
        images = uint8_to_model_range(pixels.to(self.device, non_blocking=True).permute(0, 3, 1, 2))
        return images, labels.to(self.device, non_blocking=True)  # (count, C, H, W) in [-1, 1], (count,)
