"""Training throughput of every preset with the seeds' update scheme (D real half, D fake half, G full).

    python benchmarks/throughput.py [--batch-size 64] [--steps 30] [--repeats 3] [--presets dcgan,brownlee]

Prints a table (median and spread of `repeats` timings after a warm-up), each preset's FLOPs per training
step (counted by torch.utils.flop_counter) and the achieved rate as a fraction of this machine's measured
fp32 matrix-product rate; writes JSON with the machine's details to benchmarks/results/throughput-<host>.json.
Uses random images: data loading is not measured.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from acgan.config import TrainConfig, resolve_config
from acgan.models import PRESETS, ModelConfig, build_generator
from acgan.objectives import Objective
from acgan.training.ema import ema_decay_at
from acgan.training.state import TrainState, build_train_state
from acgan.training.steps import StepPlan, training_step


def machine() -> dict[str, object]:
    """What the numbers were measured on, which code measured them (commit, version) and the command."""
    return {
        "host": platform.node(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_flags": bf16_flags(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "commit": git_commit(),
        "acgan_version": acgan_version(),
        "command": "python " + shlex.join(sys.argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def acgan_version() -> str:
    """The version of the acgan being measured (a baseline checkout's too)."""
    try:
        from acgan.version import __version__
    except ImportError:
        return "unknown"
    return __version__


def cpu_model() -> str:
    """The CPU's model name (acgan.device.cpu_model; the code of a baseline checkout may predate it)."""
    try:
        from acgan.device import cpu_model as read_model
    except ImportError:
        return platform.processor() or "unknown"
    return read_model()


def bf16_flags() -> list[str]:
    """The CPU features that decide bf16's speed: AVX512-BF16 and AMX."""
    try:
        from acgan.device import cpu_flags
    except ImportError:  # a baseline checkout
        return []
    return sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "amx_tile", "avx512f"})


def machine_slug() -> str:
    """A file-name-safe name for this kind of machine: CPU model, cores and bf16 features (hosts are all 'vm')."""
    words = "".join(c if c.isalnum() else "-" for c in cpu_model().lower().replace("(r)", "").replace("(tm)", ""))
    features = "amx" if "amx_bf16" in bf16_flags() else "avx512bf16" if "avx512_bf16" in bf16_flags() else "nobf16"
    return "-".join(part for part in [*words.split("-"), f"{os.cpu_count()}core", features] if part)


def git_commit() -> str:
    """The checked-out commit (short), with '+changes' when the work tree differs from it; '' outside git."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return ""
    return commit + ("+changes" if dirty else "")


def matmul_gflops(size: int = 1024, repeats: int = 20) -> float:
    """The machine's fp32 matrix-product rate (GFLOP/s, best of `repeats`) for square matrices."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


