"""The AC-GAN objective as pure functions of logits (Odena et al. 2016, and the seeds' Keras losses).

D minimises BCE(source) + CE(class) on real and on generated images; G minimises the non-saturating
BCE(source -> real) + CE(class) on its own images. Sigmoid and softmax are applied here, from logits,
never inside the models.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from acgan.models.networks import DiscriminatorOutput


class LossTerms(NamedTuple):
    """The two parts of one AC-GAN loss, each a scalar tensor."""

    source: torch.Tensor  # binary cross-entropy of the real/fake logit
    klass: torch.Tensor  # cross-entropy of the class logits (0 when the class term is disabled)

    @property
    def total(self) -> torch.Tensor:
        return self.source + self.klass


def source_loss(adv_logits: torch.Tensor, is_real: bool) -> torch.Tensor:
    """Mean binary cross-entropy of (B,) logits against an all-real (1) or all-fake (0) target."""
    adv_logits = adv_logits.float()  # fp32 loss even when the networks ran under bf16 autocast
    target = torch.ones_like(adv_logits) if is_real else torch.zeros_like(adv_logits)
    return F.binary_cross_entropy_with_logits(adv_logits, target)


def class_loss(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (B, K) logits against (B,) int64 labels (softmax applied here)."""
    return F.cross_entropy(class_logits.float(), labels)


def discriminator_loss(
    output: DiscriminatorOutput, labels: torch.Tensor, is_real: bool, use_class_loss: bool = True
) -> LossTerms:
    """D's loss on one half batch: real images (source target 1) or generated ones (target 0).

    `use_class_loss=False` drops the class term, the Keras example's option of training the auxiliary
    classifier on real images only.
    """
    klass = class_loss(output.class_logits, labels) if use_class_loss else output.class_logits.new_zeros(())
    return LossTerms(source_loss(output.adv_logits, is_real), klass)


def generator_loss(output: DiscriminatorOutput, labels: torch.Tensor) -> LossTerms:
    """G's non-saturating loss: D should call its images real and of the requested class."""
    return LossTerms(source_loss(output.adv_logits, is_real=True), class_loss(output.class_logits, labels))


def source_accuracy(adv_logits: torch.Tensor, is_real: bool) -> torch.Tensor:
    """Fraction of (B,) logits on the correct side of 0, as a scalar tensor."""
    return ((adv_logits > 0) == is_real).float().mean()


def class_accuracy(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of (B, K) logits whose argmax equals the (B,) label, as a scalar tensor."""
    return (class_logits.argmax(dim=1) == labels).float().mean()
