"""One AC-GAN training step as a list of phases (no I/O here).

A phase is data: its name, the function that runs it, the interval (in steps) at which it runs, and for a
discriminator update the half batches it updates on (what the DDP probe reads). An update scheme is a phase
list (StyleGAN2-ADA's `phases`):

    alternating (the references'): per D update, D on a half batch of real images, then D on a half batch of
                generated ones (two optimizer steps, as Keras' two `train_on_batch` calls); then G on a full
                batch through a frozen D
    joint:      per D update, one D update on both halves; then G

With d_steps > 1 the D phases repeat that many times per step, each on fresh images. A regulariser that runs
every 16 steps is one more entry with interval=16.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch

from acgan.augment import Augmentation
from acgan.device import autocast
from acgan.errors import AcganError
from acgan.models.networks import split_output
from acgan.objectives import Objective, Stats, prefixed
from acgan.training.distributed import average_gradients
from acgan.training.ema import update_ema
from acgan.training.regularisers import Regulariser, gradient_penalty, lazy_ratio
from acgan.training.schedules import Schedules
from acgan.training.state import TrainState


@dataclass(frozen=True)
class StepInputs:
    """What one step is given: (d_steps * B/2, C, H, W) real images in [-1, 1], their (d_steps * B/2,) labels, and
    the full batch size B (each D update sees B/2 real and B/2 generated images; G sees B)."""

    real_images: torch.Tensor
    real_labels: torch.Tensor
    batch_size: int

    def real_half(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The `index`-th real half batch: images (B/2, C, H, W) and labels (B/2,)."""
        half = self.batch_size // 2
        rows = slice(index * half, (index + 1) * half)
        return self.real_images[rows], self.real_labels[rows]


PhaseFunction = Callable[[TrainState, "StepPlan", StepInputs], Stats]


@dataclass(frozen=True)
class Phase:
    """One part of a step. `halves` names the half batches a discriminator update trains on (True real, False
    generated): empty for a phase that does not update D on images (G's). A regulariser's halves say what it
    penalises (the DDP probe leaves those out: they call D directly)."""

    name: str
    run: PhaseFunction
    interval: int = 1
    halves: tuple[bool, ...] = ()
    kind: str = "update"  # "update": a network's loss; "regulariser": a penalty on D, lazily every `interval` steps

    def due(self, step: int) -> bool:
        return step % self.interval == 0


def _update(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
            before_step: Callable[[], None] | None = None) -> None:  # fmt: skip
    """Backward and an optimizer step (after `before_step`, e.g. averaging gradients over ranks); with a scaler
    (fp16), on the scaled loss, skipped when gradients overflow."""
    (loss if scaler is None else scaler.scale(loss)).backward()
    if before_step is not None:
        before_step()
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()


def discriminator_phase(
    state: TrainState, plan: StepPlan, halves: list[tuple[torch.Tensor, torch.Tensor, bool]]
) -> Stats:
    """One D update on the given half batches [(images (B, C, H, W), labels (B,), is_real)], losses summed.

    Several halves go through D in one forward pass when no layer of D lets images see each other (no
    BatchNorm); the losses are still computed half by half. Returns the objective's detached statistics,
    prefixed d_real_ / d_fake_.
    """
    state.opt_d.zero_grad(set_to_none=True)
    discriminator = state.d_for_training  # DDP averages D's gradients over ranks
    views = [(plan.d_view(images, state.rng), labels) for images, labels, _ in halves]  # augmented in order
    if len(views) > 1 and state.discriminator.batch_independent:  # one pass over the halves together
        together = discriminator(torch.cat([v[0] for v in views]), torch.cat([v[1] for v in views]))
        outputs = split_output(together, [len(v[1]) for v in views])
    else:
        outputs = [discriminator(images, labels) for images, labels in views]
    total, stats = plan.objective.discriminator_losses(
        [(output, labels, is_real) for output, (_, labels, is_real) in zip(outputs, halves, strict=True)]
    )
    _update(total, state.opt_d, state.scalers["d"] if state.scalers else None)
    return stats


def generator_phase(state: TrainState, plan: StepPlan, z: torch.Tensor, labels: torch.Tensor,
                    real: tuple[torch.Tensor, torch.Tensor] | None = None) -> Stats:  # fmt: skip
    """One G update on a full batch of latents (B, z_dim) and labels (B,) through a frozen D; g_ statistics. A
    paired objective also gets D's output on the `real` images (B/2, C, H, W) and labels (B/2,).

    D is called directly, never through its DDP wrapper: it has no gradients to average in this phase.
    """
    state.discriminator.requires_grad_(False)  # no gradient bookkeeping for D's weights in this phase
    try:
        state.opt_g.zero_grad(set_to_none=True)
        real_output = None
        if plan.objective.paired and real is not None:
            with torch.no_grad():  # the real images' scores are constants of G's loss
                real_output = state.discriminator(plan.d_view(real[0], state.rng), real[1])
        images = state.g_for_training(z, labels)  # (B, C, H, W)
        output = state.discriminator(plan.d_view(images, state.rng), labels)
        loss, terms = plan.objective.generator_loss(output, labels, real_output)
        _update(loss, state.opt_g, state.scalers["g"] if state.scalers else None)
    finally:
        state.discriminator.requires_grad_(True)
    return prefixed("g_", terms)


