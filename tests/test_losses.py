"""Losses on hand-computed cases, and which network each phase's gradients reach."""

from __future__ import annotations

import math

import pytest
import torch

from acgan.losses import (
    class_accuracy,
    class_loss,
    discriminator_loss,
    generator_loss,
    source_accuracy,
    source_loss,
)
from acgan.models import DiscriminatorOutput, ModelConfig, build_discriminator, build_generator
from acgan.training.steps import Models, discriminator_phase, generator_phase


def test_source_loss_hand_computed() -> None:
    logits = torch.tensor([0.0, 2.0, -1.0])
    real = -(math.log(0.5) + math.log(1 / (1 + math.exp(-2))) + math.log(1 / (1 + math.exp(1)))) / 3
    fake = -(math.log(0.5) + math.log(1 - 1 / (1 + math.exp(-2))) + math.log(1 - 1 / (1 + math.exp(1)))) / 3
    assert float(source_loss(logits, is_real=True)) == pytest.approx(real, rel=1e-6)
    assert float(source_loss(logits, is_real=False)) == pytest.approx(fake, rel=1e-6)


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


def test_discriminator_and_generator_loss_terms() -> None:
    output = DiscriminatorOutput(torch.tensor([0.0, 0.0]), torch.zeros(2, 4))
    labels = torch.tensor([1, 2])
    real = discriminator_loss(output, labels, is_real=True)
    assert float(real.source) == pytest.approx(math.log(2)) and float(real.klass) == pytest.approx(math.log(4))
    assert float(real.total) == pytest.approx(math.log(2) + math.log(4))
    no_class = discriminator_loss(output, labels, is_real=False, use_class_loss=False)
    assert float(no_class.klass) == 0.0
    g = generator_loss(DiscriminatorOutput(torch.tensor([1.0]), torch.tensor([[0.0, 1.0]])), torch.tensor([1]))
    assert float(g.source) == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)  # non-saturating -log D(G(z))
    assert float(g.klass) == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)


def test_accuracies() -> None:
    assert float(source_accuracy(torch.tensor([1.0, -1.0, 2.0, 0.5]), is_real=True)) == 0.75
    assert float(source_accuracy(torch.tensor([1.0, -1.0, 2.0, 0.5]), is_real=False)) == 0.25
    logits = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
    assert float(class_accuracy(logits, torch.tensor([1, 1, 1]))) == pytest.approx(2 / 3)


def _models() -> Models:
    config = ModelConfig("dcgan")
    generator, discriminator = build_generator(config), build_discriminator(config)
    return Models(generator, discriminator, torch.optim.Adam(generator.parameters(), lr=1e-3),
                  torch.optim.Adam(discriminator.parameters(), lr=1e-3))  # fmt: skip


def test_discriminator_phase_updates_only_d() -> None:
    models = _models()
    g_before = [p.clone() for p in models.generator.parameters()]
    d_before = [p.clone() for p in models.discriminator.parameters()]
    images = torch.rand(4, 1, 28, 28) * 2 - 1
    discriminator_phase(models, images, torch.tensor([0, 1, 2, 3]), is_real=True)
    assert all(torch.equal(a, b) for a, b in zip(g_before, models.generator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, models.discriminator.parameters(), strict=True))


def test_generator_phase_updates_only_g_and_leaves_d_trainable() -> None:
    models = _models()
    g_before = [p.clone() for p in models.generator.parameters()]
    d_before = [p.clone() for p in models.discriminator.parameters()]
    generator_phase(models, torch.randn(4, 100), torch.tensor([0, 1, 2, 3]))
    assert all(torch.equal(a, b) for a, b in zip(d_before, models.discriminator.parameters(), strict=True))
    assert all(p.grad is None for p in models.discriminator.parameters())
    assert all(p.requires_grad for p in models.discriminator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, models.generator.parameters(), strict=True))
