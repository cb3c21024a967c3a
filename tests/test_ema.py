"""The moving average's own BatchNorm statistics ("standing statistics"), computed before it is sampled or saved."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from acgan.checkpoint import EMA_FILE, GENERATOR_FILE, resolve_checkpoint_dir
from acgan.config import TrainConfig
from acgan.models import ModelConfig, build_generator
from acgan.sampling import load_generator
from acgan.training import train
from acgan.training.ema import batch_norm_layers, settle_batch_norm
from tests.helpers import make_folder


def tiny_generator() -> torch.nn.Module:
    generator = build_generator(ModelConfig("dcgan", z_dim=8, num_classes=3, channels=1, resolution=16, width=4), 0)
    generator(torch.randn(16, 8), torch.arange(16) % 3)  # one train-mode pass: the statistics move off their defaults
    return generator


def test_settled_statistics_are_the_mean_of_the_generators_own_batch_statistics() -> None:
    generator = tiny_generator()
    first = batch_norm_layers(generator)[0]
    seen: list[torch.Tensor] = []
    hook = first.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().clone()))
    settle_batch_norm(generator, samples=3 * 16, batch=16)
    hook.remove()
    assert len(seen) == 3 and all(batch.shape[0] == 16 for batch in seen)
    means = torch.stack([batch.mean(dim=(0, 2, 3)) for batch in seen])  # (3, C)
    variances = torch.stack([batch.var(dim=(0, 2, 3), unbiased=True) for batch in seen])  # (3, C)
    torch.testing.assert_close(first.running_mean, means.mean(0))
    torch.testing.assert_close(first.running_var, variances.mean(0))
    assert int(first.num_batches_tracked) == 3


def test_settling_is_a_pure_function_of_the_weights_and_leaves_everything_else_as_it_was() -> None:
    generator = tiny_generator()
    other = tiny_generator()
    for layer in batch_norm_layers(other):  # different statistics before: the same ones after
        layer.running_mean.add_(3.0)
        layer.running_var.mul_(5.0)
    generator.eval()
    parameters = [p.detach().clone() for p in generator.parameters()]
    momenta = [layer.momentum for layer in batch_norm_layers(generator)]
    global_state = torch.get_rng_state()
    settle_batch_norm(generator)
    settle_batch_norm(other)
    assert torch.equal(torch.get_rng_state(), global_state)
    assert not generator.training and other.training  # each network's mode is restored
    assert [layer.momentum for layer in batch_norm_layers(generator)] == momenta
    assert all(torch.equal(a, b) for a, b in zip(generator.parameters(), parameters, strict=True))
    for a, b in zip(generator.buffers(), other.buffers(), strict=True):
        assert torch.equal(a, b)


def test_a_checkpoints_moving_average_carries_its_own_settled_statistics(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "shapes", per_class=8, size=16, grey=True)
    run = tmp_path / "run"
    train(TrainConfig(dataset=str(folder), width=4, batch_size=8, steps=6, ema_decay=0.9, device="cpu",
                      precision="fp32", tensorboard=False), run, show_progress=False)  # fmt: skip
    checkpoint = resolve_checkpoint_dir(run)
    saved_ema, saved_g = load_file(checkpoint / EMA_FILE), load_file(checkpoint / GENERATOR_FILE)
    statistics = [name for name in saved_ema if name.endswith(("running_mean", "running_var"))]
    assert statistics and all(not torch.equal(saved_ema[n], saved_g[n]) for n in statistics)  # not G's, copied
    ema = load_generator(run).generator
    expected = {name: tensor.clone() for name, tensor in ema.state_dict().items()}
    settle_batch_norm(ema)  # recomputed from the saved average's weights: what the run saved
    assert all(torch.equal(ema.state_dict()[name], expected[name]) for name in statistics)