@dataclass
class Bench:
    """A preset's training state on random data: `step(batch_size)` runs one training step as the loop does."""

    state: TrainState
    plan: StepPlan
    images: torch.Tensor  # (N, 1, 28, 28) in [-1, 1]
    labels: torch.Tensor  # (N,)

    def step(self, batch_size: int, precision: str = "fp32") -> None:
        index = torch.randint(
            self.images.shape[0], (batch_size // 2,), generator=self.state.rng, device=self.images.device
        )
        training_step(self.state, self.plan, self.images[index], self.labels[index], batch_size, precision=precision)


def step_flops(bench: Bench, batch_size: int) -> int:
    """Floating-point operations of one training step (forward and backward of every phase)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        bench.step(batch_size)
    return int(counter.get_total_flops())


def seed_scheme_setup(preset: str, device: torch.device) -> Bench:
    """A preset's networks with the seeds' training (AC-GAN objective, Adam 2e-4, beta1 0.5, no EMA), and 4,096
    random 28x28 images."""
    config = resolve_config(TrainConfig(preset=preset, lr_g=2e-4, lr_d=2e-4, ema_decay=0.0, objective="acgan",
                                        spectral_norm=False, diffaugment="", d_updates="alternating"))  # fmt: skip
    model_config = ModelConfig(preset, width=config.width or 0)
    state = build_train_state(config, model_config, device)
    images = torch.rand(4096, 1, 28, 28, device=device) * 2 - 1  # (N, 1, 28, 28) in [-1, 1]
    labels = torch.randint(10, (4096,), device=device)
    return Bench(state, StepPlan(Objective()), images, labels)


@dataclass
class DefaultStep:
    """The default preset's training step as `acgan train` runs it (its resolved config, objective, scheme,
    precision, EMA, regularisers, augmentation), on random images held on the device as uint8 and gathered per
    batch. Falls back to what older code has, so that `PYTHONPATH=<baseline>/src` profiles an old default the
    same way (benchmarks/profile_step.py, step_speed.py).
    """

    state: TrainState
    plan: StepPlan
    pixels: torch.Tensor  # (N, 1, 28, 28) uint8 on the device, in its convolution layout
    labels: torch.Tensor  # (N,)
    batch_size: int
    precision: str
    device: torch.device
    ema_decay: float

    def step(self) -> None:
        from acgan.data.dataset import uint8_to_model_range
        from acgan.device import autocast

        index = torch.randint(len(self.labels), (self.plan.d_steps * self.batch_size // 2,), generator=self.state.rng,
                              device=self.device)  # fmt: skip
        images, labels = uint8_to_model_range(self.pixels[index]), self.labels[index]
        decay = ema_decay_at(self.ema_decay, self.state.step)
        if "precision" in inspect.signature(training_step).parameters:  # autocast per phase, inside the step
            training_step(self.state, self.plan, images, labels, self.batch_size, decay, self.precision)
            return
        with autocast(self.precision, self.device):  # the code of a baseline checkout
            training_step(self.state, self.plan, images, labels, self.batch_size, decay)

    def flops(self) -> int:
        """Floating-point operations of one step (forward and backward of every phase)."""
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            self.step()
        return int(counter.get_total_flops())


def default_step(batch_size: int | None = None, device: torch.device | None = None, precision: str = "auto",
                 image_shape: tuple[int, int, int] = (1, 28, 28), **changes: Any) -> DefaultStep:  # fmt: skip
    """The default preset's step (with `changes` to its TrainConfig) at `precision` ('auto': as training picks), on
    random (C, H, W) = `image_shape` images of 10 classes."""
    from acgan.device import conv_layout, tune_for

    device = device or torch.device("cpu")
    tune_for(device)
    config = resolve_config(TrainConfig(batch_size=batch_size, device=device.type, **changes))
    assert config.batch_size is not None
    model_config, plan = step_plan(config, image_shape, device)
    precision = config.precision or "auto" if precision == "auto" else precision
    if precision == "auto":
        precision = auto_precision(config, model_config, plan, device)
    state = build_train_state(config, model_config, device, precision=precision)
    if plan.augment.state_dict():  # ADA's probability moves with the step, as in a run
        state.extras["augment"] = plan.augment
    pixels = torch.randint(0, 256, (8192, *image_shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    pixels = pixels.to(device).contiguous(memory_format=conv_layout(device))
    labels = (torch.arange(8192) % 10).to(device)
    return DefaultStep(state, plan, pixels, labels, config.batch_size, precision, device, config.ema_decay or 0.0)


def step_plan(config: TrainConfig, image_shape: tuple[int, int, int],
              device: torch.device) -> tuple[ModelConfig, StepPlan]:  # fmt: skip
    """The networks' configuration and the step's plan, from `acgan train`'s own function where the code has it
    (regularisers, augmentation, schedules); a baseline checkout's the way it built them."""
    channels, resolution, _ = image_shape
    try:
        from acgan.data.dataset import DatasetInfo
        from acgan.training.run import training_plan
    except ImportError:  # a baseline checkout
        from acgan.augment import parse_policy
        from acgan.objectives import build_objective

        objective = build_objective(config.objective or "acgan", config.class_weight,
                                    bool(config.d_class_loss_on_fake), config.d2d_margin, config.d2d_temperature)  # fmt: skip
        model_config = ModelConfig(config.preset, config.z_dim, 10, channels, resolution, width=config.width or 0,
                                   heads=objective.heads, spectral_norm=bool(config.spectral_norm))  # fmt: skip
        return model_config, StepPlan(objective, config.d_updates, config.d_steps,
                                      parse_policy(config.diffaugment or ""))  # fmt: skip
    info = DatasetInfo("random", 10, channels, resolution, tuple(str(c) for c in range(10)))
    return training_plan(config, info, device=device)


def parse_override(item: str) -> tuple[str, object]:
    """'field=value' -> (field, value) with the value read as JSON when it parses (numbers, true, null)."""
    field, sep, text = item.partition("=")
    if not sep:
        raise SystemExit(f"error: --set takes FIELD=VALUE, got {item!r}")
    try:
        return field, json.loads(text)
    except json.JSONDecodeError:
        return field, text


def auto_precision(config: TrainConfig, model_config: ModelConfig, plan: StepPlan, device: torch.device) -> str:
    """What `acgan train` picks for `auto` (measured and cached); the older rule where the code predates that."""
    try:
        from acgan.training.precision_probe import training_precision
    except ImportError:  # a baseline checkout
        from acgan.device import resolve_precision  # type: ignore[attr-defined]

        return str(resolve_precision("auto", device))
    return training_precision(config, model_config, plan, device, Path("."), restoring=False).precision


