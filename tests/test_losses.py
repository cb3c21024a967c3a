"""Every loss and objective on hand-computed cases, and which network each phase's gradients reach."""

from __future__ import annotations

import math

import pytest
import torch

from acgan.losses import (
    class_accuracy,
    class_loss,
    data_to_data_cross_entropy,
    hinge_discriminator,
    hinge_generator,
    source_accuracy,
    source_bce,
    source_loss,
)
from acgan.models import DiscriminatorOutput, ModelConfig, build_discriminator, build_generator
from acgan.objectives import (
    OBJECTIVES,
    DataToDataObjective,
    DiscriminativeClassifierObjective,
    HingeObjective,
    KerasObjective,
    Objective,
    TwinObjective,
    build_objective,
)
from acgan.training.state import TrainState
from acgan.training.steps import StepPlan, discriminator_phase, generator_phase


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def ce(logits: list[float], target: int) -> float:
    """Cross-entropy of one row of logits, by hand."""
    return -logits[target] + math.log(sum(math.exp(v) for v in logits))


def test_source_loss_hand_computed() -> None:
    logits = torch.tensor([0.0, 2.0, -1.0])
    real = -(math.log(0.5) + math.log(1 / (1 + math.exp(-2))) + math.log(1 / (1 + math.exp(1)))) / 3
    fake = -(math.log(0.5) + math.log(1 - 1 / (1 + math.exp(-2))) + math.log(1 - 1 / (1 + math.exp(1)))) / 3
    assert float(source_loss(logits, is_real=True)) == pytest.approx(real, rel=1e-6)
    assert float(source_loss(logits, is_real=False)) == pytest.approx(fake, rel=1e-6)
    assert float(source_bce(logits, 1.0)) == pytest.approx(real, rel=1e-6)


def test_soft_label_bce_hand_computed() -> None:
    # target t: -(t log s(l) + (1 - t) log(1 - s(l))) = t softplus(-l) + (1 - t) softplus(l)
    logits = torch.tensor([1.0, -2.0])
    expected = sum(0.95 * softplus(-v) + 0.05 * softplus(v) for v in (1.0, -2.0)) / 2
    assert float(source_bce(logits, 0.95)) == pytest.approx(expected, rel=1e-6)


def test_hinge_losses_hand_computed() -> None:
    logits = torch.tensor([2.0, 0.5, -3.0])
    assert float(hinge_discriminator(logits, is_real=True)) == pytest.approx((0 + 0.5 + 4.0) / 3)
    assert float(hinge_discriminator(logits, is_real=False)) == pytest.approx((3.0 + 1.5 + 0) / 3)
    assert float(hinge_generator(logits)) == pytest.approx(-(2.0 + 0.5 - 3.0) / 3)


def test_class_loss_hand_computed() -> None:
    uniform = torch.zeros(4, 10)
    assert float(class_loss(uniform, torch.tensor([0, 3, 5, 9]))) == pytest.approx(math.log(10), rel=1e-6)
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    expected = -math.log(math.exp(2) / (math.exp(2) + 2))
    assert float(class_loss(logits, torch.tensor([0]))) == pytest.approx(expected, rel=1e-6)


def test_losses_are_stable_for_extreme_logits() -> None:
    """From logits, a confident wrong answer costs ~|logit|, not inf (no sigmoid/softmax before the log)."""
    assert float(source_loss(torch.tensor([-200.0]), is_real=True)) == pytest.approx(200.0, rel=1e-6)
    assert float(class_loss(torch.tensor([[0.0, 300.0]]), torch.tensor([0]))) == pytest.approx(300.0, rel=1e-6)


def test_data_to_data_cross_entropy_hand_computed() -> None:
    """Three 2-d embeddings, two classes; cosines and margins worked out by hand."""
    s = 1 / math.sqrt(2)
    embedding = torch.tensor([[1.0, 0.0], [s, s], [0.0, 2.0]])  # normalised: e0, (s, s), e1
    proxies = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # classes 0, 0, 1
    labels = torch.tensor([0, 0, 1])
    m, tau = 0.98, 0.5
    # positives: cos(f_i, v_i) = 1, s, 1 -> [cos - m]_- = 0, s - m, 0
    pos = [0.0, min(s - m, 0.0) / tau, 0.0]
    # negatives (other class only): f0.f2 = 0, f1.f2 = s; [cos - (1 - m)]_+ / tau
    neg = {0: [max(0.0 - (1 - m), 0.0) / tau], 1: [max(s - (1 - m), 0.0) / tau], 2: [max(0.0 - (1 - m), 0.0) / tau,
                                                                                         max(s - (1 - m), 0.0) / tau]}  # fmt: skip
    expected = sum(-pos[i] + math.log(math.exp(pos[i]) + sum(math.exp(v) for v in neg[i])) for i in range(3)) / 3
    value = data_to_data_cross_entropy(embedding, proxies, labels, margin=m, temperature=tau)
    assert float(value) == pytest.approx(expected, rel=1e-6)
    # A same-class neighbour is never a negative: with one class only, the loss is the positive term alone.
    same = data_to_data_cross_entropy(embedding, proxies, torch.tensor([0, 0, 0]), margin=m, temperature=tau)
    assert float(same) == pytest.approx(0.0, abs=1e-6)  # log(exp(p) / exp(p))


