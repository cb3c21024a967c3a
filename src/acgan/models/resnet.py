"""The `resnet` preset: residual networks for class-conditional colour images, as SNGAN and BigGAN build them.

Generator (Miyato et al. 2018, SNGAN, appendix B; Brock et al. 2019, BigGAN): z -> Linear -> (c_S, b, b), then S
residual up-blocks, each BN -> ReLU -> 2x nearest upsample + 3x3 conv -> BN -> ReLU -> 3x3 conv, plus a shortcut
(1x1 conv, then the 2x upsample), then BN -> ReLU -> 3x3 conv -> tanh. The label enters every BatchNorm as a
per-class gain and bias from one shared class embedding (class-conditional BatchNorm, `--class-input cbn`, the
default), or concatenated to z (`--class-input concat`, with plain BatchNorm).
Discriminator (SNGAN's): an optimised first block (3x3 conv -> ReLU -> 3x3 conv -> 2x2 average pool, shortcut
pool -> 1x1 conv), S - 1 more down-blocks (ReLU -> 3x3 conv -> ReLU -> 3x3 conv -> pool, shortcut 1x1 conv -> pool),
one block at the last resolution without pooling, then ReLU and a sum over positions: the features the heads read.
Spectral normalisation on every layer of D by default; `--mbstd` adds the minibatch standard deviation before the
last block. Depth from the resolution (stage_plan: 3 up-blocks at 32 px, 4 at 64, 5 at 128), channels from
`--width` w: G has min(2^s, 8) w channels s stages from the image, D w, 2w, 4w, ... up to 8w.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from acgan.models.dcgan import stage_channels, stage_plan
from acgan.models.layers import ConditionalBatchNorm2d, MinibatchStd, NearestUpsampleConv2d, Reshape, init_weights
from acgan.models.networks import ConcatEmbedding, Discriminator, Generator, LatentStem, ModelConfig

WIDTH = 32  # fits a 20-minute CPU budget at 32 px; SNGAN's CIFAR-10 networks use 128-256 channels
CONDITION_DIM = 64  # the shared class embedding's size (BigGAN: 128)
LEARNING_RATE = 2e-4
OBJECTIVE = "hinge+proj"


def _norm(channels: int, config: ModelConfig) -> nn.Module:
    return ConditionalBatchNorm2d(channels, CONDITION_DIM) if config.class_input == "cbn" else nn.BatchNorm2d(channels)


class UpBlock(nn.Module):
    """A residual 2x up-block of G: (B, C_in, H, W) and the condition (B, E) -> (B, C_out, 2H, 2W)."""

    takes_condition = True

    def __init__(self, in_channels: int, out_channels: int, config: ModelConfig) -> None:
        super().__init__()
        self.norm1, self.norm2 = _norm(in_channels, config), _norm(out_channels, config)
        self.conv1 = init_weights(NearestUpsampleConv2d(in_channels, out_channels), "glorot_uniform")
        self.conv2 = init_weights(nn.Conv2d(out_channels, out_channels, 3, padding=1), "glorot_uniform")
        self.shortcut = init_weights(nn.Conv2d(in_channels, out_channels, 1), "glorot_uniform")

    def _normed(self, norm: nn.Module, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return norm(x, condition) if isinstance(norm, ConditionalBatchNorm2d) else norm(x)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(self._normed(self.norm1, x, condition)))  # (B, C_out, 2H, 2W)
        h = self.conv2(F.relu(self._normed(self.norm2, h, condition)))
        skip = F.interpolate(self.shortcut(x), scale_factor=2, mode="nearest")  # 1x1 conv commutes with upsampling
        return h + skip


class OutputBlock(nn.Module):
    """BN -> ReLU -> 3x3 conv -> tanh: (B, w, H, W) -> (B, C, H, W) in [-1, 1]."""

    takes_condition = True

    def __init__(self, width: int, config: ModelConfig) -> None:
        super().__init__()
        self.norm = _norm(width, config)
        self.conv = init_weights(nn.Conv2d(width, config.channels, 3, padding=1), "glorot_uniform")

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = self.norm(x, condition) if isinstance(self.norm, ConditionalBatchNorm2d) else self.norm(x)
        return torch.tanh(self.conv(F.relu(h)))


def resnet_generator(config: ModelConfig) -> Generator:
    """See the module docstring."""
    base, stages = stage_plan(config.resolution)
    w = config.width or WIDTH
    top = stage_channels(w, stages)
    cbn = config.class_input == "cbn"
    stem: nn.Module = LatentStem() if cbn else ConcatEmbedding(init_weights(nn.Embedding(config.num_classes,
                                                                                         CONDITION_DIM), "normal_002"))  # fmt: skip
    inputs = config.z_dim + (0 if cbn else CONDITION_DIM)
    layers: list[nn.Module] = [init_weights(nn.Linear(inputs, top * base * base), "glorot_uniform"),
                               Reshape(top, base, base)]  # fmt: skip
    for level in range(stages - 1, -1, -1):
        layers.append(UpBlock(stage_channels(w, level + 1), stage_channels(w, level), config))
    layers.append(OutputBlock(w, config))
    condition = nn.Embedding(config.num_classes, CONDITION_DIM) if cbn else None  # BigGAN's shared embedding
    return Generator(config, stem, nn.Sequential(*layers), condition)


class DownBlock(nn.Module):
    """A residual block of D: (B, C_in, H, W) -> (B, C_out, H/2, W/2) (or H, W without `down`); `first`: SNGAN's
    optimised block (no ReLU before the first conv; the shortcut pools before its 1x1 conv)."""

    def __init__(self, in_channels: int, out_channels: int, down: bool, first: bool = False) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = init_weights(nn.Conv2d(in_channels, out_channels, 3, padding=1), "glorot_uniform")
        self.conv2 = init_weights(nn.Conv2d(out_channels, out_channels, 3, padding=1), "glorot_uniform")
        learned = in_channels != out_channels or down
        self.shortcut = init_weights(nn.Conv2d(in_channels, out_channels, 1), "glorot_uniform") if learned else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = self.conv2(F.relu(h))
        if self.down:
            h = F.avg_pool2d(h, 2)
        skip = x
        if self.first:  # pool, then 1x1 conv
            skip = self.shortcut(F.avg_pool2d(x, 2)) if self.shortcut is not None else x
        elif self.shortcut is not None:
            skip = self.shortcut(x)
            skip = F.avg_pool2d(skip, 2) if self.down else skip
        return h + skip


class SumPool(nn.Module):
    """ReLU, then the sum over positions: (B, C, H, W) -> (B, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).sum(dim=(2, 3))


def resnet_discriminator(config: ModelConfig) -> Discriminator:
    """See the module docstring."""
    _, stages = stage_plan(config.resolution)
    w = config.width or WIDTH
    layers: list[nn.Module] = [DownBlock(config.channels, w, down=True, first=True)]
    for level in range(1, stages):
        layers.append(DownBlock(stage_channels(w, level - 1), stage_channels(w, level), down=True))
    top = stage_channels(w, stages - 1)
    if config.mbstd:
        layers.append(MinibatchStd())
    layers += [DownBlock(top + int(config.mbstd), top, down=False), SumPool()]
    discriminator = Discriminator(config, nn.Sequential(*layers), top)
    for head in discriminator.linear_heads():
        init_weights(head, "glorot_uniform")
    return discriminator
