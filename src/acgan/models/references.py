"""The reference architectures of `shared/seeds/`, reproduced layer for layer as named presets.

Each builder takes a ModelConfig and returns a module whose parameter count (BatchNorm's moving mean
and variance included, as Keras counts them) equals the seed's Keras model at 28x28x1 and 10 classes.
Where a seed's code has a bug that its own summary or text contradicts, the intent is built; see
`REFERENCE_FIXES`.
"""

from __future__ import annotations

import math

from torch import nn

from acgan.models.layers import (
    Dropout,
    InitScheme,
    Reshape,
    SameConv2d,
    SameConvTranspose2d,
    ZeroPadBottomRight,
    init_weights,
    keras_batch_norm,
    keras_embedding,
    keras_leaky_relu,
)
from acgan.models.networks import (
    Discriminator,
    Generator,
    LabelChannelStem,
    ModelConfig,
    MultiplyEmbedding,
)

REFERENCE_FIXES = {
    "keras-mnist": "the seed's discriminator applies all four conv blocks to the input image (each call "
    "takes `input_img`); its printed summary shows the intended chain 32->64->128->256, which is built.",
    "keras-mnist-v2": "the seed ends the generator with Conv2DTranspose(activation='tanh') followed by a "
    "second Activation('tanh'), which caps outputs at tanh(1)=0.76 so real pixels at -1/1 are unreachable; "
    "one tanh is used. Its AC wrapper never applies the Embedding to the label input; the label is embedded "
    "and multiplied with z as in the Keras example it copies.",
    "jsstar": "the seed passes `image_class` to a float Input for the combined model; labels are integers.",
}


def _same_size(size: int, strides: tuple[int, ...]) -> int:
    """Spatial size after a chain of 'same' convolutions with these strides."""
    for stride in strides:
        size = math.ceil(size / stride)
    return size


def _base_size(config: ModelConfig, divisor: int = 4) -> int:
    if config.resolution % divisor:
        raise ValueError(f"preset '{config.preset}' needs a resolution divisible by {divisor}, got {config.resolution}")
    return config.resolution // divisor


def _conv_block(
    in_ch: int, out_ch: int, stride: int, slope: float, dropout: float, init: InitScheme = "glorot_uniform"
) -> list[nn.Module]:
    return [init_weights(SameConv2d(in_ch, out_ch, 3, stride), init), keras_leaky_relu(slope), Dropout(dropout)]


def _keras_heads(discriminator: Discriminator) -> Discriminator:
    for head in discriminator.linear_heads():
        init_weights(head)
    return discriminator


# --- reference: the Keras example (2017), as printed in the gitbook lesson -------------------------------


def keras_mnist_generator(config: ModelConfig) -> Generator:
    base, z = _base_size(config), config.z_dim
    stem = MultiplyEmbedding(keras_embedding(config.num_classes, z, "glorot_normal"))
    trunk = nn.Sequential(
        init_weights(nn.Linear(z, 1024)), nn.ReLU(),
        init_weights(nn.Linear(1024, 128 * base * base)), nn.ReLU(),
        Reshape(128, base, base),
        nn.Upsample(scale_factor=2, mode="nearest"),
        init_weights(SameConv2d(128, 256, 5)), nn.ReLU(),
        nn.Upsample(scale_factor=2, mode="nearest"),
        init_weights(SameConv2d(256, 128, 5)), nn.ReLU(),
        init_weights(SameConv2d(128, config.channels, 2)), nn.Tanh(),
    )  # fmt: skip
    return Generator(config, stem, trunk)


def _keras_example_discriminator(config: ModelConfig, slope: float) -> Discriminator:
    side = _same_size(config.resolution, (2, 1, 2, 1))
    trunk = nn.Sequential(
        *_conv_block(config.channels, 32, 2, slope, 0.3),
        *_conv_block(32, 64, 1, slope, 0.3),
        *_conv_block(64, 128, 2, slope, 0.3),
        *_conv_block(128, 256, 1, slope, 0.3),
        nn.Flatten(),
    )
    return _keras_heads(Discriminator(config, trunk, 256 * side * side))


def keras_mnist_discriminator(config: ModelConfig) -> Discriminator:
    return _keras_example_discriminator(config, slope=0.3)  # the seed's bare LeakyReLU(): Keras' 0.3


# --- reference: the Keras example (2018 version) from the "GANs in Keras" post -----------------------------


def keras_mnist_v2_generator(config: ModelConfig) -> Generator:
    base = _base_size(config) - 4  # a 'valid' 5x5 transposed conv grows base -> base + 4 = resolution / 4
    if base < 1:
        raise ValueError(f"preset 'keras-mnist-v2' needs a resolution of at least 20, got {config.resolution}")
    stem = MultiplyEmbedding(keras_embedding(config.num_classes, config.z_dim, "glorot_normal"))
    trunk = nn.Sequential(
        init_weights(nn.Linear(config.z_dim, 384 * base * base)), nn.ReLU(),
        Reshape(384, base, base),
        init_weights(nn.ConvTranspose2d(384, 192, 5), "glorot_normal"), nn.ReLU(),
        keras_batch_norm(192),
        init_weights(SameConvTranspose2d(192, 96, 5, stride=2), "glorot_normal"), nn.ReLU(),
        keras_batch_norm(96),
        init_weights(SameConvTranspose2d(96, config.channels, 5, stride=2), "glorot_normal"), nn.Tanh(),
    )  # fmt: skip
    return Generator(config, stem, trunk)


