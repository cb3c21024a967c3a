"""One AC-GAN training step, split into its discriminator and generator phases (no I/O here).

The seeds' update scheme: D on a half batch of real images, D on a half batch of generated images
(two optimizer steps, as Keras' two `train_on_batch` calls), then G on a full batch through a frozen D.
The "joint" scheme makes one D update on both halves. With d_steps > 1, D is updated that many times (each
on fresh images) per G update.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from acgan.augment import diff_augment
from acgan.objectives import Objective, Stats
from acgan.training.state import TrainState


@dataclass(frozen=True)
class StepPlan:
    """How a step updates the networks: the objective, the D update scheme and DiffAugment's policy."""

    objective: Objective
    d_updates: str = "seeds"  # "seeds" or "joint"
    d_steps: int = 1
    augment: tuple[str, ...] = ()  # DiffAugment transformations, applied to every image D sees

    def d_view(self, images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """What D sees of (B, C, H, W) images: augmented when the plan says so."""
        return diff_augment(images, self.augment, rng) if self.augment else images


def _prefixed(prefix: str, stats: Stats) -> Stats:
    return {f"{prefix}{name}": value for name, value in stats.items()}


def _update(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    """Backward and an optimizer step; with a scaler (fp16), on the scaled loss, skipped when gradients overflow."""
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()


def discriminator_phase(
    state: TrainState, plan: StepPlan, halves: list[tuple[torch.Tensor, torch.Tensor, bool]]
) -> Stats:
    """One D update on the given half batches [(images (B, C, H, W), labels (B,), is_real)], losses summed.

    Returns the objective's detached statistics, prefixed d_real_ / d_fake_.
    """
    state.opt_d.zero_grad(set_to_none=True)
    discriminator = state.train_discriminator or state.discriminator  # DDP averages D's gradients over ranks
    total: torch.Tensor | None = None
    stats: Stats = {}
    for images, labels, is_real in halves:
        output = discriminator(plan.d_view(images, state.rng), labels)
        loss, terms = plan.objective.discriminator_loss(output, labels, is_real)
        total = loss if total is None else total + loss
        stats.update(_prefixed("d_real_" if is_real else "d_fake_", terms))
    assert total is not None
    _update(total, state.opt_d, state.scalers["d"] if state.scalers else None)
    return stats


def generator_phase(state: TrainState, plan: StepPlan, z: torch.Tensor, labels: torch.Tensor) -> Stats:
    """One G update on a full batch of latents (B, z_dim) and labels (B,) through a frozen D; g_ statistics.

    D is called directly, never through its DDP wrapper: it has no gradients to average in this phase.
    """
    state.discriminator.requires_grad_(False)  # no gradient bookkeeping for D's weights in this phase
    try:
        state.opt_g.zero_grad(set_to_none=True)
        images = (state.train_generator or state.generator)(z, labels)  # (B, C, H, W)
        output = state.discriminator(plan.d_view(images, state.rng), labels)
        loss, terms = plan.objective.generator_loss(output, labels)
        _update(loss, state.opt_g, state.scalers["g"] if state.scalers else None)
    finally:
        state.discriminator.requires_grad_(True)
    return _prefixed("g_", terms)


def d_leaves_parameters_unused(state: TrainState, plan: StepPlan, image_shape: tuple[int, int, int]) -> bool:
    """Whether some D update of `plan` leaves one of D's parameters without a gradient (TAC-GAN's twin head on
    real images, the class head on generated ones when the objective skips it there).

    Probed on a copy of D with two blank images per phase; the random streams are left untouched.
    """
    probe = copy.deepcopy(state.discriminator).requires_grad_(True)
    device = next(probe.parameters()).device
    images = torch.zeros(2, *image_shape, device=device)  # (2, C, H, W)
    labels = torch.zeros(2, dtype=torch.int64, device=device)
    phases = [[True], [False]] if plan.d_updates == "seeds" else [[True, False]]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for phase in phases:
            probe.zero_grad(set_to_none=True)
            total = sum(plan.objective.discriminator_loss(probe(images, labels), labels, is_real)[0]
                        for is_real in phase)  # fmt: skip
            assert isinstance(total, torch.Tensor)
            total.backward()
            if any(param.grad is None for param in probe.parameters()):
                return True
    return False


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


def _mean_stats(updates: list[Stats]) -> Stats:
    if len(updates) == 1:
        return updates[0]
    return {name: torch.stack([u[name] for u in updates]).mean() for name in updates[0]}


def training_step(
    state: TrainState,
    plan: StepPlan,
    real_images: torch.Tensor,
    real_labels: torch.Tensor,
    batch_size: int,
    ema_decay: float = 0.0,
) -> Stats:
    """One full step: plan.d_steps D updates, then one G update and the moving average; named statistics.

    real_images: (d_steps * batch_size / 2, C, H, W) in [-1, 1], real_labels: (d_steps * batch_size / 2,) int64.
    Each D update sees batch_size / 2 real and batch_size / 2 generated images; G sees batch_size.
    Latents, fake labels and augmentations come from state.rng. Statistics are detached scalar tensors
    (means over the D updates), left on the device so the caller decides when to synchronise.
    """
    device = real_images.device
    generator, config = state.generator, state.generator.config
    half = batch_size // 2
    d_updates = []
    for index in range(plan.d_steps):
        real = (real_images[index * half : (index + 1) * half], real_labels[index * half : (index + 1) * half])
        if plan.d_updates == "seeds":
            real_stats = discriminator_phase(state, plan, [(*real, True)])
        z = torch.randn(half, config.z_dim, generator=state.rng, device=device)  # (B/2, z_dim)
        fake_labels = torch.randint(config.num_classes, (half,), generator=state.rng, device=device)  # (B/2,)
        with torch.no_grad():
            fake = generator(z, fake_labels)  # (B/2, C, H, W)
        if plan.d_updates == "seeds":
            d_updates.append({**real_stats, **discriminator_phase(state, plan, [(fake, fake_labels, False)])})
        else:
            d_updates.append(discriminator_phase(state, plan, [(*real, True), (fake, fake_labels, False)]))

    z = torch.randn(batch_size, config.z_dim, generator=state.rng, device=device)  # (B, z_dim)
    g_labels = torch.randint(config.num_classes, (batch_size,), generator=state.rng, device=device)  # (B,)
    g_stats = generator_phase(state, plan, z, g_labels)
    if state.g_ema is not None:
        update_ema(state.g_ema, generator, ema_decay)
    state.step += 1
    return {**_mean_stats(d_updates), **g_stats}