def generated_half(state: TrainState, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` images from G without gradients, for a D update: images (count, C, H, W) and their labels."""
    config, device = state.generator.config, state.rng.device
    z = torch.randn(count, config.z_dim, generator=state.rng, device=device)  # (B/2, z_dim)
    labels = torch.randint(config.num_classes, (count,), generator=state.rng, device=device)  # (B/2,)
    with torch.no_grad():
        return state.generator(z, labels), labels  # (B/2, C, H, W)


def d_on_real(state: TrainState, plan: StepPlan, inputs: StepInputs, index: int = 0) -> Stats:
    """D on the `index`-th real half batch."""
    images, labels = inputs.real_half(index)
    return discriminator_phase(state, plan, [(images, labels, True)])


def d_on_generated(state: TrainState, plan: StepPlan, inputs: StepInputs, index: int = 0) -> Stats:
    """D on a fresh half batch of generated images."""
    images, labels = generated_half(state, inputs.batch_size // 2)
    return discriminator_phase(state, plan, [(images, labels, False)])


def d_on_both(state: TrainState, plan: StepPlan, inputs: StepInputs, index: int = 0) -> Stats:
    """One D update on the `index`-th real half batch and a fresh generated one."""
    real_images, real_labels = inputs.real_half(index)
    images, labels = generated_half(state, inputs.batch_size // 2)
    return discriminator_phase(state, plan, [(real_images, real_labels, True), (images, labels, False)])


def g_update(state: TrainState, plan: StepPlan, inputs: StepInputs) -> Stats:
    """G on a full batch of fresh latents and labels."""
    config, device = state.generator.config, state.rng.device
    z = torch.randn(inputs.batch_size, config.z_dim, generator=state.rng, device=device)  # (B, z_dim)
    labels = torch.randint(config.num_classes, (inputs.batch_size,), generator=state.rng, device=device)  # (B,)
    return generator_phase(state, plan, z, labels, inputs.real_half(0))


def d_penalty(state: TrainState, plan: StepPlan, inputs: StepInputs, regulariser: Regulariser) -> Stats:
    """A lazy gradient penalty update of D (acgan.training.regularisers): R1 on the first real half batch or R2 on a
    fresh generated one, times gamma / 2 and the interval; the penalty itself as d_r1 / d_r2.

    D is called directly (a double backward through DistributedDataParallel is not supported): its gradients are
    averaged over the ranks by hand before the step.
    """
    count = inputs.batch_size // 2
    images, labels = inputs.real_half(0) if regulariser.on_real else generated_half(state, count)
    images = images.detach().requires_grad_(True)  # (B/2, C, H, W)
    state.opt_d.zero_grad(set_to_none=True)
    output = state.discriminator(plan.d_view(images, state.rng), labels)
    penalty = gradient_penalty(output.adv_logits, images)
    gamma = regulariser.gamma * plan.schedules.gamma_factor(state.step)
    loss = penalty * (gamma / 2 * regulariser.interval)
    _update(loss, state.opt_d, state.scalers["d"] if state.scalers else None,
            before_step=lambda: average_gradients(state.discriminator, state.world))  # fmt: skip
    return {f"d_{regulariser.kind}": penalty.detach()}


def regulariser_phases(regularisers: tuple[Regulariser, ...]) -> tuple[Phase, ...]:
    """One phase per penalty, due every `interval` steps."""
    return tuple(Phase(f"D {reg.kind.upper()}", partial(d_penalty, regulariser=reg), interval=reg.interval,
                       halves=(reg.on_real,), kind="regulariser") for reg in regularisers)  # fmt: skip


def alternating_scheme(d_steps: int) -> tuple[Phase, ...]:
    """The references' scheme: D on real, D on generated (each its own update), d_steps times; then G."""
    d_phases = [phase for index in range(d_steps) for phase in (
        Phase("D real", partial(d_on_real, index=index), halves=(True,)),
        Phase("D generated", partial(d_on_generated, index=index), halves=(False,)))]  # fmt: skip
    return (*d_phases, Phase("G", g_update))


def joint_scheme(d_steps: int) -> tuple[Phase, ...]:
    """One D update on a real and a generated half batch, d_steps times; then G."""
    d_phases = [Phase("D both", partial(d_on_both, index=index), halves=(True, False)) for index in range(d_steps)]
    return (*d_phases, Phase("G", g_update))


SCHEMES: dict[str, Callable[[int], tuple[Phase, ...]]] = {"alternating": alternating_scheme, "joint": joint_scheme}


@dataclass(frozen=True)
class StepPlan:
    """How a step updates the networks: the objective, the update scheme (its phase list) and DiffAugment's policy."""

    objective: Objective
    d_updates: str = "alternating"  # a name in SCHEMES
    d_steps: int = 1
    augment: Augmentation = field(default_factory=Augmentation)  # what D sees of every image (with state: ADA's p)
    regularisers: tuple[Regulariser, ...] = ()  # gradient penalties on D, each a phase after D's updates
    schedules: Schedules = field(default_factory=Schedules)  # values that change with the step (none by default)
    phases: tuple[Phase, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.d_updates not in SCHEMES:
            raise AcganError(f"d_updates must be one of {', '.join(SCHEMES)}, got '{self.d_updates}'")
        if not self.phases:
            scheme = SCHEMES[self.d_updates](self.d_steps)
            last_d = max(index for index, phase in enumerate(scheme) if phase.halves)
            phases = (*scheme[: last_d + 1], *regulariser_phases(self.regularisers), *scheme[last_d + 1 :])
            object.__setattr__(self, "phases", phases)

    def d_view(self, images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """What D sees of (B, C, H, W) images: augmented when the plan says so."""
        return self.augment(images, rng)


def d_leaves_parameters_unused(state: TrainState, plan: StepPlan, image_shape: tuple[int, int, int]) -> bool:
    """Whether one of the plan's D phases leaves one of D's parameters without a gradient (TAC-GAN's twin head on
    real images, the class head on generated ones when the objective skips it there).

    Probed on a copy of D with two blank images per half batch; the random streams are left untouched.
    """
    probe = copy.deepcopy(state.discriminator).requires_grad_(True)
    device = next(probe.parameters()).device
    images = torch.zeros(2, *image_shape, device=device)  # (2, C, H, W)
    labels = torch.zeros(2, dtype=torch.int64, device=device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for phase in plan.phases:
            if not phase.halves or phase.kind != "update":
                continue
            probe.zero_grad(set_to_none=True)
            total, _ = plan.objective.discriminator_losses([(probe(images, labels), labels, is_real)
                                                            for is_real in phase.halves])  # fmt: skip
            total.backward()
            if any(param.grad is None for param in probe.parameters()):
                return True
    return False


def _mean_stats(runs: list[Stats]) -> Stats:
    """Statistics of phases that ran several times in one step (d_steps > 1), averaged by name."""
    if len(runs) == 1:
        return runs[0]
    return {name: torch.stack([run[name] for run in runs]).mean() for name in runs[0]}


def scheduled(state: TrainState, plan: StepPlan) -> StepPlan:
    """Set this step's scheduled values (acgan.training.schedules): the optimizers' learning rates and beta2 (D's
    adjusted for lazy penalties, as at the start) and the class's strength in G, D and the moving average; the
    plan with its objective's class weight scaled by that strength."""
    schedules, step = plan.schedules, state.step
    ratio = lazy_ratio(plan.regularisers)
    rates, beta2 = schedules.learning_rates(step), schedules.beta2_at(step)
    for optimizer, index, power in ((state.opt_g, 0, 1.0), (state.opt_d, 1, ratio)):
        for group in optimizer.param_groups:
            if rates is not None:
                group["lr"] = rates[index] * power
            if beta2 is not None:
                group["betas"] = (group["betas"][0], beta2**power)
    if schedules.ramp is None:
        return plan
    strength = schedules.condition_strength(step)
    for network in (state.generator, state.discriminator, state.g_ema):
        for module in network.modules() if network is not None else ():
            if hasattr(type(module), "condition_strength"):
                setattr(module, "condition_strength", strength)  # noqa: B010  (a plain attribute, not a tensor)
    weight = plan.objective.class_weight * strength
    return dataclasses.replace(plan, objective=dataclasses.replace(plan.objective, class_weight=weight),
                               phases=plan.phases)  # fmt: skip


def training_step(
    state: TrainState,
    plan: StepPlan,
    real_images: torch.Tensor,
    real_labels: torch.Tensor,
    batch_size: int,
    ema_decay: float = 0.0,
    precision: str = "fp32",
) -> Stats:
    """One full step: the plan's phases due at this step in order, then the moving average; named statistics.

    real_images: (d_steps * batch_size / 2, C, H, W) in [-1, 1], real_labels: (d_steps * batch_size / 2,) int64.
    Latents, fake labels and augmentations come from state.rng. Each phase runs in an autocast context of its
    own at `precision` (bf16, fp16; fp32: none): autocast keeps the low-precision copies of weights it cast until
    its context ends, so one context around several updates would give a later phase the weights of before an
    earlier phase's optimizer step. Statistics are detached scalar tensors (means over the runs of phases that
    ran several times), left on the device so the caller decides when to synchronise.
    """
    inputs = StepInputs(real_images, real_labels, batch_size)
    if plan.schedules.active:
        plan = scheduled(state, plan)
    runs: dict[str, list[Stats]] = {}
    for phase in plan.phases:
        if phase.due(state.step):
            with autocast(precision, real_images.device):
                runs.setdefault(phase.name, []).append(phase.run(state, plan, inputs))
    if state.g_ema is not None:
        update_ema(state.g_ema, state.generator, ema_decay)
    state.step += 1
    stats = {name: value for phase_stats in runs.values() for name, value in _mean_stats(phase_stats).items()}
    plan.augment.observe(stats)
    return stats | plan.augment.statistics()