def keras_mnist_v2_discriminator(config: ModelConfig) -> Discriminator:
    return _keras_example_discriminator(config, slope=0.2)


# --- reference: Brownlee, "How to Develop an AC-GAN" (Fashion-MNIST) -------------------------------------


def brownlee_generator(config: ModelConfig) -> Generator:
    base = _base_size(config)
    stem = LabelChannelStem(
        latent_dense=init_weights(nn.Linear(config.z_dim, 384 * base * base), "normal_002"),
        embedding=keras_embedding(config.num_classes, 50),
        label_dense=init_weights(nn.Linear(50, base * base), "normal_002"),
        base=base,
    )
    trunk = nn.Sequential(
        init_weights(SameConvTranspose2d(385, 192, 5, stride=2), "normal_002"),
        keras_batch_norm(192), nn.ReLU(),
        init_weights(SameConvTranspose2d(192, config.channels, 5, stride=2), "normal_002"), nn.Tanh(),
    )  # fmt: skip
    return Generator(config, stem, trunk)


def brownlee_discriminator(config: ModelConfig) -> Discriminator:
    def block(in_ch: int, out_ch: int, stride: int, batch_norm: bool) -> list[nn.Module]:
        layers: list[nn.Module] = [init_weights(SameConv2d(in_ch, out_ch, 3, stride), "normal_002")]
        if batch_norm:
            layers.append(keras_batch_norm(out_ch))
        return [*layers, keras_leaky_relu(0.2), Dropout(0.5)]

    side = _same_size(config.resolution, (2, 1, 2, 1))
    trunk = nn.Sequential(
        *block(config.channels, 32, 2, batch_norm=False),
        *block(32, 64, 1, batch_norm=True),
        *block(64, 128, 2, batch_norm=True),
        *block(128, 256, 1, batch_norm=True),
        nn.Flatten(),
    )
    return _keras_heads(Discriminator(config, trunk, 256 * side * side))


# --- reference: Keras-GAN acgan (Linder-Noren), via yujuezhao's write-up ----------------------------------


def lindernoren_generator(config: ModelConfig) -> Generator:
    base = _base_size(config)
    stem = MultiplyEmbedding(keras_embedding(config.num_classes, config.z_dim))
    trunk = nn.Sequential(
        init_weights(nn.Linear(config.z_dim, 128 * base * base)), nn.ReLU(),
        Reshape(128, base, base),
        keras_batch_norm(128, momentum=0.8),
        nn.Upsample(scale_factor=2, mode="nearest"),
        init_weights(SameConv2d(128, 128, 3)), nn.ReLU(),
        keras_batch_norm(128, momentum=0.8),
        nn.Upsample(scale_factor=2, mode="nearest"),
        init_weights(SameConv2d(128, 64, 3)), nn.ReLU(),
        keras_batch_norm(64, momentum=0.8),
        init_weights(SameConv2d(64, config.channels, 3)), nn.Tanh(),
    )  # fmt: skip
    return Generator(config, stem, trunk)


def lindernoren_discriminator(config: ModelConfig) -> Discriminator:
    side = _same_size(_same_size(config.resolution, (2, 2)) + 1, (2, 1))
    trunk = nn.Sequential(
        *_conv_block(config.channels, 16, 2, 0.2, 0.25),
        init_weights(SameConv2d(16, 32, 3, 2)),
        ZeroPadBottomRight(),
        keras_leaky_relu(0.2), Dropout(0.25),
        keras_batch_norm(32, momentum=0.8),
        *_conv_block(32, 64, 2, 0.2, 0.25),
        keras_batch_norm(64, momentum=0.8),
        *_conv_block(64, 128, 1, 0.2, 0.25),
        nn.Flatten(),
    )  # fmt: skip
    return _keras_heads(Discriminator(config, trunk, 128 * side * side))


# --- reference: jsstar522's blog post -----------------------------------------------------------------------


def jsstar_generator(config: ModelConfig) -> Generator:
    base = _base_size(config)
    stem = MultiplyEmbedding(keras_embedding(config.num_classes, config.z_dim))
    trunk = nn.Sequential(
        init_weights(nn.Linear(config.z_dim, 1024)), keras_leaky_relu(0.2),
        init_weights(nn.Linear(1024, 128 * base * base)), keras_leaky_relu(0.2),
        Reshape(128, base, base),
        nn.Upsample(scale_factor=2, mode="nearest"),
        init_weights(SameConvTranspose2d(128, 256, 3)), keras_leaky_relu(0.2),
        nn.Upsample(scale_factor=2, mode="nearest"),
        init_weights(SameConvTranspose2d(256, 128, 3)), keras_leaky_relu(0.2),
        init_weights(SameConvTranspose2d(128, config.channels, 3)), nn.Tanh(),
    )  # fmt: skip
    return Generator(config, stem, trunk)


def jsstar_discriminator(config: ModelConfig) -> Discriminator:
    side = _same_size(config.resolution, (2, 2, 2, 2))
    trunk = nn.Sequential(
        *_conv_block(config.channels, 32, 2, 0.2, 0.3),
        *_conv_block(32, 64, 2, 0.2, 0.3),
        *_conv_block(64, 128, 2, 0.2, 0.3),
        *_conv_block(128, 256, 2, 0.2, 0.3),
        nn.Flatten(),
        keras_leaky_relu(),  # the seed's bare LeakyReLU() after Flatten: Keras' default slope 0.3
    )
    return _keras_heads(Discriminator(config, trunk, 256 * side * side))
