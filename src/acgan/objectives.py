"""Training objectives, registered by name: each owns D's and G's losses and names the D heads it needs.

An objective turns discriminator outputs into a scalar loss and named statistics. D's loss is computed per
half batch (real or generated images), so the seeds' three-update scheme and a joint D update can both use
it; the training step adds the "d_real_" / "d_fake_" / "g_" prefixes to the statistics' names.

    objective   D heads          D's loss (real | generated)                 G's loss
    acgan       class            BCE + CE | BCE + CE                         BCE(real) + CE
    keras       class            BCE(0.95) + CE | BCE                        BCE(0.95) + CE
    hinge       class            hinge + CE | hinge                          -D + CE
    tac         class, twin      BCE + CE | BCE + CE_twin                    BCE(real) + CE - CE_twin
    adc         adc              BCE + CE_2K(y) | BCE + CE_2K(K + y)         BCE(real) + CE_2K(y) - CE_2K(K + y)
    reacgan     embed            BCE + D2D-CE | BCE                          BCE(real) + D2D-CE

Every class term is multiplied by `class_weight` (lambda in the papers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from acgan.errors import AcganError
from acgan.losses import (
    class_accuracy,
    class_loss,
    data_to_data_cross_entropy,
    hinge_discriminator,
    hinge_generator,
    paired_with,
    relativistic_pairing,
    source_accuracy,
    source_bce,
    source_loss,
)
from acgan.models.networks import DiscriminatorOutput

Stats = dict[str, torch.Tensor]  # named scalar tensors, detached


def prefixed(prefix: str, stats: Stats) -> Stats:
    return {f"{prefix}{name}": value for name, value in stats.items()}


@dataclass(frozen=True)
class Objective:
    """Base: the paper's AC-GAN (Odena et al. 2016, arXiv 1610.09585, eqs. 2-3).

    L_S = E[log P(S=real | X_real)] + E[log P(S=fake | X_fake)], L_C = E[log P(C=c | X_real)] + E[log P(C=c | X_fake)];
    D maximises L_S + L_C, G maximises L_C - L_S (here in the non-saturating form the seeds use: G minimises
    BCE(D(G(z, c)) -> real) + CE). With `class_on_fake=False`, D's classifier learns from real images only.
    """

    class_weight: float = 1.0
    class_on_fake: bool = True

    name: ClassVar[str] = "acgan"
    heads: ClassVar[tuple[str, ...]] = ("class",)
    class_on_fake_default: ClassVar[bool | None] = True  # None: the objective fixes where its class terms apply
    description: ClassVar[str] = "AC-GAN (Odena et al. 2016): BCE + cross-entropy on real and generated images"
    paired: ClassVar[bool] = False  # its adversarial term compares real and generated images (one D update on both)

    def discriminator_losses(self, halves: list[tuple[DiscriminatorOutput, torch.Tensor, bool]]) -> tuple[torch.Tensor, Stats]:  # fmt: skip
        """D's loss on the half batches of one update [(output, (B,) labels, is_real)]: the halves' losses summed;
        statistics prefixed d_real_ / d_fake_."""
        total: torch.Tensor | None = None
        stats: Stats = {}
        for output, labels, is_real in halves:
            loss, terms = self.discriminator_loss(output, labels, is_real)
            total = loss if total is None else total + loss
            stats.update(prefixed("d_real_" if is_real else "d_fake_", terms))
        assert total is not None, "a D update needs at least one half batch"
        return total, stats

    def discriminator_loss(self, output: DiscriminatorOutput, labels: torch.Tensor, is_real: bool) -> tuple[torch.Tensor, Stats]:  # fmt: skip
        """D's loss on a half batch of all-real or all-generated images with their (B,) labels."""
        source = self.source_d(output.adv_logits, is_real)
        stats = {"source": source.detach(), "acc": source_accuracy(output.adv_logits.detach(), is_real),
                 "sign": output.adv_logits.detach().float().sign().mean(),  # ADA's overfitting heuristic r_t
                 "class_acc": class_accuracy(output.class_logits.detach(), labels)}  # fmt: skip
        conditional = self.class_d(output, labels, is_real)
        if conditional is None:
            return source, stats
        klass, terms = conditional
        stats.update(terms)
        return source + self.class_weight * klass, stats

    def generator_loss(self, output: DiscriminatorOutput, labels: torch.Tensor,
                       real: DiscriminatorOutput | None = None) -> tuple[torch.Tensor, Stats]:  # fmt: skip
        """G's loss on D's output for a batch of its images made for (B,) labels (`real`: D's output on real
        images, which only a paired objective reads)."""
        source = self.source_g(output.adv_logits)
        klass, terms = self.class_g(output, labels)
        return source + self.class_weight * klass, {"source": source.detach(), **terms}

    # The parts subclasses change.
    def source_d(self, adv_logits: torch.Tensor, is_real: bool) -> torch.Tensor:
        return source_loss(adv_logits, is_real)

    def source_g(self, adv_logits: torch.Tensor) -> torch.Tensor:
        return source_loss(adv_logits, is_real=True)

    def class_d(self, output: DiscriminatorOutput, labels: torch.Tensor, is_real: bool) -> tuple[torch.Tensor, Stats] | None:  # fmt: skip
        """D's class term for this half batch and its statistics, or None when it has none."""
        if not is_real and not self.class_on_fake:
            return None
        klass = class_loss(output.class_logits, labels)
        return klass, {"class": klass.detach()}

    def class_g(self, output: DiscriminatorOutput, labels: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        klass = class_loss(output.class_logits, labels)
        return klass, {"class": klass.detach()}


@dataclass(frozen=True)
class KerasObjective(Objective):
    """The Keras example's variant (keras/examples/mnist_acgan.py): one-sided soft labels, classifier on real only.

    D's source target is 0.95 for real images (Salimans et al. 2016, section 3.4) and 0 for generated ones;
    D's class loss is computed on real images only (the example weights it 2 on real and 0 on generated
    images of a batch that is half of each, which is the mean over the real half). G aims for 0.95 too.
    """

    class_on_fake: bool = False
    name: ClassVar[str] = "keras"
    class_on_fake_default: ClassVar[bool | None] = None
    description: ClassVar[str] = "the Keras example: soft real label 0.95, D's classifier on real images only"
    soft_real: ClassVar[float] = 0.95

    def source_d(self, adv_logits: torch.Tensor, is_real: bool) -> torch.Tensor:
        return source_bce(adv_logits, self.soft_real if is_real else 0.0)

    def source_g(self, adv_logits: torch.Tensor) -> torch.Tensor:
        return source_bce(adv_logits, self.soft_real)


@dataclass(frozen=True)
class HingeObjective(Objective):
    """ACGAN-Mod (PyTorch-StudioGAN): hinge adversarial loss (Lim & Ye 2017), class loss for D on real images only.

    D: mean relu(1 - D(x_real)) + mean relu(1 + D(G(z, c))) + lambda CE(C(x_real), y);
    G: -mean D(G(z, c)) + lambda CE(C(G(z, c)), c).
    """

    class_on_fake: bool = False
    name: ClassVar[str] = "hinge"
    class_on_fake_default: ClassVar[bool | None] = False
    description: ClassVar[str] = "hinge adversarial loss, D's classifier on real images (ACGAN-Mod)"

    def source_d(self, adv_logits: torch.Tensor, is_real: bool) -> torch.Tensor:
        return hinge_discriminator(adv_logits, is_real)

    def source_g(self, adv_logits: torch.Tensor) -> torch.Tensor:
        return hinge_generator(adv_logits)


@dataclass(frozen=True)
class TwinObjective(Objective):
    """TAC-GAN (Gong et al. 2019, arXiv 1907.02690, section 3.2): a twin classifier C_mi learns generated images.

    D: BCE + lambda [CE(C(x_real), y) + CE(C_mi(G(z, c)), c)];
    G: BCE(-> real) + lambda [CE(C(G(z, c)), c) - CE(C_mi(G(z, c)), c)].
    The subtracted twin term makes G match the class-conditional distributions instead of pushing its
    images away from the class boundaries (the source of AC-GAN's low diversity).
    """

    class_on_fake: bool = False
    name: ClassVar[str] = "tac"
    heads: ClassVar[tuple[str, ...]] = ("class", "twin")
    class_on_fake_default: ClassVar[bool | None] = None
    description: ClassVar[str] = "TAC-GAN (Gong et al. 2019): twin classifier on generated images"

    def class_d(self, output: DiscriminatorOutput, labels: torch.Tensor, is_real: bool) -> tuple[torch.Tensor, Stats]:  # fmt: skip
        if is_real:
            klass = class_loss(output.class_logits, labels)
            return klass, {"class": klass.detach()}
        assert output.twin_logits is not None, "tac needs the discriminator's twin head"
        twin = class_loss(output.twin_logits, labels)
        return twin, {"twin": twin.detach(), "twin_acc": class_accuracy(output.twin_logits.detach(), labels)}

    def class_g(self, output: DiscriminatorOutput, labels: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        assert output.twin_logits is not None, "tac needs the discriminator's twin head"
        klass = class_loss(output.class_logits, labels)
        twin = class_loss(output.twin_logits, labels)
        return klass - twin, {"class": klass.detach(), "twin": twin.detach()}


@dataclass(frozen=True)
class DiscriminativeClassifierObjective(Objective):
    """ADC-GAN (Hou et al. 2022, arXiv 2107.10060): one 2K-way classifier of (class, real or generated).

    D: BCE + lambda [CE(C_d(x_real), y) + CE(C_d(G(z, c)), K + c)];
    G: BCE(-> real) + lambda [CE(C_d(G(z, c)), c) - CE(C_d(G(z, c)), K + c)].
    Because C_d also tells real from generated within each class, G is pulled toward the real class-
    conditional distribution rather than toward easily classified images.
    """

    class_on_fake: bool = True
    name: ClassVar[str] = "adc"
    heads: ClassVar[tuple[str, ...]] = ("adc",)
    class_on_fake_default: ClassVar[bool | None] = None
    description: ClassVar[str] = "ADC-GAN (Hou et al. 2022): 2K-way classifier of class and real/generated"

    def class_d(self, output: DiscriminatorOutput, labels: torch.Tensor, is_real: bool) -> tuple[torch.Tensor, Stats]:  # fmt: skip
        assert output.adc_logits is not None, "adc needs the discriminator's 2K-way head"
        k = output.adc_logits.shape[1] // 2
        target = labels if is_real else labels + k
        klass = class_loss(output.adc_logits, target)
        return klass, {"adc": klass.detach(), "adc_acc": class_accuracy(output.adc_logits.detach(), target)}

    def class_g(self, output: DiscriminatorOutput, labels: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        assert output.adc_logits is not None, "adc needs the discriminator's 2K-way head"
        k = output.adc_logits.shape[1] // 2
        as_real = class_loss(output.adc_logits, labels)
        as_fake = class_loss(output.adc_logits, labels + k)
        return as_real - as_fake, {"class": as_real.detach(), "adc_fake": as_fake.detach()}


@dataclass(frozen=True)
class DataToDataObjective(Objective):
    """ReACGAN (Kang et al. 2021, arXiv 2111.01118): D2D-CE on normalised embeddings and class proxies.

    D: BCE + lambda D2D-CE(real images); G: BCE(-> real) + lambda D2D-CE(its images), with the margin m_p
    and temperature tau of acgan.losses.data_to_data_cross_entropy (paper defaults 0.98 and 0.5).
    """

    class_on_fake: bool = False
    margin: float = 0.98
    temperature: float = 0.5
    name: ClassVar[str] = "reacgan"
    heads: ClassVar[tuple[str, ...]] = ("embed",)
    class_on_fake_default: ClassVar[bool | None] = None
    description: ClassVar[str] = "ReACGAN (Kang et al. 2021): data-to-data cross-entropy on embeddings"

    def _d2d(self, output: DiscriminatorOutput, labels: torch.Tensor) -> torch.Tensor:
        assert output.embedding is not None and output.proxies is not None, "reacgan needs the embed head and labels"
        return data_to_data_cross_entropy(output.embedding, output.proxies, labels, self.margin, self.temperature)

    def class_d(self, output: DiscriminatorOutput, labels: torch.Tensor, is_real: bool) -> tuple[torch.Tensor, Stats] | None:  # fmt: skip
        if not is_real:
            return None
        d2d = self._d2d(output, labels)
        return d2d, {"d2d": d2d.detach()}

    def class_g(self, output: DiscriminatorOutput, labels: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        d2d = self._d2d(output, labels)
        return d2d, {"d2d": d2d.detach()}


class NoClassTerm:
    """No class loss: D is conditioned through its projection head alone (a mixin before an Objective)."""

    class_on_fake: bool = False
    class_on_fake_default: ClassVar[bool | None] = None

    def class_d(self, output: DiscriminatorOutput, labels: torch.Tensor, is_real: bool) -> None:
        return None

    def class_g(self, output: DiscriminatorOutput, labels: torch.Tensor) -> tuple[torch.Tensor, Stats]:
        return output.adv_logits.new_zeros((), dtype=torch.float32), {}


class RelativisticPairing:
    """R3GAN's relativistic pairing loss (Huang et al. 2024, arXiv 2501.05441, eq. 2) as the adversarial term, with
    the class terms of the Objective it is mixed into (a mixin before it):

        D: E[softplus(D(G(z, c)) - D(x))] + lambda L_class;   G: E[softplus(D(x) - D(G(z, c)))] + lambda L_class^G

    with real x and generated G(z, c) paired in order (fewer real images are repeated). It needs a real and a
    generated half batch in one D update (--d-updates joint) and D's output on real images in G's update.
    """

    paired: ClassVar[bool] = True
    class_weight: float
    class_d: Any
    class_g: Any

    def discriminator_losses(self, halves: list[tuple[DiscriminatorOutput, torch.Tensor, bool]]) -> tuple[torch.Tensor, Stats]:  # fmt: skip
        real = [half for half in halves if half[2]]
        fake = [half for half in halves if not half[2]]
        if len(real) != 1 or len(fake) != 1:
            raise AcganError("the relativistic pairing loss compares real and generated images in one D update: "
                             "train it with --d-updates joint")  # fmt: skip
        real_out, fake_out = real[0][0], fake[0][0]
        adversarial = relativistic_pairing(real_out.adv_logits, paired_with(fake_out.adv_logits,
                                                                            len(real_out.adv_logits)))  # fmt: skip
        total, stats = adversarial, {"d_source": adversarial.detach()}
        for output, labels, is_real in (real[0], fake[0]):
            terms = {"acc": source_accuracy(output.adv_logits.detach(), is_real),
                     "sign": output.adv_logits.detach().float().sign().mean(),
                     "class_acc": class_accuracy(output.class_logits.detach(), labels)}  # fmt: skip
            conditional = self.class_d(output, labels, is_real)
            if conditional is not None:
                total = total + self.class_weight * conditional[0]
                terms.update(conditional[1])
            stats.update(prefixed("d_real_" if is_real else "d_fake_", terms))
        return total, stats

    def generator_loss(self, output: DiscriminatorOutput, labels: torch.Tensor,
                       real: DiscriminatorOutput | None = None) -> tuple[torch.Tensor, Stats]:  # fmt: skip
        assert real is not None, "a paired objective's G loss needs D's output on real images"
        partners = paired_with(real.adv_logits.detach(), len(output.adv_logits))
        adversarial = relativistic_pairing(output.adv_logits, partners)
        klass, terms = self.class_g(output, labels)
        return adversarial + self.class_weight * klass, {"source": adversarial.detach(), **terms}


@dataclass(frozen=True)
class HingeProjectionObjective(NoClassTerm, HingeObjective):
    """The projection discriminator (Miyato & Koyama 2018, arXiv 1802.05637, eq. 3) with the hinge loss, as in SNGAN
    and BigGAN: D(x, y) = psi(phi(x)) + embed(y) . phi(x); no class loss (the label enters D's logit)."""

    class_on_fake: bool = False
    name: ClassVar[str] = "hinge+proj"
    heads: ClassVar[tuple[str, ...]] = ("projection",)
    description: ClassVar[str] = "hinge loss, projection discriminator (Miyato & Koyama 2018; SNGAN, BigGAN)"


@dataclass(frozen=True)
class RelativisticProjectionObjective(RelativisticPairing, NoClassTerm, Objective):
    """R3GAN's loss with a projection discriminator (its conditional form)."""

    class_on_fake: bool = False
    name: ClassVar[str] = "rpgan+proj"
    heads: ClassVar[tuple[str, ...]] = ("projection",)
    description: ClassVar[str] = "relativistic pairing (R3GAN, Huang et al. 2024), projection discriminator"


@dataclass(frozen=True)
class RelativisticClassObjective(RelativisticPairing, Objective):
    """R3GAN's loss with AC-GAN's class terms (cross-entropy on real and generated images)."""

    name: ClassVar[str] = "rpgan+ac"
    class_on_fake_default: ClassVar[bool | None] = True
    description: ClassVar[str] = "relativistic pairing (R3GAN) + AC-GAN's cross-entropy"


@dataclass(frozen=True)
class RelativisticDiscriminativeObjective(RelativisticPairing, DiscriminativeClassifierObjective):
    """R3GAN's loss with ADC-GAN's 2K-way classifier."""

    name: ClassVar[str] = "rpgan+adc"
    description: ClassVar[str] = "relativistic pairing (R3GAN) + ADC-GAN's 2K-way classifier"


@dataclass(frozen=True)
class DiscriminativeProjectionObjective(DiscriminativeClassifierObjective):
    """ADC-GAN with a projection head too: the label conditions D's logit as well as its 2K-way classifier."""

    name: ClassVar[str] = "adc+proj"
    heads: ClassVar[tuple[str, ...]] = ("adc", "projection")
    description: ClassVar[str] = "ADC-GAN + projection discriminator"


@dataclass(frozen=True)
class RelativisticDiscriminativeProjectionObjective(RelativisticPairing, DiscriminativeClassifierObjective):
    """R3GAN's loss, ADC-GAN's classifier and a projection head."""

    name: ClassVar[str] = "rpgan+adc+proj"
    heads: ClassVar[tuple[str, ...]] = ("adc", "projection")
    description: ClassVar[str] = "relativistic pairing (R3GAN) + ADC-GAN + projection discriminator"


OBJECTIVES: dict[str, type[Objective]] = {
    cls.name: cls
    for cls in (Objective, KerasObjective, HingeObjective, TwinObjective, DiscriminativeClassifierObjective,
                DataToDataObjective, HingeProjectionObjective, DiscriminativeProjectionObjective,
                RelativisticClassObjective, RelativisticDiscriminativeObjective, RelativisticProjectionObjective,
                RelativisticDiscriminativeProjectionObjective)
}  # fmt: skip
# Combinations that are not offered, and why (asked for by name, they are refused with the reason).
REFUSED = {
    "reacgan+proj": "ReACGAN's class proxies already condition D on the label through its embedding",
    "tac+proj": "TAC-GAN's twin classifier needs D's logit to judge real/generated alone",
    "keras+proj": "keras reproduces the Keras example; use hinge+proj, adc+proj or rpgan+proj",
    "hinge+ac": "hinge is already AC-GAN's class loss with the hinge loss (ACGAN-Mod): use hinge",
    "rpgan": "the relativistic pairing loss alone does not condition on the class: use rpgan+proj, rpgan+ac or "
             "rpgan+adc",
}  # fmt: skip


def objective_class(name: str) -> type[Objective]:
    """The objective registered as `name`; AcganError listing the known names otherwise."""
    if name in REFUSED:
        raise AcganError(f"objective '{name}' is not offered: {REFUSED[name]}")
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise AcganError(f"unknown objective '{name}' (known: {', '.join(OBJECTIVES)})") from None


def build_objective(name: str, class_weight: float, class_on_fake: bool, margin: float | None = None,
                    temperature: float | None = None) -> Objective:  # fmt: skip
    """An objective instance from a resolved configuration's values."""
    cls = objective_class(name)
    if cls is DataToDataObjective:
        defaults = DataToDataObjective
        return DataToDataObjective(class_weight, class_on_fake, margin or defaults.margin,
                                   temperature or defaults.temperature)  # fmt: skip
    return cls(class_weight, class_on_fake)
