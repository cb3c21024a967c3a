"""Preset architectures: Keras parameter counts, shapes, value ranges, TF 'same' semantics, seeding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from acgan.errors import AcganError
from acgan.models import PRESETS, ModelConfig, build_discriminator, build_generator
from acgan.models.layers import SameConv2d, SameConvTranspose2d
from acgan.models.summary import keras_param_count, summarize

# (generator, discriminator) parameter counts of the seeds' Keras models, BatchNorm moving stats included.
KERAS_COUNTS = {
    "keras-mnist": (8_172_521, 525_835),
    "brownlee": (3_757_176, 527_627),
    "lindernoren": (857_705, 120_075),
    "keras-mnist-v2": (2_657_897, 525_835),
    "jsstar": (7_124_585, 399_115),
}


@pytest.mark.parametrize("preset", sorted(KERAS_COUNTS))
def test_parameter_counts_equal_the_keras_models(preset: str) -> None:
    config = ModelConfig(preset)
    assert keras_param_count(build_generator(config)) == KERAS_COUNTS[preset][0]
    assert keras_param_count(build_discriminator(config)) == KERAS_COUNTS[preset][1]


def test_every_preset_is_tested_for_counts_or_is_ours() -> None:
    ours_and_the_papers = {"dcgan", "dcgan-cbn", "resnet", "odena-cifar10"}  # the paper's: test_folders
    assert set(PRESETS) == set(KERAS_COUNTS) | ours_and_the_papers


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("batch", [1, 5])
def test_shapes_and_value_ranges(preset: str, batch: int) -> None:
    channels, side = (3, 32) if preset == "odena-cifar10" else (1, 28)  # the paper's model needs a multiple of 8
    config = ModelConfig(preset, channels=channels, resolution=side)
    generator, discriminator = build_generator(config), build_discriminator(config)
    generator.eval()
    z = torch.randn(batch, 100, generator=torch.Generator().manual_seed(0)) * 3
    labels = torch.arange(batch) % 10
    with torch.no_grad():
        images = generator(z, labels)
    assert images.shape == (batch, channels, side, side)
    assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
    output = discriminator(images)
    assert output.adv_logits.shape == (batch,)
    assert output.class_logits.shape == (batch, 10)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_shape_parameters_come_from_the_data(preset: str) -> None:
    config = ModelConfig(preset, z_dim=64, num_classes=7, channels=3, resolution=32)
    generator, discriminator = build_generator(config), build_discriminator(config)
    images = generator(torch.randn(2, 64), torch.tensor([0, 6]))
    assert images.shape == (2, 3, 32, 32)
    assert discriminator(images).class_logits.shape == (2, 7)


def test_resolution_not_divisible_by_four_is_a_clear_error() -> None:
    with pytest.raises(AcganError, match="divisible by 4"):
        build_generator(ModelConfig("brownlee", resolution=30))


def test_initialisation_is_seeded_and_leaves_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a = build_generator(ModelConfig("dcgan"), seed=3)
    b = build_generator(ModelConfig("dcgan"), seed=3)
    c = build_generator(ModelConfig("dcgan"), seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_brownlee_initialiser_is_normal_002() -> None:
    weight = build_generator(ModelConfig("brownlee")).stem.latent_dense.weight.detach()
    assert float(weight.std()) == pytest.approx(0.02, rel=0.02)
    assert float(weight.mean()) == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize(("size", "kernel", "stride"), [(28, 3, 2), (14, 3, 2), (7, 3, 2), (28, 2, 1), (8, 5, 2)])
def test_same_conv_matches_tensorflow_padding(size: int, kernel: int, stride: int) -> None:
    torch.manual_seed(0)
    conv = SameConv2d(2, 3, kernel, stride)
    x = torch.randn(1, 2, size, size)
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    before, after = total // 2, total - total // 2  # TF puts the odd pixel at the end
    expected = F.conv2d(F.pad(x, (before, after, before, after)), conv.weight, conv.bias, stride)
    torch.testing.assert_close(conv(x), expected)
    assert conv(x).shape[-1] == math.ceil(size / stride)


@pytest.mark.parametrize(("size", "kernel", "stride"), [(7, 5, 2), (14, 5, 2), (7, 3, 1), (4, 3, 2)])
def test_same_conv_transpose_is_the_adjoint_of_same_conv(size: int, kernel: int, stride: int) -> None:
    """TF defines 'same' conv2d_transpose as the gradient of 'same' conv2d: <conv(y), x> == <convT(x), y>."""
    torch.manual_seed(0)
    transpose = SameConvTranspose2d(3, 2, kernel, stride)
    with torch.no_grad():
        transpose.bias.zero_()
    conv = SameConv2d(2, 3, kernel, stride)
    with torch.no_grad():
        conv.weight.copy_(transpose.weight)
        conv.bias.zero_()
    x = torch.randn(1, 3, size, size)
    y = torch.randn(1, 2, size * stride, size * stride)
    out = transpose(x)
    assert out.shape == y.shape
    torch.testing.assert_close((conv(y) * x).sum(), (out * y).sum(), rtol=1e-4, atol=1e-4)


def test_summary_rows_add_up_to_the_total() -> None:
    generator = build_generator(ModelConfig("lindernoren"))
    rows = summarize(generator, torch.zeros(2, 100), torch.zeros(2, dtype=torch.int64))
    assert sum(row.params for row in rows) == keras_param_count(generator) == 857_705
    assert rows[-1].output_shape == (2, 1, 28, 28)
    assert any(row.kind == "BatchNorm2d" and row.params == 4 * 128 for row in rows)


def test_dropout_drops_and_rescales_like_torch() -> None:
    from acgan.models.layers import Dropout

    torch.manual_seed(0)
    x = torch.ones(200_000, requires_grad=True)
    layer = Dropout(0.5)
    y = layer(x)
    assert abs(float((y == 0).float().mean()) - 0.5) < 0.01
    assert set(y.unique().tolist()) == {0.0, 2.0}  # kept values scaled by 1 / (1 - p)
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # the gradient goes through the kept units only, with the same scale
    assert layer.eval()(x) is x
    assert Dropout(0.25).train()(torch.ones(10)).max() == pytest.approx(1 / 0.75)
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.0)


def test_upsample_then_conv_as_one_transposed_convolution_is_the_same_function() -> None:
    """NearestUpsampleConv2d: the same parameters and outputs (to float rounding) as Upsample(2x) + Conv2d(3x3)."""
    import torch.nn.functional as F

    from acgan.models.layers import NearestUpsampleConv2d

    torch.manual_seed(0)
    fused = NearestUpsampleConv2d(6, 5, bias=True)
    x = torch.randn(3, 6, 7, 9, requires_grad=True)
    reference = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), fused.weight, fused.bias, padding=1)
    output = fused(x)
    assert output.shape == (3, 5, 14, 18)
    torch.testing.assert_close(output, reference, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(output.square().sum(), [x, fused.weight, fused.bias])
    reference_grads = torch.autograd.grad(reference.square().sum(), [x, fused.weight, fused.bias])
    for grad, expected in zip(grads, reference_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-4)
    for layout in (torch.channels_last, torch.contiguous_format):  # as `place` lays it out, and as built
        fused.to(memory_format=layout)  # type: ignore[call-overload]
        torch.testing.assert_close(fused(x), reference, rtol=1e-5, atol=1e-5)
    assert set(fused.state_dict()) == {"weight", "bias"}  # the buffer of taps is not saved: checkpoints unchanged
