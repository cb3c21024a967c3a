"""The AC-GAN paper's CIFAR-10 model: Odena, Olah and Shlens 2016 (arXiv 1610.09585), Appendix A, Table 1.

Generator, as the table lists it: a 110-d input (100-d noise and the class one-hot, concatenated);
Linear to 384 feature maps with ReLU; three 5x5 stride-2 transposed convolutions to 192 and 96 feature
maps (BatchNorm, ReLU) and then the image's channels (no BatchNorm, tanh). Discriminator: six 3x3
convolutions with 16, 32, 64, 128, 256, 512 feature maps and strides 2, 1, 2, 1, 2, 1, BatchNorm on all
but the first, dropout 0.5 and LeakyReLU(0.2) after each; a Linear layer to 11 outputs (here the 1-output
source head and the K-output class head, the table's "soft-sigmoid"). Weights from N(0, 0.02); Adam,
learning rate 2e-4, beta1 0.5; batch size 100.

Adaptation to 32x32: the table's Linear outputs 384 values, which three stride-2 layers would grow to an
8x8 image only; to reach 32x32 the Linear outputs a 4x4 map of 384 channels (resolution / 8 on a side),
as the paper's own ImageNet model does with its 768 maps. Each transposed convolution pads 2 and adds
one output row and column so it exactly doubles the side. The D's "same" padding is 1 pixel. Batch size
100 follows acgan's convention: D sees 50 real and 50 generated images per update, G 100 (pass
`--batch-size 200` for 100 real images per D update). The preset works at any resolution divisible by 8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from acgan.models.layers import Dropout, Reshape, init_weights
from acgan.models.networks import Discriminator, Generator, ModelConfig

LEARNING_RATE = 2e-4
BATCH_SIZE = 100
LINEAR_MAPS = 384
G_MAPS = (192, 96)
D_MAPS = (16, 32, 64, 128, 256, 512)
D_STRIDES = (2, 1, 2, 1, 2, 1)


class OneHotConcat(nn.Module):
    """[z, one_hot(y)]: the paper's 110-d generator input, shape (B, z_dim + K)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)  # (B, z_dim + K)


def _base(config: ModelConfig) -> int:
    if config.resolution % 8 or config.resolution < 8:
        raise ValueError(
            f"preset 'odena-cifar10' needs a resolution divisible by 8 (three stride-2 layers), got "
            f"{config.resolution}; choose one with --resolution (e.g. 32)"
        )
    return config.resolution // 8


def paper_generator(config: ModelConfig) -> Generator:
    base = _base(config)
    layers: list[nn.Module] = [
        init_weights(nn.Linear(config.z_dim + config.num_classes, LINEAR_MAPS * base * base), "normal_002"),
        nn.ReLU(), Reshape(LINEAR_MAPS, base, base),
    ]  # fmt: skip
    in_ch = LINEAR_MAPS
    for out_ch in G_MAPS:
        layers += [init_weights(nn.ConvTranspose2d(in_ch, out_ch, 5, stride=2, padding=2, output_padding=1),
                                "normal_002"), nn.BatchNorm2d(out_ch), nn.ReLU()]  # fmt: skip
        in_ch = out_ch
    layers += [init_weights(nn.ConvTranspose2d(in_ch, config.channels, 5, stride=2, padding=2, output_padding=1),
                            "normal_002"), nn.Tanh()]  # fmt: skip
    return Generator(config, OneHotConcat(config.num_classes), nn.Sequential(*layers))


def paper_discriminator(config: ModelConfig) -> Discriminator:
    side = _base(config)
    layers: list[nn.Module] = []
    in_ch = config.channels
    for i, (out_ch, stride) in enumerate(zip(D_MAPS, D_STRIDES, strict=True)):
        layers.append(init_weights(nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1), "normal_002"))
        if i > 0:
            layers.append(nn.BatchNorm2d(out_ch))
        layers += [nn.LeakyReLU(0.2), Dropout(0.5)]
        in_ch = out_ch
    layers.append(nn.Flatten())
    discriminator = Discriminator(config, nn.Sequential(*layers), D_MAPS[-1] * side * side)
    for head in discriminator.linear_heads():
        init_weights(head, "normal_002")
    return discriminator
