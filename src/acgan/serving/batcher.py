"""Micro-batching: requests that arrive together share one generator call.

Requests queue up while the generator runs; when it is free, the batcher takes everything waiting (up to
`max_batch` images), runs it as one call on a single worker thread, and hands each request its own slice.
An image depends only on its latent and label (BatchNorm in eval mode, per-image latents), so batching
never changes what a request gets back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from acgan.models.networks import Generator
from acgan.sampling import sample


class ServerBusy(Exception):
    """The queue already holds as many images as the server accepts waiting."""


@dataclass
class BatchStats:
    """What the batcher did so far (shown by /api/v1/info and the load benchmark)."""

    calls: int = 0
    requests: int = 0
    images: int = 0

    def to_dict(self) -> dict[str, float]:
        return {"generator_calls": self.calls, "requests": self.requests, "images": self.images,
                "requests_per_call": self.requests / self.calls if self.calls else 0.0}  # fmt: skip


@dataclass
class _Pending:
    z: torch.Tensor  # (n, z_dim)
    labels: torch.Tensor  # (n,) int64
    future: asyncio.Future[torch.Tensor]


@dataclass
class MicroBatcher:
    """Runs `generator` on batches of queued requests; `enabled=False` runs every request on its own."""

    generator: Generator
    max_batch: int = 1024
    max_queued: int = 8192
    enabled: bool = True
    precision: str = "fp32"
    stats: BatchStats = field(default_factory=BatchStats)

    def __post_init__(self) -> None:
        self._pending: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._queued_images = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="acgan-generator")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def generate(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images (n, C, H, W) in [-1, 1] for latents (n, z_dim) and labels (n,); ServerBusy when the queue is full."""
        if self._queued_images + len(labels) > self.max_queued:
            raise ServerBusy(f"{self._queued_images} images already queued")
        future: asyncio.Future[torch.Tensor] = asyncio.get_running_loop().create_future()
        self._queued_images += len(labels)
        self._pending.append(_Pending(z, labels, future))
        self._wakeup.set()
        return await future

    def _take_batch(self) -> list[_Pending]:
        """The oldest request, and with batching on, those behind it while they fit into max_batch images."""
        batch = [self._pending.popleft()]
        size = len(batch[0].labels)
        while self.enabled and self._pending and size + len(self._pending[0].labels) <= self.max_batch:
            batch.append(self._pending.popleft())
            size += len(batch[-1].labels)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = self._take_batch()
            live = [item for item in batch if not item.future.cancelled()]  # clients that gave up are skipped
            self._queued_images -= sum(len(item.labels) for item in batch)
            if not live:
                continue
            z = torch.cat([item.z for item in live])  # (sum n, z_dim)
            labels = torch.cat([item.labels for item in live])  # (sum n,)
            try:
                images = await loop.run_in_executor(self._executor, self._generate, z, labels)
            except Exception as exc:  # handed to the requests, which answer with an error
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            self.stats.calls += 1
            self.stats.requests += len(live)
            self.stats.images += len(labels)
            start = 0
            for item in live:
                end = start + len(item.labels)
                if not item.future.done():
                    item.future.set_result(images[start:end])
                start = end

    def _generate(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return sample(self.generator, labels, z=z, precision=self.precision).cpu()
