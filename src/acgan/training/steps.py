"""One AC-GAN training step, split into its discriminator and generator phases (no I/O here).

The seeds' update scheme: D on a half batch of real images, D on a half batch of generated images
(two optimizer steps, as Keras' two `train_on_batch` calls), then G on a full batch through a frozen D.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from acgan.losses import class_accuracy, discriminator_loss, generator_loss, source_accuracy
from acgan.models.networks import Discriminator, Generator

# Keys of the per-step statistics, in the order of the seeds' log line (dr, df, g) then accuracies.
STAT_KEYS = (
    "d_real_source", "d_real_class", "d_fake_source", "d_fake_class", "g_source", "g_class",
    "d_real_acc", "d_fake_acc", "d_real_class_acc", "d_fake_class_acc",
)  # fmt: skip


@dataclass
class Models:
    """The networks and optimizers a step updates."""

    generator: Generator
    discriminator: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    g_ema: Generator | None = None


def discriminator_phase(
    models: Models, images: torch.Tensor, labels: torch.Tensor, is_real: bool, use_class_loss: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One D update on a half batch (B, C, H, W) of all-real or all-generated images with (B,) labels.

    Returns detached scalars: source loss, class loss, source accuracy, class accuracy.
    """
    models.opt_d.zero_grad(set_to_none=True)
    output = models.discriminator(images)  # adv (B,), class (B, K)
    terms = discriminator_loss(output, labels, is_real, use_class_loss)
    terms.total.backward()
    models.opt_d.step()
    return (
        terms.source.detach(),
        terms.klass.detach(),
        source_accuracy(output.adv_logits.detach(), is_real),
        class_accuracy(output.class_logits.detach(), labels),
    )


def generator_phase(models: Models, z: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One G update on a full batch of latents (B, z_dim) and labels (B,) through a frozen D.

    Returns detached scalars: source loss, class loss.
    """
    models.discriminator.requires_grad_(False)  # no gradient bookkeeping for D's weights in this phase
    try:
        models.opt_g.zero_grad(set_to_none=True)
        output = models.discriminator(models.generator(z, labels))
        terms = generator_loss(output, labels)
        terms.total.backward()
        models.opt_g.step()
    finally:
        models.discriminator.requires_grad_(True)
    return terms.source.detach(), terms.klass.detach()


def ema_decay_at(decay: float, step: int) -> float:
    """The moving average's decay for the update after `step` completed steps: min(decay, (1 + step) / (10 + step)).

    The average starts as a copy of the untrained generator; with a fixed 0.999 it would still be 52%
    initial weights after 650 steps (MNIST dcgan: conditional accuracy 0.10 after a minute of training).
    The warm-up lets it follow the generator early and reach the full decay after about 9,000 steps.
    """
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers (BatchNorm statistics) are copied."""
    for ema_param, param in zip(ema.parameters(), model.parameters(), strict=True):
        ema_param.lerp_(param, 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)


def training_step(
    models: Models,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    rng: torch.Generator,
    use_class_loss_on_fake: bool = True,
    ema_decay: float = 0.0,
) -> torch.Tensor:
    """One full step of the seeds' scheme; returns the statistics as a (len(STAT_KEYS),) tensor.

    images: (N, C, H, W) in [-1, 1], the whole training set on the training device; labels: (N,) int64.
    D sees batch_size // 2 real and batch_size // 2 generated images; G sees batch_size.
    Random indices, latents and fake labels come from `rng` (a generator on the same device).
    """
    device = images.device
    generator, config = models.generator, models.generator.config
    half = batch_size // 2
    real_index = torch.randint(images.shape[0], (half,), generator=rng, device=device)  # (B/2,)
    d_real = discriminator_phase(models, images[real_index], labels[real_index], is_real=True)

    z = torch.randn(half, config.z_dim, generator=rng, device=device)  # (B/2, z_dim)
    fake_labels = torch.randint(config.num_classes, (half,), generator=rng, device=device)  # (B/2,)
    with torch.no_grad():
        fake = generator(z, fake_labels)  # (B/2, C, H, W)
    d_fake = discriminator_phase(models, fake, fake_labels, is_real=False, use_class_loss=use_class_loss_on_fake)

    z = torch.randn(batch_size, config.z_dim, generator=rng, device=device)  # (B, z_dim)
    g_labels = torch.randint(config.num_classes, (batch_size,), generator=rng, device=device)  # (B,)
    g_source, g_class = generator_phase(models, z, g_labels)
    if models.g_ema is not None:
        update_ema(models.g_ema, generator, ema_decay)
    return torch.stack([d_real[0], d_real[1], d_fake[0], d_fake[1], g_source, g_class,
                        d_real[2], d_fake[2], d_real[3], d_fake[3]])  # fmt: skip