def test_accuracies() -> None:
    assert float(source_accuracy(torch.tensor([1.0, -1.0, 2.0, 0.5]), is_real=True)) == 0.75
    assert float(source_accuracy(torch.tensor([1.0, -1.0, 2.0, 0.5]), is_real=False)) == 0.25
    logits = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
    assert float(class_accuracy(logits, torch.tensor([1, 1, 1]))) == pytest.approx(2 / 3)


def _output(adv: list[float], classes: list[list[float]], **extra: torch.Tensor) -> DiscriminatorOutput:
    return DiscriminatorOutput(torch.tensor(adv), torch.tensor(classes), **extra)


def test_acgan_objective_hand_computed() -> None:
    out = _output([1.0], [[0.0, 2.0, 0.0]])
    label = torch.tensor([1])
    loss, stats = Objective().discriminator_loss(out, label, is_real=True)
    assert float(loss) == pytest.approx(softplus(-1.0) + ce([0, 2, 0], 1), rel=1e-6)
    assert set(stats) == {"source", "class", "acc", "sign", "class_acc"} and float(stats["class_acc"]) == 1.0
    assert float(stats["sign"]) == 1.0  # D(x) = 1 > 0: confident the image is real
    loss, stats = Objective().discriminator_loss(out, label, is_real=False)
    assert float(loss) == pytest.approx(softplus(1.0) + ce([0, 2, 0], 1), rel=1e-6)
    loss, stats = Objective(class_weight=0.5, class_on_fake=False).discriminator_loss(out, label, is_real=False)
    assert float(loss) == pytest.approx(softplus(1.0), rel=1e-6) and "class" not in stats
    loss, _ = Objective(class_weight=0.5).generator_loss(out, label)
    assert float(loss) == pytest.approx(softplus(-1.0) + 0.5 * ce([0, 2, 0], 1), rel=1e-6)  # non-saturating


def test_keras_objective_hand_computed() -> None:
    out, label = _output([1.0], [[1.0, 0.0]]), torch.tensor([0])
    loss, _ = KerasObjective().discriminator_loss(out, label, is_real=True)
    assert float(loss) == pytest.approx(0.95 * softplus(-1.0) + 0.05 * softplus(1.0) + ce([1, 0], 0), rel=1e-6)
    loss, stats = KerasObjective().discriminator_loss(out, label, is_real=False)
    assert float(loss) == pytest.approx(softplus(1.0), rel=1e-6) and "class" not in stats  # real images only
    loss, _ = KerasObjective().generator_loss(out, label)
    assert float(loss) == pytest.approx(0.95 * softplus(-1.0) + 0.05 * softplus(1.0) + ce([1, 0], 0), rel=1e-6)


def test_hinge_objective_hand_computed() -> None:
    out, label = _output([0.25], [[0.0, 1.0]]), torch.tensor([1])
    loss, _ = HingeObjective().discriminator_loss(out, label, is_real=True)
    assert float(loss) == pytest.approx(0.75 + ce([0, 1], 1), rel=1e-6)
    loss, _ = HingeObjective().discriminator_loss(out, label, is_real=False)
    assert float(loss) == pytest.approx(1.25, rel=1e-6)
    loss, _ = HingeObjective(class_weight=2.0).generator_loss(out, label)
    assert float(loss) == pytest.approx(-0.25 + 2 * ce([0, 1], 1), rel=1e-6)


def test_tac_objective_hand_computed() -> None:
    twin = torch.tensor([[3.0, 0.0]])
    out, label = _output([0.0], [[0.0, 1.0]], twin_logits=twin), torch.tensor([1])
    loss, stats = TwinObjective().discriminator_loss(out, label, is_real=True)
    assert float(loss) == pytest.approx(math.log(2) + ce([0, 1], 1), rel=1e-6)
    loss, stats = TwinObjective().discriminator_loss(out, label, is_real=False)
    assert float(loss) == pytest.approx(math.log(2) + ce([3, 0], 1), rel=1e-6)  # the twin learns generated images
    assert "twin" in stats and "class" not in stats
    loss, _ = TwinObjective().generator_loss(out, label)
    assert float(loss) == pytest.approx(math.log(2) + ce([0, 1], 1) - ce([3, 0], 1), rel=1e-6)


