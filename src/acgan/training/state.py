"""The training state: networks, optimizers, moving average and random streams, apart from the loop."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass
class TrainState:
    """What a training step changes. `rng` draws batches, latents, labels and augmentations; dropout draws from
    torch's global generator, whose state is saved beside it."""

    generator: Generator
    discriminator: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    rng: torch.Generator
    g_ema: Generator | None = None
    step: int = 0

    @property
    def sampler(self) -> Generator:
        """The generator to sample from: the moving average when there is one."""
        return self.g_ema if self.g_ema is not None else self.generator

    def resume_state(self, wall_seconds: float) -> dict[str, Any]:
        """Optimizer and RNG state for train_state.pt (tensors and plain types: loads with weights_only=True)."""
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "loop": self.rng.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "step": self.step,
                "wall_seconds": wall_seconds, "rng": rng}  # fmt: skip

    def load_resume_state(self, state: dict[str, Any], source: str) -> float:
        """Restore what `resume_state` saved; return the wall seconds trained before. AcganError if it does not fit."""
        try:
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            torch.set_rng_state(state["rng"]["torch"])
            self.rng.set_state(state["rng"]["loop"])
            if "cuda" in state["rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["rng"]["cuda"])
            self.step = int(state["step"])
            return float(state["wall_seconds"])
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise AcganError(f"{source}: train state does not fit this run ({exc})") from None


def build_train_state(config: TrainConfig, model_config: ModelConfig, device: torch.device) -> TrainState:
    """Fresh networks (initialised from config.seed), Adam optimizers, the moving average and seeded RNGs."""
    generator = place(build_generator(model_config, config.seed), device)
    discriminator = place(build_discriminator(model_config, config.seed), device)
    g_ema = copy.deepcopy(generator).requires_grad_(False) if config.ema_decay else None
    lr_g, lr_d = config.learning_rates
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr_g, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d, betas=betas)
    torch.manual_seed(config.seed)  # dropout draws from the global generator; its state is checkpointed
    rng = torch.Generator(device=device).manual_seed(config.seed)
    return TrainState(generator, discriminator, opt_g, opt_d, rng, g_ema)


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
