"""The training state: networks, optimizers, moving average and random streams, apart from the loop."""

from __future__ import annotations

import copy
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from acgan.checkpoint import (
    DISCRIMINATOR_FILE,
    EMA_FILE,
    GENERATOR_FILE,
    load_state,
    load_train_state,
    read_meta,
    read_weights,
    resolve_checkpoint_dir,
)
from acgan.config import TrainConfig
from acgan.device import place
from acgan.errors import AcganError
from acgan.models.networks import Discriminator, Generator, ModelConfig
from acgan.models.presets import build_discriminator, build_generator
from acgan.training.distributed import SINGLE_PROCESS, World, gather_to_main, rank_seed
from acgan.training.ema import settle_batch_norm
from acgan.training.regularisers import lazy_adam, lazy_ratio, regularisers_of


@dataclass
class TrainState:
    """What a training step changes. `rng` draws batches, latents, labels and augmentations; dropout draws from
    torch's global generator, whose state is saved beside it (each rank has its own of both).

    `generator` and `discriminator` are the networks themselves (saved, sampled from); in a distributed run
    `train_generator` and `train_discriminator` wrap them in DistributedDataParallel, which averages gradients
    over the ranks in backward. `scalers` (fp16 only) scale D's and G's losses against underflow.
    """

    generator: Generator
    discriminator: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    rng: torch.Generator
    g_ema: Generator | None = None
    step: int = 0
    world: World = SINGLE_PROCESS
    train_generator: torch.nn.Module | None = None
    train_discriminator: torch.nn.Module | None = None
    scalers: dict[str, torch.amp.GradScaler] | None = None
    ema_settled_at: int | None = None  # the step whose BatchNorm statistics g_ema holds (None: G's, copied)
    # More parts with state a checkpoint keeps (state_dict / load_state_dict), by name: an augmentation's (ADA's p)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def g_for_training(self) -> torch.nn.Module:
        """G as its update calls it: the DDP wrapper in a distributed run, else the network itself."""
        return self.train_generator if self.train_generator is not None else self.generator

    @property
    def d_for_training(self) -> torch.nn.Module:
        """D as its updates call it: the DDP wrapper in a distributed run, else the network itself."""
        return self.train_discriminator if self.train_discriminator is not None else self.discriminator

    def settled_ema(self) -> Generator | None:
        """The moving average (None without one) with BatchNorm statistics of its own for the current step
        (acgan.training.ema.settle_batch_norm: computed at most once a step, before anything samples or saves it)."""
        if self.g_ema is not None and self.ema_settled_at != self.step:
            settle_batch_norm(self.g_ema)
            self.ema_settled_at = self.step
        return self.g_ema

    def sampling_network(self) -> Generator:
        """The generator to sample from: the settled moving average when there is one, else G."""
        ema = self.settled_ema()
        return ema if ema is not None else self.generator

    def resume_state(self, wall_seconds: float) -> dict[str, Any]:
        """Optimizer, scaler and every rank's RNG state for train_state.pt (tensors and plain types: loads with
        weights_only=True). A collective call in a distributed run: every rank calls it, rank 0 saves it."""
        rngs = gather_to_main(self._rng_state(), self.world)
        state: dict[str, Any] = {name: part.state_dict() for name, part in self.stateful().items()}
        state |= {"step": self.step, "wall_seconds": wall_seconds, "rng": rngs[0], "world_size": self.world.size}
        if self.world.distributed:
            state["rank_rng"] = rngs
        return state

    def stateful(self) -> dict[str, Any]:
        """The registry of what train_state.pt keeps besides the step and the random streams: every part with
        state_dict() and load_state_dict(), by the name it is saved under."""
        parts: dict[str, Any] = {"opt_g": self.opt_g, "opt_d": self.opt_d}
        if self.scalers is not None:
            parts["scalers"] = _Scalers(self.scalers)
        return parts | self.extras

    def _rng_state(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "loop": self.rng.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return rng

    def load_resume_state(self, state: dict[str, Any], source: str) -> float:
        """Restore what `resume_state` saved; return the wall seconds trained before. AcganError if it does not fit
        (including a different number of processes: each rank's random streams continue where they stopped)."""
        saved_world = int(state.get("world_size", 1)) if isinstance(state, dict) else 1
        if saved_world != self.world.size:
            raise AcganError(
                f"{source} was written by a {_processes(saved_world)} run; resume it with the same number "
                f"({'--nproc ' + str(saved_world) if saved_world > 1 else 'no --nproc'}): each process's random "
                f"streams continue where they stopped, so another number cannot continue it exactly"
            )
        try:
            for name, part in self.stateful().items():
                if name in state or name in REQUIRED_PARTS:  # a part added since the checkpoint keeps its start
                    part.load_state_dict(state[name])
            rng = state["rank_rng"][self.world.rank] if self.world.distributed else state["rng"]
            torch.set_rng_state(rng["torch"])
            self.rng.set_state(rng["loop"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
            self.step = int(state["step"])
            return float(state["wall_seconds"])
        except (KeyError, IndexError, ValueError, RuntimeError, TypeError) as exc:
            raise AcganError(f"{source}: train state does not fit this run ({exc})") from None


REQUIRED_PARTS = ("opt_g", "opt_d")  # every checkpoint has held these


class _Scalers(dict[str, torch.amp.GradScaler]):
    """fp16's gradient scalers of D and G, saved together."""

    def state_dict(self) -> dict[str, Any]:
        return {name: scaler.state_dict() for name, scaler in self.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, scaler in self.items():
            scaler.load_state_dict(state[name])


def _processes(count: int) -> str:
    return "1-process" if count == 1 else f"{count}-process"


def build_train_state(config: TrainConfig, model_config: ModelConfig, device: torch.device,
                      world: World = SINGLE_PROCESS, precision: str = "fp32") -> TrainState:  # fmt: skip
    """Fresh networks (initialised from config.seed on every rank), Adam optimizers, the moving average, seeded
    RNGs (rank 0 from config.seed, other ranks from their own seeds) and gradient scalers for fp16."""
    generator = place(build_generator(model_config, config.seed), device)
    discriminator = place(build_discriminator(model_config, config.seed), device)
    g_ema = copy.deepcopy(generator).requires_grad_(False) if config.ema_decay else None
    lr_g, lr_d = config.learning_rates
    betas = (config.beta1, config.beta2)
    lr_d, betas_d = lazy_adam(lr_d, betas, lazy_ratio(regularisers_of(config)))  # D also takes penalty steps
    # foreach: one kernel per operation over all tensors, bit-identical to the per-tensor loop; fused: one pass
    implementation = {"fused": True} if config.fast_arithmetic else {"foreach": True}
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr_g, betas=betas, **implementation)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=betas_d, **implementation)
    seed = rank_seed(config.seed, world.rank)
    torch.manual_seed(seed)  # dropout draws from the global generator; its state is checkpointed
    rng = torch.Generator(device=device).manual_seed(seed)
    state = TrainState(generator, discriminator, opt_g, opt_d, rng, g_ema, world=world)
    if precision == "fp16":
        state.scalers = {name: torch.amp.GradScaler(device.type) for name in ("d", "g")}
    return state


def wrap_for_ranks(state: TrainState, device: torch.device, d_has_unused: bool) -> None:
    """Wrap G and D in DistributedDataParallel for training (a distributed run only).

    `d_has_unused`: some D update leaves a parameter without a gradient (see steps.unused_parameters), so DDP
    must look for unused parameters; it keeps a parameter no rank used at grad None, as one process would.
    BatchNorm statistics and spectral norm vectors follow rank 0's (DDP's broadcast_buffers).
    """
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [torch.cuda.current_device()] if device.type == "cuda" else None
    state.train_generator = DistributedDataParallel(state.generator, device_ids=device_ids)
    state.train_discriminator = DistributedDataParallel(state.discriminator, device_ids=device_ids,
                                                        find_unused_parameters=d_has_unused)  # fmt: skip


def compile_for_training(state: TrainState, device: torch.device) -> None:
    """torch.compile G and D as their updates call them (none has a double backward); the networks themselves,
    which checkpoints save and sampling uses, stay as they are. max-autotune (CUDA graphs) on CUDA.

    On this project's 2-core CPU it did not pay: 34 s to compile, then 10.3 steps/s against eager's 11.0 (dcgan).
    """
    if device.type == "cpu" and cpu_compiler() is None:
        raise AcganError(f"--compile on the CPU needs a C++ compiler ({cpu_compiler_name()} not found; set CXX to "
                         "another one), or train without --compile")  # fmt: skip
    mode = "max-autotune" if device.type == "cuda" else None
    state.train_generator = cast(torch.nn.Module, torch.compile(state.g_for_training, mode=mode))
    state.train_discriminator = cast(torch.nn.Module, torch.compile(state.d_for_training, mode=mode))


def cpu_compiler_name() -> str:
    """The C++ compiler torch.compile's CPU backend calls: $CXX, else g++ (clang++ on macOS)."""
    return os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")


def cpu_compiler() -> str | None:
    """The path of that compiler, or None when it is not installed."""
    return shutil.which(cpu_compiler_name())


def restore_checkpoint(state: TrainState, run_dir: Path) -> tuple[float, Path]:
    """Load the latest checkpoint of `run_dir` into `state`; return (wall seconds trained before, its directory)."""
    checkpoint_dir = resolve_checkpoint_dir(run_dir)
    read_meta(checkpoint_dir)
    for module, filename in ((state.generator, GENERATOR_FILE), (state.discriminator, DISCRIMINATOR_FILE),
                             (state.g_ema, EMA_FILE)):  # fmt: skip
        if module is not None:
            load_state(module, read_weights(checkpoint_dir / filename).tensors, checkpoint_dir / filename)
    wall_seconds = state.load_resume_state(load_train_state(checkpoint_dir), str(checkpoint_dir))
    return wall_seconds, checkpoint_dir
