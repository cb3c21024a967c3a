"""Generate images from a trained generator: from Python, and behind `acgan generate`.

Image i of a request with seed s has its own latent, drawn from a generator seeded with s + i, so an
image depends only on (weights, s + i, label): never on the global RNG or on what else is in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acgan.checkpoint import EMA_FILE, GENERATOR_FILE, check_state, load_state, read_weights, resolve_checkpoint_dir
from acgan.config import MAX_SEED, PRECISIONS
from acgan.data.dataset import DatasetInfo, model_range_to_uint8
from acgan.device import autocast, place
from acgan.errors import AcganError, CheckpointError
from acgan.labels import label_indices
from acgan.models.networks import Generator
from acgan.models.presets import build_generator
from acgan.precision import PrecisionChoice, choose_precision


def check_seeds(seed: int, count: int = 1) -> None:
    """AcganError unless seed, ..., seed + count - 1 all lie in 0..MAX_SEED."""
    if not 0 <= seed <= MAX_SEED - max(count - 1, 0):
        limit = str(MAX_SEED) if count <= 1 else f"{MAX_SEED} - {count - 1} (image i uses seed + i)"
        raise AcganError(f"seed must be in 0..{limit}, got {seed}")


TRUNCATION_MODES = ("mean", "resample")


@dataclass(frozen=True)
class Truncation:
    """The truncation trick: fidelity for variety. `mean`: latents pulled toward the prior's mean, z <- psi z
    (0 < psi <= 1; 1 is no truncation). `resample` (BigGAN, Brock et al. 2019, section 3.1): every entry beyond
    +-psi drawn again from the same image's generator until none is (0.1 <= psi <= 4). Either keeps each image a
    function of (weights, seed + i, label); the label still chooses the class."""

    psi: float
    mode: str = "mean"

    def __post_init__(self) -> None:
        if self.mode not in TRUNCATION_MODES:
            raise AcganError(f"truncation mode must be one of {', '.join(TRUNCATION_MODES)}, got {self.mode!r}")
        number = isinstance(self.psi, int | float) and not isinstance(self.psi, bool)
        inside = number and (0 < self.psi <= 1 if self.mode == "mean" else 0.1 <= self.psi <= 4)
        if not inside:
            bounds = "0 < psi <= 1" if self.mode == "mean" else "0.1 <= psi <= 4"
            raise AcganError(f"truncation {self.mode}: psi must be in {bounds}, got {self.psi!r}")

    def latent(self, rng: torch.Generator, z_dim: int) -> torch.Tensor:
        """One (z_dim,) latent drawn from `rng` and truncated."""
        z = torch.randn(z_dim, generator=rng)
        if self.mode == "mean":
            return z * self.psi
        outside = z.abs() > self.psi
        while bool(outside.any()):
            z[outside] = torch.randn(int(outside.sum()), generator=rng)
            outside = z.abs() > self.psi
        return z


def make_latents(num: int, z_dim: int, seed: int, device: torch.device | str = "cpu",
                 truncation: Truncation | None = None) -> torch.Tensor:  # fmt: skip
    """(num, z_dim) standard-normal latents (truncated when asked); row i is drawn from a CPU generator seeded with
    seed + i."""
    check_seeds(seed, num)
    rng = torch.Generator()
    if truncation is None:
        rows = [torch.randn(z_dim, generator=rng.manual_seed(seed + i)) for i in range(num)]
    else:
        rows = [truncation.latent(rng.manual_seed(seed + i), z_dim) for i in range(num)]
    return (torch.stack(rows) if rows else torch.empty(0, z_dim)).to(device)


def slerp(z_a: torch.Tensor, z_b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between latents (z_dim,) at fractions t (T,) in [0, 1] -> (T, z_dim).

    Gaussian latents live near a sphere; a straight line between two of them passes through the
    low-norm middle, which the generator rarely saw in training. Falls back to a straight line when the two
    latents are (nearly) parallel.
    """
    cos = torch.dot(z_a, z_b) / (z_a.norm() * z_b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    t = t.reshape(-1, 1)  # (T, 1)
    if float(omega) < 1e-4:
        return (1 - t) * z_a + t * z_b
    return (torch.sin((1 - t) * omega) * z_a + torch.sin(t * omega) * z_b) / torch.sin(omega)


def interpolation_latents(z_dim: int, seed_a: int, seed_b: int, steps: int) -> torch.Tensor:
    """(steps, z_dim) latents from the first latent of seed_a to that of seed_b, both ends included."""
    z_a, z_b = make_latents(1, z_dim, seed_a)[0], make_latents(1, z_dim, seed_b)[0]
    return slerp(z_a, z_b, torch.linspace(0.0, 1.0, steps))


@torch.inference_mode()
def sample(
    generator: Generator | TrainedGenerator,
    labels: Any,
    z: Any = None,
    seed: int = 0,
    batch_size: int | None = None,
    precision: str = "fp32",
    truncation: Truncation | None = None,
) -> torch.Tensor:
    """Images of the given classes, (N, C, H, W) float32 in [-1, 1], on the generator's device.

    `generator` is what `load_generator` returns or a Generator module. `labels` are class indices (a list, a
    numpy array or a tensor of any integer dtype), or names when `generator` knows them (acgan.labels has the
    rule). `z` (N, z_dim) fixes the latents (numpy or torch, any float dtype, finite); otherwise they are drawn
    from `seed`, truncated when `truncation` says so (Truncation). Anything else is refused with AcganError. The
    generator runs in eval mode (BatchNorm uses its running statistics); its previous mode is restored.
    `precision` 'bf16' runs the generator under bf16 autocast: faster where bf16 is native, and a few grey levels
    away from the fp32 images; 'auto' is the faster of the two on this machine (`sampling_precision`: measured
    once per machine and generator, then cached).
    `batch_size` defaults to what was fastest for dcgan on a 2-core CPU (channels-last weights, 10,000
    images): 64 in fp32 (1,951 images/s; 1,654 in batches of 256) and 256 in bf16 (4,220; 2,285 in 1,024).
    """
    generator, info = _as_generator(generator)
    device = next(generator.parameters()).device
    config = generator.config
    labels_t = torch.from_numpy(label_indices(labels, config.num_classes, info)).to(device)  # (N,)
    _check_sampling_options(seed, batch_size, precision)
    z = (
        make_latents(labels_t.numel(), config.z_dim, seed, device, truncation)
        if z is None
        else as_latents(z, labels_t.numel(), config.z_dim)
    )
    precision = sampling_precision(generator, precision, batch_size).precision
    batch_size = batch_size or default_batch_size(precision)
    was_training = generator.training
    generator.eval()
    try:
        with autocast(precision, device):
            chunks = [generator(z[i : i + batch_size].to(device), labels_t[i : i + batch_size]).float()
                      for i in range(0, labels_t.numel(), batch_size)]  # fmt: skip
    finally:
        generator.train(was_training)
    if not chunks:
        return torch.empty((0, config.channels, config.resolution, config.resolution), device=device)
    return torch.cat(chunks)


def default_batch_size(precision: str) -> int:
    """Sampling's batch when none is given: what was fastest for dcgan on a 2-core CPU (see `sample`)."""
    return 256 if precision == "bf16" else 64


def sampling_precision(generator: Generator | TrainedGenerator, requested: str = "auto", batch_size: int | None = None,
                       announce: Any = None) -> PrecisionChoice:  # fmt: skip
    """The precision `sample` runs `generator` at: `requested` unless it is 'auto'; then acgan.precision decides
    (on a CPU by timing batches of this generator in fp32 and bf16, each at its own default batch size, once per
    machine and generator: the choice is cached). `announce(line)` is told before a measurement starts."""
    generator, _ = _as_generator(generator)
    if generator.fixed_precision is not None:
        return PrecisionChoice(
            generator.fixed_precision, "given" if requested == generator.fixed_precision else "fixed"
        )
    device = next(generator.parameters()).device
    config = generator.config
    workload = {"task": "sampling", "model": config.to_dict(), "batch_size": batch_size}
    rng = torch.Generator().manual_seed(0)

    @torch.inference_mode()
    def run(precision: str) -> int:
        count = batch_size or default_batch_size(precision)
        z = torch.randn(count, config.z_dim, generator=rng).to(device)  # (B, z_dim)
        labels = torch.randint(config.num_classes, (count,), generator=rng).to(device)  # (B,)
        with autocast(precision, device):
            generator(z, labels)
        return count

    was_training = generator.training
    generator.eval()
    try:
        return choose_precision(requested, device, workload, run, "images/s", announce=announce)
    finally:
        generator.train(was_training)


def _as_generator(model: Any) -> tuple[Generator, DatasetInfo | None]:
    """The Generator module (and the data set facts, when known) of what `sample` was given."""
    if isinstance(model, TrainedGenerator):
        return model.generator, model.info
    if isinstance(model, Generator):
        return model, None
    raise AcganError(f"sample() needs what load_generator() returns or a Generator, got {type(model).__name__}")


def as_latents(z: Any, count: int, z_dim: int) -> torch.Tensor:
    """(count, z_dim) float32 latents from a numpy array or tensor of any float dtype; AcganError for other types,
    shapes, and values that are not finite (or not finite in float32)."""
    if isinstance(z, np.ndarray):
        if z.dtype.kind != "f":
            raise AcganError(f"latents must be floating point, got a {z.dtype} array")
        z = torch.from_numpy(np.ascontiguousarray(z))
    if not isinstance(z, torch.Tensor):
        raise AcganError(
            f"latents must be a numpy array or a tensor of shape ({count}, {z_dim}), got {type(z).__name__}"
        )
    if not z.dtype.is_floating_point:
        raise AcganError(f"latents must be floating point, got a {z.dtype} tensor")
    if tuple(z.shape) != (count, z_dim):
        raise AcganError(f"z must have shape ({count}, {z_dim}), got {tuple(z.shape)}")
    z = z.detach().to(torch.float32)
    if not bool(torch.isfinite(z).all()):
        raise AcganError("latents must be finite numbers (NaN, infinity, or beyond float32's range found)")
    return z


def _check_sampling_options(seed: Any, batch_size: Any, precision: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise AcganError(f"seed must be an integer, got {type(seed).__name__}")
    check_seeds(int(seed))
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise AcganError(f"batch_size must be a positive integer, got {batch_size!r}")
    if precision not in PRECISIONS:
        raise AcganError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def to_uint8_hwc(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) uint8 numpy array."""
    return model_range_to_uint8(images.detach().cpu()).permute(0, 2, 3, 1).numpy()


@dataclass
class TrainedGenerator:
    """A generator loaded from a checkpoint, with the data set facts saved beside it."""

    generator: Generator
    info: DatasetInfo
    step: int
    source: Path
    training_facts: dict[str, Any] = field(default_factory=dict)  # objective and options it was trained with

    def sample(self, labels: Any, z: Any = None, seed: int = 0, precision: str = "fp32",
               truncation: Truncation | None = None) -> torch.Tensor:  # fmt: skip
        """Images for class indices or names: (N, C, H, W) float in [-1, 1] (see `acgan.sample`)."""
        return sample(self, labels, z=z, seed=seed, precision=precision, truncation=truncation)


ZIP_MAGIC = b"PK\x03\x04"  # torch.save and TorchScript files are zip archives


def _not_another_kind_of_file(path: Path) -> Path:
    """`path`, unless it is a PyTorch file (a TorchScript export, a train_state.pt): CheckpointError saying so."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(ZIP_MAGIC))
    except OSError:
        return path  # read_weights says what is wrong with it
    if magic == ZIP_MAGIC:
        raise CheckpointError(f"{path} is a PyTorch file (a TorchScript export or a train_state.pt), not generator "
                              "weights: give a run directory, a checkpoint folder, a generator .safetensors file or "
                              "an .onnx export (TorchScript exports load with torch.jit.load)")  # fmt: skip
    return path


def load_generator(path: Path | str, device: torch.device | str = "cpu", prefer_ema: bool = True) -> TrainedGenerator:
    """Load a generator from a run directory, a checkpoint directory or a generator .safetensors file.

    Needs nothing but the checkpoint: the model config and class names travel in the weights' metadata.
    An `.onnx` file written by `acgan export` runs with ONNX Runtime (CPU) behind the same interface.
    With `prefer_ema`, the moving-average weights are used when the checkpoint has them.
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx" and path.is_file():
        from acgan.onnx_backend import load_onnx_generator  # deferred: onnxruntime is optional

        onnx_generator, info, step, training = load_onnx_generator(path)
        return TrainedGenerator(onnx_generator, info, step, path, training)
    if path.is_file():
        weights_path = path
    else:
        checkpoint_dir = resolve_checkpoint_dir(path)
        ema = checkpoint_dir / EMA_FILE
        weights_path = ema if prefer_ema and ema.is_file() else checkpoint_dir / GENERATOR_FILE
    weights = read_weights(_not_another_kind_of_file(weights_path))
    if weights.network == "discriminator":
        raise CheckpointError(f"{weights_path} holds a discriminator's weights; give the generator's "
                              f"({GENERATOR_FILE} or {EMA_FILE} beside it) or the run directory")  # fmt: skip
    try:
        with torch.device("meta"):  # shapes only: a configuration the weights do not match allocates nothing
            check_state(build_generator(weights.model_config), weights.tensors, weights_path)
        generator = build_generator(weights.model_config)
    except AcganError as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{weights_path}: its model configuration cannot be built ({exc})") from None
    load_state(generator, weights.tensors, weights_path)
    place(generator, torch.device(device)).eval()  # channels-last on CPU/CUDA: 20% faster sampling (dcgan)
    return TrainedGenerator(generator, weights.info, weights.step, weights_path, weights.training_facts)