def measure(preset: str, batch_size: int, steps: int, repeats: int, device: torch.device) -> tuple[list[float], int]:
    """Steps per second of `repeats` timed runs of `steps` training steps each (after a warm-up), and FLOPs per step."""
    bench = seed_scheme_setup(preset, device)
    flops = step_flops(bench, batch_size)
    for _ in range(5):
        bench.step(batch_size)
    rates = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            bench.step(batch_size)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(steps / (time.perf_counter() - start))
    return rates, flops


def sampling_rate(preset: str, num: int = 10_000, repeats: int = 3, precision: str = "fp32") -> float:
    """Images per second of `acgan.sample` (eval mode, inference_mode, its default batches), best of `repeats`,
    for a generator laid out as `load_generator` places it."""
    from acgan.device import place
    from acgan.sampling import sample

    generator = place(build_generator(ModelConfig(preset)), torch.device("cpu"))
    labels = torch.arange(num) % 10
    sample(generator, labels[:1000], precision=precision)  # warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        sample(generator, labels, seed=0, precision=precision)
        best = min(best, time.perf_counter() - start)
    return num / best


def evaluation_seconds(dataset: str = "fashion-mnist", num: int = 10_000) -> tuple[float, float]:
    """Seconds to evaluate `num` samples of an untrained dcgan: the first call (real-data features computed
    and cached) and a second one (cached); NaN when the data set is not on this machine."""
    from acgan.data.dataset import DatasetInfo, get_spec
    from acgan.errors import DataError
    from acgan.evaluation.evaluate import load_evaluator

    spec = get_spec(dataset)
    info = DatasetInfo(dataset, len(spec.class_names), 1, 28, spec.class_names)
    generator = build_generator(ModelConfig("dcgan"))
    times = []
    try:
        start = time.perf_counter()
        evaluator = load_evaluator(info)
        evaluator.evaluate(generator, num=num, seed=0)
        times.append(time.perf_counter() - start)
    except DataError:
        return math.nan, math.nan
    start = time.perf_counter()
    evaluator.evaluate(generator, num=num, seed=1)
    times.append(time.perf_counter() - start)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    peak = matmul_gflops() if device.type == "cpu" else math.nan
    print(f"fp32 matrix product: {peak:.1f} GFLOP/s")
    results = []
    print(f"{'preset':<16}{'steps/s':>10}{'spread':>10}{'images/s':>11}{'GFLOP/step':>12}{'GFLOP/s':>10}{'of peak':>9}")
    for preset in args.presets.split(","):
        rates, flops = measure(preset, args.batch_size, args.steps, args.repeats, device)
        median = statistics.median(rates)
        spread = max(rates) - min(rates)
        achieved = median * flops / 1e9
        results.append({"preset": preset, "steps_per_s": median, "spread": spread, "runs": rates,
                        "images_per_s": median * args.batch_size, "flops_per_step": flops,
                        "gflops_per_s": achieved, "fraction_of_matmul": achieved / peak})  # fmt: skip
        print(f"{preset:<16}{median:>10.2f}{spread:>10.2f}{median * args.batch_size:>11.0f}{flops / 1e9:>12.2f}"
              f"{achieved:>10.1f}{achieved / peak:>9.0%}", flush=True)  # fmt: skip
    sampling = sampling_rate("dcgan") if device.type == "cpu" else math.nan
    sampling_bf16 = sampling_rate("dcgan", precision="bf16") if device.type == "cpu" else math.nan
    print(f"sampling (dcgan, 10,000 images incl. per-image latents): {sampling:.0f} images/s fp32, "
          f"{sampling_bf16:.0f} images/s bf16 autocast")  # fmt: skip
    first_eval, cached_eval = evaluation_seconds() if device.type == "cpu" else (math.nan, math.nan)
    print(f"evaluation of 10,000 dcgan samples (fashion-mnist): {first_eval:.1f} s in a new process "
          f"(real-data features computed), {cached_eval:.1f} s once they are cached")  # fmt: skip
    output = args.output or Path(__file__).parent / "results" / f"throughput-{platform.node()}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine(), "batch_size": args.batch_size, "device": str(device),
              "matmul_gflops": peak, "sampling_images_per_s_dcgan": sampling, "sampling_images_per_s_dcgan_bf16": sampling_bf16,
              "evaluation_seconds_10k": {"first": first_eval, "cached": cached_eval}, "results": results}  # fmt: skip
    output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
