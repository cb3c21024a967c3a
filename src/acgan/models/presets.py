"""Named presets: each builds a generator/discriminator pair for a ModelConfig and brings training defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from acgan.errors import AcganError
from acgan.models import dcgan, paper, references, resnet
from acgan.models.networks import Discriminator, Generator, ModelConfig


@dataclass(frozen=True)
class Preset:
    """A named architecture: where it comes from, how to build it, and how it trains unless told otherwise.

    The seed presets keep the seeds' training: the AC-GAN objective, their three updates per step, Adam
    2e-4, fp32, no moving average, no spectral norm or augmentation.
    """

    name: str
    source: str
    build_generator: Callable[[ModelConfig], Generator]
    build_discriminator: Callable[[ModelConfig], Discriminator]
    ema_decay: float = 0.0  # default moving average of G for sampling; the seeds sample the raw G
    precision: str = "fp32"  # default training precision; the seeds reproduce Keras' fp32 arithmetic
    lr: float = 2e-4  # default Adam learning rate of G and D; the seeds' 2e-4
    objective: str = "acgan"  # default training objective (acgan.objectives)
    d_updates: str = "alternating"  # D on real, D on generated, then G; "joint": one D update on both
    spectral_norm: bool = False  # spectral normalisation of every D layer
    diffaugment: str = ""  # DiffAugment policy, e.g. "translation,cutout" ("" none)
    width: int = 0  # base channel count for presets that have one (0: fixed architecture)
    batch_size: int = 64  # default full batch (D: half real, half generated; G: all generated)
    fast_arithmetic: bool = False  # fused Adam (acgan.config.TrainConfig.fast_arithmetic)
    class_input: str = "concat"  # where G takes the label: beside z, or "cbn" (class-conditional BatchNorm)
    mbstd: bool = False  # the minibatch standard deviation feature in D
    lr_decay: float = 1.0  # learning rates at the end of a run as a fraction of the start, along a cosine (1: constant)
    settings: frozenset[str] = frozenset()  # the ModelConfig settings its builders read (fixed architectures: none)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("dcgan", "acgan's own compact DCGAN-style AC-GAN",
               dcgan.dcgan_generator, dcgan.dcgan_discriminator, ema_decay=dcgan.EMA_DECAY, precision="auto",
               lr=dcgan.LEARNING_RATE, objective=dcgan.OBJECTIVE, d_updates=dcgan.D_UPDATES,
               spectral_norm=dcgan.SPECTRAL_NORM, diffaugment=dcgan.DIFFAUGMENT, width=dcgan.WIDTH,
               fast_arithmetic=True, settings=frozenset({"width", "class_input", "mbstd"})),
        Preset("dcgan-cbn", "acgan's compact DCGAN with class-conditional BatchNorm in every G block and the minibatch "
               "standard deviation in D, for colour images",
               dcgan.dcgan_generator, dcgan.dcgan_discriminator, ema_decay=dcgan.EMA_DECAY, precision="auto",
               lr=dcgan.LEARNING_RATE, objective=dcgan.OBJECTIVE, d_updates=dcgan.D_UPDATES,
               spectral_norm=dcgan.SPECTRAL_NORM, diffaugment=dcgan.DIFFAUGMENT, width=dcgan.WIDTH,
               fast_arithmetic=True, class_input="cbn", mbstd=True, lr_decay=dcgan.COLOUR_LR_DECAY,
               settings=frozenset({"width", "class_input", "mbstd"})),
        Preset("resnet", "residual G with class-conditional BatchNorm, residual D (SNGAN, BigGAN), for colour images",
               resnet.resnet_generator, resnet.resnet_discriminator, ema_decay=dcgan.EMA_DECAY, precision="auto",
               lr=resnet.LEARNING_RATE, objective=resnet.OBJECTIVE, spectral_norm=True, width=resnet.WIDTH,
               fast_arithmetic=True, class_input="cbn", settings=frozenset({"width", "class_input", "mbstd"})),
        Preset("odena-cifar10", "the AC-GAN paper's CIFAR-10 model (Odena et al. 2016, Appendix A, Table 1)",
               paper.paper_generator, paper.paper_discriminator, lr=paper.LEARNING_RATE,
               batch_size=paper.BATCH_SIZE),
        Preset("keras-mnist", "reference: the Keras example's MNIST AC-GAN (2017)",
               references.keras_mnist_generator, references.keras_mnist_discriminator),
        Preset("lindernoren", "reference: Keras-GAN's acgan (Linder-Noren)",
               references.lindernoren_generator, references.lindernoren_discriminator),
        Preset("brownlee", "reference: Brownlee's Fashion-MNIST AC-GAN",
               references.brownlee_generator, references.brownlee_discriminator),
        Preset("keras-mnist-v2", "reference: the Keras example's MNIST AC-GAN (2018)",
               references.keras_mnist_v2_generator, references.keras_mnist_v2_discriminator),
        Preset("jsstar", "reference: jsstar522's MNIST AC-GAN",
               references.jsstar_generator, references.jsstar_discriminator),
    )
}  # fmt: skip

DEFAULT_PRESET = "dcgan"  # for grey images
COLOUR_PRESET = "dcgan-cbn"  # for colour images, chosen by the colour screen (docs/results.md)


def default_preset(channels: int) -> str:
    """The preset a run gets when none is named: chosen by measurement for grey and for colour data."""
    return COLOUR_PRESET if channels == 3 else DEFAULT_PRESET


def get_preset(name: str) -> Preset:
    """Look up a preset; AcganError listing the known names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise AcganError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})") from None


