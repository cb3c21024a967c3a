"""Memory guards: estimate what a training batch or a set of samples will take before allocating it, and refuse
with a clear message what cannot fit (instead of a traceback, or minutes of swapping and the OOM killer).

Estimates come from the models themselves: one forward pass on PyTorch's "meta" device (shapes only, no
memory, no arithmetic) counts the elements every layer outputs for one image.
"""

from __future__ import annotations

import torch
from torch import nn

from acgan.errors import AcganError
from acgan.models.networks import ModelConfig

GUARD_SHARE = 0.8  # refuse work estimated to need more than this share of the free memory
# Peak memory of a training step per image, over the layer outputs of one G and one D forward pass (float32):
# measured 0.9x (dcgan) and 1.1x (brownlee) from the peak RSS of `acgan train --steps 3` at two batch sizes
# (Fashion-MNIST, CPU, fp32); 1.5 keeps the estimate above both.
TRAINING_OVERHEAD = 1.5
BYTES_PER_VALUE = 4  # float32 (bf16 autocast stores less; the estimate stays an upper bound)


def available_memory(device: torch.device) -> int | None:
    """Bytes free on `device` (CUDA: the GPU's free memory; else the machine's MemAvailable); None if unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def forward_elements(module: nn.Module, *inputs: torch.Tensor) -> int:
    """Elements output by all leaf layers of `module` for `inputs`, counted on the meta device (no memory used)."""
    total = 0

    def count(_: nn.Module, __: object, output: object) -> None:
        nonlocal total
        for tensor in output if isinstance(output, tuple | list) else (output,):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel()

    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [leaf.register_forward_hook(count) for leaf in leaves]
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return total


def generator_elements(config: ModelConfig) -> int:
    """Layer-output elements of the generator for one image, from a meta-device forward pass."""
    from acgan.models import build_generator  # deferred: presets import this package

    with torch.device("meta"):
        generator = build_generator(config).eval()  # eval: batch statistics would need two images
        return forward_elements(generator, torch.zeros(1, config.z_dim), torch.zeros(1, dtype=torch.int64))


def discriminator_elements(config: ModelConfig) -> int:
    """Layer-output elements of the discriminator for one image, from a meta-device forward pass."""
    from acgan.models import build_discriminator

    with torch.device("meta"):
        discriminator = build_discriminator(config).eval()
        images = torch.zeros(1, config.channels, config.resolution, config.resolution)
        return forward_elements(discriminator, images, torch.zeros(1, dtype=torch.int64))


def training_step_bytes(config: ModelConfig, batch_size: int) -> int:
    """Estimated peak bytes of one training step on `batch_size` images (see TRAINING_OVERHEAD)."""
    per_image = generator_elements(config) + discriminator_elements(config)
    return int(batch_size * per_image * TRAINING_OVERHEAD * BYTES_PER_VALUE)


def sampling_bytes(config: ModelConfig, num_images: int, batch_size: int) -> int:
    """Estimated bytes of generating `num_images` in batches of `batch_size`: the kept images (float32) plus
    one batch's layer outputs."""
    image_values = config.channels * config.resolution**2
    batch_values = min(num_images, batch_size) * generator_elements(config)
    return int((num_images * image_values + batch_values) * BYTES_PER_VALUE)


def require_memory(nbytes: int, device: torch.device, what: str, advice: str) -> None:
    """AcganError when `what` (estimated at `nbytes`) needs more than GUARD_SHARE of the memory free on `device`."""
    free = available_memory(device)
    if free is not None and nbytes > GUARD_SHARE * free:
        raise AcganError(f"{what} needs about {_gib(nbytes)} of memory, more than the {_gib(free)} free on "
                         f"{device.type}; {advice}")  # fmt: skip


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**29 else f"{nbytes / 2**20:.0f} MiB"
