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
