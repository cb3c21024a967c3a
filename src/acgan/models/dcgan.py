"""acgan's own default preset: a compact DCGAN-style AC-GAN chosen for speed and quality on a CPU.

Generator: [z, embedding(y)] -> Linear -> (c, b, b) -> S (nearest 2x upsample, 3x3 conv, BatchNorm, ReLU)
stages -> 3x3 conv -> tanh. Each upsample + conv runs as one transposed convolution (NearestUpsampleConv2d:
the same function and parameters, half the arithmetic). Discriminator: S stride-2 4x4 convolutions and a 3x3 one with LeakyReLU(0.2).
The data sets the shape: channels in and out are the data's, and the number of stages S comes from the
resolution (`stage_plan`: 2 at 28 px, 3 at 32, 4 at 64, 5 at 128), channels doubling per stage from the
width w (the `--width` parameter) up to 8w. At 28 px this is exactly the original two-stage network. No BatchNorm (the real and fake half batches of the seeds' update scheme must not see
each other's statistics) and no dropout.

Measured on Fashion-MNIST (train for 4 minutes on the CPU with `max_minutes=4`, then evaluate 5,000
samples with acgan.evaluation): upsample+conv instead of stride-2 4x4 transposed convolutions, and no
dropout in D, raised conditional accuracy from 0.795 to 0.828 and cut intra-class FD from 207 to 165,
despite 30% fewer steps in the same time (1,557 vs 2,200).

Training defaults (the preset's, each measured on MNIST with a 5-minute budget on this project's 2-core
CPU: `python benchmarks/quality.py --dataset mnist --minutes 5 --interval 5 --samples 5000 --set ...`;
results in benchmarks/results/quality-mnist-dcgan-*.json; the first two rows with 10,000 samples):

    change, cumulative                steps  cond. acc.  intra-FD   FD
    seeds' training (fp32, lr 2e-4)   1,707    0.869      182.3    117.9
    + bf16 autocast                   3,472    0.917      162.6    111.9
    + EMA of G, decay 0.999           3,822    0.951      101.8     64.1
    + Adam lr 5e-4 (G and D)          3,652    0.992       40.3     23.7
    + Adam lr 1e-3  (chosen)          3,805    0.999       22.5      9.2
      Adam lr 2e-3                    3,876    1.000       22.5      9.1
      lr 1e-3, D's classifier trained
      on real images only             3,974    1.000       25.4     10.9

lr 2e-3 gained nothing over 1e-3, so the smaller one is the default; the Keras example's trick of training
D's classifier on real images only did not help either (`d_class_loss_on_fake` stays True). Real MNIST test images score 0.994
and 3.2 (intra-FD with 5,000 samples) on the same measures.

Objective (the README's "Objectives compared" table, `make bench-quality`, 10,000 samples): screened on MNIST
for 5 minutes (acgan, keras, hinge with and without spectral norm, tac, adc, reacgan, DiffAugment and spectral
norm variants, width 48), then tac and adc with two seeds on MNIST and Fashion-MNIST. ADC-GAN is the default:

    objective (mean of 2 seeds)   MNIST 5 min: acc. / intra-FD / recall   Fashion 10 min: acc. / intra-FD / recall
    acgan (the old default)       0.9995 / 18.3 / 0.744 (1 seed)          0.989 / 26.6 / 0.598 (1 seed)
    tac                           0.987 / 13.8 / 0.840                     0.884 / 16.2 / 0.747
    adc (chosen)                  0.996 / 14.2 / 0.845                     0.916 /  8.9 / 0.802
    real test data                0.9945 / 2.4 / 0.939                     0.919 /  0.9 / 0.941

On Fashion-MNIST TAC-GAN lost class accuracy (0.88 against 0.92 for real test images) while ADC-GAN kept it;
DiffAugment, spectral norm and width 48 did not help within these budgets (width 48 halves the steps).
"""

from __future__ import annotations

import torch
from torch import nn

from acgan.models.layers import (
    ConditionalBatchNorm2d,
    MinibatchStd,
    NearestUpsampleConv2d,
    Reshape,
    ToMemoryFormat,
    init_weights,
)
from acgan.models.networks import ConcatEmbedding, Discriminator, Generator, LatentStem, ModelConfig

EMA_DECAY = 0.999  # sampling from a moving average of G: see the module docstring
OBJECTIVE = "adc"  # chosen by the objective comparison: see the module docstring and the README
D_UPDATES = "alternating"
SPECTRAL_NORM = False
DIFFAUGMENT = ""
WIDTH = 32
LEARNING_RATE = 1e-3  # Adam's, for G and D: see the module docstring
COLOUR_LR_DECAY = 0.1  # dcgan-cbn's rates end at a tenth of it, along a cosine over the run: chosen on the CIFAR-10
# subset at 20 minutes (README, colour candidates); the grey default keeps a constant rate
ORIGINAL_WIDTH = 32  # base channel count of checkpoints saved before width was a parameter (width 0)
EMBED_DIM = 32


