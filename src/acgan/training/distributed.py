"""Data-parallel training across processes: torchrun's environment, the process group and collective decisions.

torchrun starts one process per device and tells each its RANK, LOCAL_RANK and WORLD_SIZE. `join_world`
turns that into a process group (NCCL on CUDA, gloo on the CPU) and a `World`; without torchrun (or with
one process) it is a no-op and training runs exactly as before. Every decision that ends or pauses the
loop (bounds in minutes, signals, a non-finite loss, a checkpoint due by the clock) is agreed with one
small all-reduce, so no rank waits for a collective the others never reach.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from acgan.errors import AcganError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 when not distributed)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes to the run directory or the terminal."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE_PROCESS = World()  # rank 0 of 1: a run without torchrun


def launched_world() -> World:
    """The World torchrun describes in this process's environment (rank 0 of 1 without torchrun)."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))  # fmt: skip
    except ValueError as exc:
        raise AcganError(f"RANK, WORLD_SIZE or LOCAL_RANK is not a number ({exc})") from None


def current_world() -> World:
    """The World of the initialised process group, else rank 0 of 1."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return World()


def join_world(device_name: str) -> World:
    """Join the process group torchrun set up (once per process): NCCL when training on CUDA, else gloo.

    Each CUDA process takes the GPU of its LOCAL_RANK. With one process nothing is initialised.
    """
    world = launched_world()
    if not world.distributed or dist.is_initialized():
        return current_world() if world.distributed else world
    use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda:
        if world.local_rank >= torch.cuda.device_count():
            raise AcganError(f"local rank {world.local_rank} has no GPU (this machine has "
                             f"{torch.cuda.device_count()}); use at most that many processes per node")  # fmt: skip
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return current_world()


def dist_initialized() -> bool:
    """Whether this process already belongs to a process group."""
    return dist.is_available() and dist.is_initialized()


def barrier(world: World) -> None:
    """Wait until every rank gets here (nothing when not distributed)."""
    if world.distributed:
        dist.barrier()


def leave_world() -> None:
    """Destroy the process group, if any (at the end of a distributed command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """The seed of `rank`'s random streams: `seed` itself on rank 0 (a 1-process run is unchanged), a
    well-mixed 63-bit seed derived from (seed, rank) on every other rank."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


def broadcast_from_main(value: T, world: World) -> T:
    """Rank 0's `value` on every rank (a picklable object)."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_to_main(value: T, world: World) -> list[T]:
    """Every rank's `value`, in rank order (on every rank; a picklable object)."""
    if not world.distributed:
        return [value]
    values: list[Any] = [None] * world.size
    dist.all_gather_object(values, value)
    return values


def agree_max(values: torch.Tensor, world: World) -> torch.Tensor:
    """The element-wise maximum of a small float64 vector over all ranks (itself when not distributed).

    Flags (0/1) become "any rank", step numbers the largest one.
    """
    if not world.distributed:
        return values
    reduced = values.clone()  # on the training device: CPU for gloo, the GPU for NCCL
    dist.all_reduce(reduced, op=dist.ReduceOp.MAX)
    return reduced


def mean_over_ranks(values: torch.Tensor, world: World) -> torch.Tensor:
    """The element-wise mean of a vector over all ranks (itself when not distributed)."""
    if not world.distributed:
        return values
    summed = values.clone()
    dist.all_reduce(summed, op=dist.ReduceOp.SUM)
    return summed / world.size


def average_gradients(module: torch.nn.Module, world: World) -> None:
    """Average `module`'s gradients over all ranks, in one all-reduce (for an update that called the module
    directly, outside its DistributedDataParallel wrapper: a gradient penalty's double backward)."""
    if not world.distributed:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world.size
    for grad, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        grad.copy_(part.view_as(grad))


__all__ = [
    "SINGLE_PROCESS",
    "World",
    "agree_max",
    "average_gradients",
    "barrier",
    "broadcast_from_main",
    "current_world",
    "dist_initialized",
    "gather_to_main",
    "join_world",
    "launched_world",
    "leave_world",
    "mean_over_ranks",
    "rank_seed",
]
