"""Zero-centred gradient penalties on D (R1 on real images, R2 on generated ones), applied lazily.

R1 (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?", eq. 9):
    R1 = gamma / 2 * E_{x ~ p_data} ||grad_x D(x)||^2;  R2 is the same on x ~ p_G (eq. 10).
R3GAN (Huang et al. 2024) applies both with the relativistic pairing loss. StyleGAN2 (Karras et al. 2020, appendix
B "lazy regularization") computes a penalty only every `interval` steps, multiplied by `interval` so its
expected strength is unchanged, and scales D's Adam learning rate by c = interval / (interval + 1) and its betas to
beta ** c, so the optimizer's step sizes and memory account for the extra updates. Here D(x) is the logit D's
objective judges with (with a projection head, the class-conditional one); the gradient is taken with respect
to the images before augmentation, through the differentiable augmentation, as StyleGAN2-ADA does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from acgan.config import TrainConfig

KINDS = {"r1": True, "r2": False}  # penalty name -> on real images (else on generated ones)


@dataclass(frozen=True)
class Regulariser:
    """A gradient penalty on D: `kind` r1 (real images) or r2 (generated), weight `gamma`, every `interval` steps."""

    kind: str
    gamma: float
    interval: int = 1

    @property
    def on_real(self) -> bool:
        return KINDS[self.kind]


def gradient_penalty(logits: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """E ||grad_x D(x)||^2 over the batch, from D's logits (B,) and the images (B, C, H, W) they were computed from
    (requires_grad); differentiable (create_graph), so D can be updated on it. A scalar, float32."""
    (gradient,) = torch.autograd.grad(logits.float().sum(), images, create_graph=True)  # (B, C, H, W)
    return gradient.float().square().sum(dim=(1, 2, 3)).mean()


def lazy_ratio(regularisers: tuple[Regulariser, ...]) -> float:
    """StyleGAN2's c = interval / (interval + 1) for D's Adam when its penalties run every `interval` > 1 steps (one
    interval for all of them); 1 when none is lazy."""
    intervals = {reg.interval for reg in regularisers}
    if not intervals or intervals == {1}:
        return 1.0
    (interval,) = intervals
    return interval / (interval + 1)


def lazy_adam(lr: float, betas: tuple[float, float], ratio: float) -> tuple[float, tuple[float, float]]:
    """Adam's learning rate and betas for an optimizer that also takes lazy regularisation steps (see module)."""
    return lr * ratio, (betas[0] ** ratio, betas[1] ** ratio)


def regularisers_of(config: TrainConfig) -> tuple[Regulariser, ...]:
    """The penalties a configuration asks for (a gamma of 0 is off)."""
    return tuple(Regulariser(kind, getattr(config, kind), config.reg_every) for kind in KINDS if getattr(config, kind))