def stage_plan(resolution: int) -> tuple[int, int]:
    """(base side, number of 2x stages): halve the resolution while it stays even and the base at least 4.

    28 -> (7, 2), 32 -> (4, 3), 64 -> (4, 4), 128 -> (4, 5), 48 -> (6, 3). ValueError below two stages.
    """
    base, stages = resolution, 0
    while base % 2 == 0 and base // 2 >= 4:
        base, stages = base // 2, stages + 1
    if stages < 2:
        raise ValueError(
            f"preset 'dcgan' needs a resolution of base x 2^n with n >= 2 and a base of 4 to 7 "
            f"(28, 32, 48, 64, 128, ...), got {resolution}; choose one with --resolution"
        )
    return base, stages


def stage_channels(width: int, level: int) -> int:
    """Channels at `level` 2x stages from the image (level 0: full resolution): width * 2^level, at most 8x width."""
    return width * min(2**level, 8)


def dcgan_generator(config: ModelConfig) -> Generator:
    """[z, embedding(y)] -> Linear -> (c_S, b, b) -> S x (upsample 2x, 3x3 conv, BatchNorm, ReLU) -> 3x3 conv, tanh.

    c_S is `stage_channels(width, S)`; at 28 px (S = 2) this is the original 4w -> 2w -> w network.
    """
    base, stages = stage_plan(config.resolution)
    w = config.width or ORIGINAL_WIDTH
    top = stage_channels(w, stages)
    cbn = config.class_input == "cbn"  # the label in every BatchNorm (one shared embedding) instead of beside z

    def norm(channels: int) -> nn.Module:
        return ConditionalBatchNorm2d(channels, EMBED_DIM) if cbn else nn.BatchNorm2d(channels)

    stem = LatentStem() if cbn else ConcatEmbedding(init_weights(nn.Embedding(config.num_classes, EMBED_DIM),
                                                                 "normal_002"))  # fmt: skip
    inputs = config.z_dim + (0 if cbn else EMBED_DIM)
    layers: list[nn.Module] = [
        init_weights(nn.Linear(inputs, top * base * base, bias=False), "normal_002"),
        Reshape(top, base, base), norm(top), nn.ReLU(inplace=True),
    ]  # fmt: skip
    for level in range(stages - 1, -1, -1):
        in_ch, out_ch = stage_channels(w, level + 1), stage_channels(w, level)
        # Upsample 2x + 3x3 conv computed as one transposed convolution; the Identity keeps the parameter names
        # (trunk.N.weight) of checkpoints written when they were two layers.
        layers += [nn.Identity(), init_weights(NearestUpsampleConv2d(in_ch, out_ch, bias=False), "normal_002"),
                   norm(out_ch), nn.ReLU(inplace=True)]  # fmt: skip
    layers += [init_weights(nn.Conv2d(w, config.channels, 3, padding=1), "normal_002"), nn.Tanh()]
    condition = init_weights(nn.Embedding(config.num_classes, EMBED_DIM), "normal_002") if cbn else None
    return Generator(config, stem, nn.Sequential(*layers), condition)


def dcgan_discriminator(config: ModelConfig) -> Discriminator:
    """S x (4x4 stride-2 conv, LeakyReLU 0.2) from w channels up, then a 3x3 conv to c_S; no BatchNorm, no dropout."""
    base, stages = stage_plan(config.resolution)
    w = config.width or ORIGINAL_WIDTH
    layers: list[nn.Module] = []
    in_ch = config.channels
    for level in range(stages):
        out_ch = stage_channels(w, level)
        layers += [init_weights(nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1), "normal_002"),
                   nn.LeakyReLU(0.2)]  # fmt: skip
        in_ch = out_ch
    top = stage_channels(w, stages)
    if config.mbstd:
        layers.append(MinibatchStd())
    # The features leave the convolutions in one layout before the activation (none if they are already in it), so
    # that flattening needs no copy and LeakyReLU's backward meets one layout (acgan.models.layers.to_memory_format).
    layers += [init_weights(nn.Conv2d(in_ch + int(config.mbstd), top, 3, padding=1), "normal_002"),
               ToMemoryFormat(torch.contiguous_format), nn.LeakyReLU(0.2), nn.Flatten()]  # fmt: skip
    discriminator = Discriminator(config, nn.Sequential(*layers), top * base * base)
    for head in discriminator.linear_heads():
        init_weights(head, "normal_002")
    return discriminator