def test_adc_objective_hand_computed() -> None:
    adc = torch.tensor([[1.0, 0.0, 0.0, 2.0]])  # K = 2: [real 0, real 1, fake 0, fake 1]
    out, label = _output([0.0], [[1.0, 0.0]], adc_logits=adc), torch.tensor([1])
    row = [1.0, 0.0, 0.0, 2.0]
    loss, _ = DiscriminativeClassifierObjective().discriminator_loss(out, label, is_real=True)
    assert float(loss) == pytest.approx(math.log(2) + ce(row, 1), rel=1e-6)
    loss, stats = DiscriminativeClassifierObjective().discriminator_loss(out, label, is_real=False)
    assert float(loss) == pytest.approx(math.log(2) + ce(row, 3), rel=1e-6) and float(stats["adc_acc"]) == 1.0
    loss, _ = DiscriminativeClassifierObjective().generator_loss(out, label)
    assert float(loss) == pytest.approx(math.log(2) + ce(row, 1) - ce(row, 3), rel=1e-6)


def test_reacgan_objective_uses_d2d_on_real_only_in_d() -> None:
    embedding, proxies = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    out = _output([0.0, 0.0], [[0.0, 0.0], [0.0, 0.0]], embedding=embedding, proxies=proxies)
    labels = torch.tensor([0, 1])
    d2d = float(data_to_data_cross_entropy(embedding, proxies, labels, 0.98, 0.5))
    loss, _ = DataToDataObjective().discriminator_loss(out, labels, is_real=True)
    assert float(loss) == pytest.approx(math.log(2) + d2d, rel=1e-6)
    loss, stats = DataToDataObjective().discriminator_loss(out, labels, is_real=False)
    assert float(loss) == pytest.approx(math.log(2), rel=1e-6) and "d2d" not in stats
    loss, _ = DataToDataObjective().generator_loss(out, labels)
    assert float(loss) == pytest.approx(math.log(2) + d2d, rel=1e-6)


@pytest.mark.parametrize("preset", ["dcgan", "resnet"])
@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_every_objective_runs_on_the_heads_it_declares(name: str, preset: str) -> None:
    """Built with the heads an objective names, D gives it what it needs; losses are finite with gradients."""
    objective = build_objective(name, 1.0, OBJECTIVES[name].class_on_fake)  # type: ignore[arg-type]
    config = ModelConfig(preset, num_classes=3, heads=OBJECTIVES[name].heads, width=8)
    discriminator = build_discriminator(config)
    images, labels = torch.rand(6, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2])
    halves = [(discriminator(images, labels), labels, is_real) for is_real in (True, False)]
    loss, stats = objective.discriminator_losses(halves)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in stats.values())
    assert discriminator(images, labels).class_logits.shape == (6, 3)


def _state(heads: tuple[str, ...] = ("class",)) -> TrainState:
    config = ModelConfig("dcgan", heads=heads)
    generator, discriminator = build_generator(config), build_discriminator(config)
    return TrainState(generator, discriminator, torch.optim.Adam(generator.parameters(), lr=1e-3),
                      torch.optim.Adam(discriminator.parameters(), lr=1e-3), torch.Generator().manual_seed(0))  # fmt: skip


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_discriminator_phase_updates_only_d(name: str) -> None:
    state = _state(OBJECTIVES[name].heads)
    plan = StepPlan(build_objective(name, 1.0, OBJECTIVES[name].class_on_fake))  # type: ignore[arg-type]
    g_before = [p.clone() for p in state.generator.parameters()]
    d_before = [p.clone() for p in state.discriminator.parameters()]
    images, labels = torch.rand(4, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 3])
    discriminator_phase(state, plan, [(images, labels, True), (images.flip(0), labels, False)])
    assert all(torch.equal(a, b) for a, b in zip(g_before, state.generator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, state.discriminator.parameters(), strict=True))


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_generator_phase_updates_only_g_and_leaves_d_trainable(name: str) -> None:
    state = _state(OBJECTIVES[name].heads)
    plan = StepPlan(build_objective(name, 1.0, OBJECTIVES[name].class_on_fake))  # type: ignore[arg-type]
    g_before = [p.clone() for p in state.generator.parameters()]
    d_before = [p.clone() for p in state.discriminator.parameters()]
    real = (torch.rand(2, 1, 28, 28) * 2 - 1, torch.tensor([0, 1]))  # a paired objective's partners
    stats = generator_phase(state, plan, torch.randn(4, 100), torch.tensor([0, 1, 2, 3]), real)
    assert all(name.startswith("g_") for name in stats)
    assert all(torch.equal(a, b) for a, b in zip(d_before, state.discriminator.parameters(), strict=True))
    assert all(p.grad is None for p in state.discriminator.parameters())
    assert all(p.requires_grad for p in state.discriminator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, state.generator.parameters(), strict=True))
