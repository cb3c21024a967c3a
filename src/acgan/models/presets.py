"""Named presets: each builds a generator/discriminator pair for a ModelConfig."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from acgan.errors import AcganError
from acgan.models import dcgan, seeds
from acgan.models.networks import Discriminator, Generator, ModelConfig


@dataclass(frozen=True)
class Preset:
    """A named architecture: where it comes from and how to build it."""

    name: str
    source: str
    build_generator: Callable[[ModelConfig], Generator]
    build_discriminator: Callable[[ModelConfig], Discriminator]
    ema_decay: float = 0.0  # default moving average of G for sampling; the seeds sample the raw G
    precision: str = "fp32"  # default training precision; the seeds reproduce Keras' fp32 arithmetic
    lr: float = 2e-4  # default Adam learning rate of G and D; the seeds' 2e-4


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("dcgan", "acgan's own compact DCGAN-style AC-GAN (default)",
               dcgan.dcgan_generator, dcgan.dcgan_discriminator, ema_decay=dcgan.EMA_DECAY, precision="auto", lr=dcgan.LEARNING_RATE),
        Preset("keras-mnist", "seed 000: Keras example MNIST AC-GAN (2017)",
               seeds.keras_mnist_generator, seeds.keras_mnist_discriminator),
        Preset("lindernoren", "seed 001: Keras-GAN acgan (Linder-Noren)",
               seeds.lindernoren_generator, seeds.lindernoren_discriminator),
        Preset("brownlee", "seed 002: Brownlee's Fashion-MNIST AC-GAN",
               seeds.brownlee_generator, seeds.brownlee_discriminator),
        Preset("keras-mnist-v2", "seed 003: Keras example MNIST AC-GAN (2018)",
               seeds.keras_mnist_v2_generator, seeds.keras_mnist_v2_discriminator),
        Preset("jsstar", "seed 004: jsstar522's MNIST AC-GAN",
               seeds.jsstar_generator, seeds.jsstar_discriminator),
    )
}  # fmt: skip

DEFAULT_PRESET = "dcgan"


def get_preset(name: str) -> Preset:
    """Look up a preset; AcganError listing the known names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise AcganError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})") from None


def build_generator(config: ModelConfig, seed: int = 0) -> Generator:
    """Build the preset's generator with weights initialised from `seed` (global RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return get_preset(config.preset).build_generator(config)
        except ValueError as exc:
            raise AcganError(str(exc)) from None


def build_discriminator(config: ModelConfig, seed: int = 0) -> Discriminator:
    """Build the preset's discriminator with weights initialised from `seed` (global RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        try:
            return get_preset(config.preset).build_discriminator(config)
        except ValueError as exc:
            raise AcganError(str(exc)) from None
