"""Generators and discriminators: the seed architectures and acgan's own, behind named presets."""

from acgan.models.networks import Discriminator, DiscriminatorOutput, Generator, ModelConfig
from acgan.models.presets import DEFAULT_PRESET, PRESETS, build_discriminator, build_generator, get_preset

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "Discriminator",
    "DiscriminatorOutput",
    "Generator",
    "ModelConfig",
    "build_discriminator",
    "build_generator",
    "get_preset",
]
