"""The generator's moving average: its decay schedule, its update, and BatchNorm statistics of its own.

The average's weights are an average of the generator's; BatchNorm's running statistics are not weights, and
the generator's (copied at every update) describe the generator's activations, not the average's. Before the
average is sampled from (grids, checkpoints, evaluations), `settle_batch_norm` recomputes them from the
average's own activations: BigGAN's "standing statistics" (Brock et al. 2018, section 4 / appendix C).
"""

from __future__ import annotations

import torch

from acgan.models.networks import Generator

EMA_WARM_UP = 80  # k in ema_decay_at: the average spans about the last 1/k of the steps until the decay caps it
SETTLE_SAMPLES = 1024  # generated images for the statistics: FD on MNIST the same within 0.05 with 512 to 4,096
SETTLE_BATCH = 64  # the mean of batches' unbiased variances estimates the population's whatever the batch
SETTLE_SEED = 0


def ema_decay_at(decay: float, step: int) -> float:
    """The moving average's decay for the update after `step` completed steps: min(decay, (1 + step) / (k + 1 +
    step)) with k = EMA_WARM_UP, so the average spans about the last step / k steps until `decay` caps it.

    The average starts as a copy of the untrained generator; with a fixed 0.999 it would still be 52%
    initial weights after 650 steps (MNIST dcgan: conditional accuracy 0.10 after a minute of training).
    k, measured on MNIST (default preset, 5 minutes: 3,300-4,500 steps; 10,000 samples; benchmarks/quality.py):
    FD 9.1 (seed 0) with k = 3 and 5.3 / 5.0 (seeds 0 / 1) with k = 9; 3.7 / 4.1 and 4.0 / 3.7 with k = 20 (two
    runs of the pair); with the average's own BatchNorm statistics (settle_batch_norm) 3.0 / 3.2 with
    k = 40, 2.75 / 2.92 with k = 80 and 4.6 (seed 0) with k = 160: windows of 50-100 steps are best here.
    The raw generator of k = 9 runs scored 15.6 / 11.4. With k = 80 the full 0.999 is reached after about
    80,000 steps.
    """
    return min(decay, (1 + step) / (EMA_WARM_UP + 1 + step))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers are copied.

    BatchNorm statistics copied here are replaced by `settle_batch_norm` before any use; the copy stays for
    buffers that must follow the model (a generator with spectral norm's vectors, say), at ~0.1 ms a step.
    One foreach kernel each over all tensors (the per-tensor loop's arithmetic, without its per-tensor calls)."""
    ema_params: list[torch.Tensor] = list(ema.parameters())
    params: list[torch.Tensor] = list(model.parameters())
    if len(ema_params) != len(params):
        raise ValueError("the moving average and the model have different parameters")
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)
    ema_buffers, buffers = list(ema.buffers()), list(model.buffers())
    if ema_buffers:
        torch._foreach_copy_(ema_buffers, buffers)


def batch_norm_layers(module: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers (with running statistics) of `module`, in order."""
    return [
        m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


@torch.no_grad()
def settle_batch_norm(generator: Generator, samples: int = SETTLE_SAMPLES, batch: int = SETTLE_BATCH,
                      seed: int = SETTLE_SEED) -> None:  # fmt: skip
    """Replace `generator`'s BatchNorm running statistics by the mean over `samples` / `batch` training-mode
    batches of its own activations (latents N(0, 1), labels uniform over the classes, as in training).

    A pure function of the weights: the latents and labels come from a CPU generator seeded with `seed`, torch's
    global random state is left as it was (dropout, if any, draws inside a fork), and the layers' momentum and
    the network's mode are restored. A generator without BatchNorm is left untouched.
    """
    layers = batch_norm_layers(generator)
    if not layers:
        return
    device = next(generator.parameters()).device
    config = generator.config
    rng = torch.Generator().manual_seed(seed)
    momenta = [layer.momentum for layer in layers]
    was_training = generator.training
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative mean over the batches
    generator.train()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for _ in range(max(1, samples // batch)):
                z = torch.randn(batch, config.z_dim, generator=rng).to(device)  # (batch, z_dim)
                labels = torch.randint(config.num_classes, (batch,), generator=rng).to(device)  # (batch,)
                generator(z, labels)
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
        generator.train(was_training)