def check_model_config(config: ModelConfig) -> Preset:
    """The preset of `config`, after checking the options it cannot take; AcganError otherwise."""
    preset = get_preset(config.preset)
    problem = unsupported_setting(preset, {name: getattr(config, name) for name in ADJUSTABLE})
    if problem:
        raise AcganError(problem)
    return preset


ADJUSTABLE = {
    "width": 0,
    "class_input": "concat",
    "mbstd": False,
}  # settings a preset may offer, and their neutral values


def unsupported_setting(preset: Preset, values: dict[str, object]) -> str | None:
    """Why `preset` cannot take a setting of `values` (a non-neutral value it does not read), or None."""
    for name, value in values.items():
        if value not in (None, ADJUSTABLE[name]) and name not in preset.settings:
            offering = ", ".join(f"'{p.name}'" for p in PRESETS.values() if name in p.settings)
            return f"preset '{preset.name}' reproduces a fixed architecture; {name} applies to {offering} only"
    return None


def build_generator(config: ModelConfig, seed: int = 0) -> Generator:
    """Build the preset's generator with weights initialised from `seed` (global RNG left untouched)."""
    preset = check_model_config(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return preset.build_generator(config)
        except ValueError as exc:
            raise AcganError(str(exc)) from None


def build_discriminator(config: ModelConfig, seed: int = 0) -> Discriminator:
    """Build the preset's discriminator with weights initialised from `seed` (global RNG left untouched)."""
    preset = check_model_config(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        try:
            discriminator = preset.build_discriminator(config)
        except ValueError as exc:
            raise AcganError(str(exc)) from None
        if config.spectral_norm:
            apply_spectral_norm(discriminator)
    return discriminator


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every Conv2d and Linear weight of `module` (and a projection
    head's class embedding), in place.

    One power iteration per training forward pass, as in the paper; the weights keep their initialisation.
    """
    for child in list(module.modules()):
        if isinstance(child, nn.Conv2d | nn.Linear):
            spectral_norm(child)
    projection = getattr(module, "projection", None)
    if isinstance(projection, nn.Embedding):  # the projection head's class embedding, as SNGAN's (SNEmbedding)
        spectral_norm(projection)
    return module
