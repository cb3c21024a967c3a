"""Training throughput of every preset with the seeds' update scheme (D real half, D fake half, G full).

    python benchmarks/throughput.py [--batch-size 64] [--steps 30] [--repeats 3] [--presets dcgan,brownlee]

Prints a table (median and spread of `repeats` timings after a warm-up) and writes JSON with the machine's
details to benchmarks/results/throughput-<host>.json. Uses random images: data loading is not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from acgan.models import PRESETS, ModelConfig, build_discriminator, build_generator
from acgan.training.steps import Models, training_step


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    return {
        "host": platform.node(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def measure(preset: str, batch_size: int, steps: int, repeats: int, device: torch.device) -> list[float]:
    """Steps per second of `repeats` timed runs of `steps` training steps each, after a warm-up."""
    config = ModelConfig(preset)
    generator, discriminator = build_generator(config).to(device), build_discriminator(config).to(device)
    models = Models(
        generator,
        discriminator,
        torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
        torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999)),
    )
    rng = torch.Generator(device=device).manual_seed(0)
    images = torch.rand(4096, 1, 28, 28, device=device) * 2 - 1  # (N, 1, 28, 28) in [-1, 1]
    labels = torch.randint(10, (4096,), device=device)
    for _ in range(5):
        training_step(models, images, labels, batch_size, rng)
    rates = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            training_step(models, images, labels, batch_size, rng)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(steps / (time.perf_counter() - start))
    return rates


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
    results = []
    print(f"{'preset':<16}{'steps/s':>10}{'spread':>10}{'images/s':>11}")
    for preset in args.presets.split(","):
        rates = measure(preset, args.batch_size, args.steps, args.repeats, device)
        median = statistics.median(rates)
        spread = max(rates) - min(rates)
        results.append({"preset": preset, "steps_per_s": median, "spread": spread, "runs": rates,
                        "images_per_s": median * args.batch_size})  # fmt: skip
        print(f"{preset:<16}{median:>10.2f}{spread:>10.2f}{median * args.batch_size:>11.0f}", flush=True)
    output = args.output or Path(__file__).parent / "results" / f"throughput-{platform.node()}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine(), "batch_size": args.batch_size, "device": str(device), "results": results}
    output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
