"""Differentiable augmentations of everything D sees: DiffAugment (Zhao et al. 2020, arXiv 2006.10738) and ADA
(Karras et al. 2020, arXiv 2006.06676).

An `Augmentation` is what D sees of a batch (`__call__(images, rng)`), fed the step's statistics afterwards
(`observe`), with state of its own that a checkpoint saves (`state_dict` / `load_state_dict`): DiffAugment has
none; ADA keeps its probability p, adjusted from how confident D is on real images.

DiffAugment:

The same kind of random transformation is applied to real and generated images, in D's updates and in
G's, so D never sees un-augmented images and G's gradient flows through the augmentation. Random draws
come from the caller's seeded generator, so runs stay reproducible.

Policies (comma-separated): translation (shift by up to 1/8 of the side, zero-filled), cutout (a square
of half the side zeroed at a random place), color (brightness +U(-0.5, 0.5), saturation xU(0, 2),
contrast xU(0.5, 1.5)); color needs colour images. Images are (B, C, H, W) in [-1, 1]; zero is the value
the paper fills with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

POLICIES = ("translation", "cutout", "color")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(text: str) -> tuple[str, ...]:
    """'translation,cutout' -> ('translation', 'cutout'); '' or 'none' -> (); ValueError on unknown names."""
    if text.strip() in ("", "none"):
        return ()
    parts = [part.strip() for part in text.split(",")]
    if "" in parts:
        raise ValueError(f"DiffAugment policy '{text}' has an empty name (two commas, or one at an end)")
    names = tuple(part for part in parts if part != "none")
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {', '.join(unknown)} (known: {', '.join(POLICIES)})")
    if len(set(names)) != len(names):
        raise ValueError(f"DiffAugment policy '{text}' names a transformation twice")
    return names


def diff_augment(images: torch.Tensor, policy: tuple[str, ...], rng: torch.Generator) -> torch.Tensor:
    """Apply the policy's transformations in order to (B, C, H, W) images; differentiable in `images`."""
    for name in policy:
        images = _TRANSFORMS[name](images, rng)
    return images


def _uniform(shape: tuple[int, ...], rng: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(shape, generator=rng, device=like.device, dtype=torch.float32).to(like.dtype)


def color(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Random brightness, saturation and contrast per image (DiffAugment's rand_brightness/saturation/contrast)."""
    b = images.shape[0]
    images = images + (_uniform((b, 1, 1, 1), rng, images) - 0.5)  # brightness
    mean = images.mean(dim=1, keepdim=True)  # (B, 1, H, W) grey level
    images = (images - mean) * (_uniform((b, 1, 1, 1), rng, images) * 2) + mean  # saturation
    mean = images.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return (images - mean) * (_uniform((b, 1, 1, 1), rng, images) + 0.5) + mean  # contrast


def translation(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Shift each image by an integer offset in [-H/8, H/8] x [-W/8, W/8]; uncovered pixels become 0."""
    b, _, h, w = images.shape
    max_y, max_x = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    shift_y = torch.randint(-max_y, max_y + 1, (b, 1, 1), generator=rng, device=images.device)  # (B, 1, 1)
    shift_x = torch.randint(-max_x, max_x + 1, (b, 1, 1), generator=rng, device=images.device)
    rows = torch.arange(h, device=images.device)[None, :, None] - shift_y  # (B, H, 1): source row of each pixel
    cols = torch.arange(w, device=images.device)[None, None, :] - shift_x  # (B, 1, W)
    inside = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).unsqueeze(1)  # (B, 1, H, W)
    index = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).flatten(1)  # (B, H * W)
    flat = images.flatten(2)  # (B, C, H * W)
    moved = flat.gather(2, index[:, None, :].expand(-1, images.shape[1], -1)).view_as(images)
    return moved * inside.to(images.dtype)


def cutout(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Zero a (H/2, W/2) square per image, centred anywhere in the image (clipped at the borders)."""
    b, _, h, w = images.shape
    size_y, size_x = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    centre_y = torch.randint(0, h + (1 - size_y % 2), (b, 1, 1), generator=rng, device=images.device)
    centre_x = torch.randint(0, w + (1 - size_x % 2), (b, 1, 1), generator=rng, device=images.device)
    top = torch.arange(h, device=images.device)[None, :, None] - centre_y + size_y // 2  # (B, H, 1)
    left = torch.arange(w, device=images.device)[None, None, :] - centre_x + size_x // 2  # (B, 1, W)
    inside = (top >= 0) & (top < size_y) & (left >= 0) & (left < size_x)  # (B, H, W): in the square
    return images * (~inside).unsqueeze(1).to(images.dtype)


_TRANSFORMS = {"translation": translation, "cutout": cutout, "color": color}


class Augmentation:
    """No augmentation: D sees the images as they are. The base of every augmentation (see the module docstring)."""

    name = "none"

    def __call__(self, images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """(B, C, H, W) images in [-1, 1] -> what D sees of them, differentiable in `images`."""
        return images

    def observe(self, stats: dict[str, torch.Tensor]) -> None:
        """The statistics of a step just taken (detached, on the device)."""

    def statistics(self) -> dict[str, torch.Tensor]:
        """Named scalars to log with the step's statistics."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class DiffAugment(Augmentation):
    """DiffAugment's policy (parse_policy) applied to every image D sees."""

    name = "diffaugment"

    def __init__(self, policy: tuple[str, ...]) -> None:
        self.policy = policy

    def __call__(self, images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        return diff_augment(images, self.policy, rng)


ADA_TARGET = 0.6  # the paper's r_t target: E[sign(D(real))] above it means D is overfitting
ADA_INTERVAL = 4  # steps between adjustments of p (the paper's N = 4 minibatches)
ADA_KIMG = 100  # thousand images for p to go from 0 to 1 (the paper's 500, for runs of millions of images)
TRANSLATION_MAX = 0.125  # ADA's integer translation: up to an eighth of the side
BRIGHTNESS_STD, CONTRAST_STD, SATURATION_STD = 0.2, 0.5, 1.0  # the paper's, in log2 units for the last two
CUTOUT_SIZE = 0.5


class AdaptiveAugment(Augmentation):
    """ADA (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", arXiv 2006.06676).

    Each transformation of the pipeline (x-flip, 90-degree rotation, integer translation, brightness, contrast,
    saturation, cutout) is applied to each image with probability p. Every ADA_INTERVAL steps, with
    r_t = E[sign(D(x_real))] over those steps (section 3, eq. 1's overfitting heuristic),
    p <- clamp(p + sign(r_t - target) * (images in those steps) / (kimg * 1000), 0, 1). p and the running sums are
    tensors on the training device (no host sync) and are checkpointed, so a resumed run continues exactly.
    """

    name = "ada"

    def __init__(self, batch_size: int, target: float = ADA_TARGET, kimg: float = ADA_KIMG,
                 interval: int = ADA_INTERVAL, device: torch.device | str = "cpu",
                 reduce: Callable[[torch.Tensor], torch.Tensor] = lambda total: total) -> None:  # fmt: skip
        """`batch_size`: images per step (over all processes); `reduce`: the mean over processes of a tensor."""
        self.target, self.interval, self.reduce = target, interval, reduce
        self.step_size = batch_size * interval / (kimg * 1000)  # p's change per adjustment
        self.p = torch.zeros((), device=device)
        self.sign_sum = torch.zeros((), device=device)
        self.seen = 0

    def __call__(self, images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        return ada_pipeline(images, self.p, rng)

    def observe(self, stats: dict[str, torch.Tensor]) -> None:
        if "d_real_sign" not in stats:
            return
        self.sign_sum = self.sign_sum + stats["d_real_sign"].float()
        self.seen += 1
        if self.seen < self.interval:
            return
        r_t = self.reduce(self.sign_sum) / self.seen  # E[sign(D(x_real))] over these steps and every process
        self.p = (self.p + torch.sign(r_t - self.target) * self.step_size).clamp(0.0, 1.0)
        self.sign_sum, self.seen = torch.zeros_like(self.sign_sum), 0

    def statistics(self) -> dict[str, torch.Tensor]:
        return {"ada_p": self.p.detach().clone()}

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p.clone(), "sign_sum": self.sign_sum.clone(), "seen": self.seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p, self.sign_sum = state["p"].to(self.p.device), state["sign_sum"].to(self.p.device)
        self.seen = int(state["seen"])


def ada_pipeline(images: torch.Tensor, p: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """ADA's transformations of (B, C, H, W) images in [-1, 1], each applied per image with probability p (a 0-d
    tensor); differentiable in `images`. Colour transformations other than brightness and contrast need C = 3."""
    b, c, h, w = images.shape
    draw = lambda *shape: torch.rand((b, *shape), generator=rng, device=images.device)  # noqa: E731
    chosen = lambda: draw(1, 1, 1) < p  # noqa: E731  (B, 1, 1, 1): True where a transformation applies
    normal = lambda: torch.randn((b, 1, 1, 1), generator=rng, device=images.device)  # noqa: E731
    images = torch.where(chosen(), images.flip(3), images)  # x-flip
    if h == w:  # rotation by 90, 180 or 270 degrees
        turns = (draw(1, 1, 1) * 3).floor() + 1  # (B, 1, 1, 1) in {1, 2, 3}
        rotated = torch.where(turns == 1, torch.rot90(images, 1, dims=(2, 3)),
                              torch.where(turns == 2, torch.rot90(images, 2, dims=(2, 3)),
                                          torch.rot90(images, 3, dims=(2, 3))))  # fmt: skip
        images = torch.where(chosen(), rotated, images)
    images = torch.where(chosen(), _translate_reflect(images, draw(2) * 2 - 1), images)
    images = torch.where(chosen(), images + normal() * BRIGHTNESS_STD, images)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    images = torch.where(chosen(), (images - mean) * torch.exp2(normal() * CONTRAST_STD) + mean, images)
    if c == 3:
        grey = images.mean(dim=1, keepdim=True)
        images = torch.where(chosen(), (images - grey) * torch.exp2(normal() * SATURATION_STD) + grey, images)
    return torch.where(chosen() & _cutout_mask(draw(2), h, w), torch.zeros_like(images), images)


def _translate_reflect(images: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
    """Shift each image by round(fraction * TRANSLATION_MAX * side) pixels ((B, 2) fractions in [-1, 1], y then x),
    filling from the mirrored image (so no empty border tells D it was shifted)."""
    _, c, h, w = images.shape
    shift = (fractions * TRANSLATION_MAX * torch.tensor([h, w], device=images.device)).round().long()  # (B, 2)
    rows = _reflect(torch.arange(h, device=images.device)[None, :] - shift[:, :1], h)  # (B, H)
    cols = _reflect(torch.arange(w, device=images.device)[None, :] - shift[:, 1:], w)  # (B, W)
    index = (rows[:, :, None] * w + cols[:, None, :]).flatten(1)  # (B, H * W)
    return images.flatten(2).gather(2, index[:, None, :].expand(-1, c, -1)).view_as(images)


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indices outside 0..size-1 mirrored back in (a shift of at most size - 1)."""
    index = index.abs()
    return torch.where(index >= size, 2 * (size - 1) - index, index)


def _cutout_mask(centres: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, 1, H, W) True inside a square of CUTOUT_SIZE of the side centred at (B, 2) fractional positions."""
    rows = (torch.arange(h, device=centres.device) + 0.5) / h  # (H,)
    cols = (torch.arange(w, device=centres.device) + 0.5) / w
    inside_y = (rows[None, :] - centres[:, :1]).abs() < CUTOUT_SIZE / 2  # (B, H)
    inside_x = (cols[None, :] - centres[:, 1:]).abs() < CUTOUT_SIZE / 2  # (B, W)
    return inside_y[:, None, :, None] & inside_x[:, None, None, :]
