"""Where a training step's time goes: the top operators of the seeds' update scheme under torch.profiler.

    python benchmarks/profile_step.py --preset brownlee
    python benchmarks/profile_step.py --preset dcgan --precision bf16 --channels-last

Random 28x28 images, batch 64, the seeds' optimizers; `--steps` profiled steps after a warm-up. Prints
the operators sorted by their own CPU time (share of the total) and the steps/s measured beside.
"""

from __future__ import annotations

import argparse
import time

import torch
from throughput import seed_scheme_setup  # type: ignore[import-not-found]
from torch.profiler import ProfilerActivity, profile

from acgan.device import autocast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="dcgan")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rows", type=int, default=12)
    args = parser.parse_args()
    device = torch.device("cpu")
    bench = seed_scheme_setup(args.preset, device)
    if args.channels_last:
        bench.state.generator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        bench.state.discriminator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        bench.images = bench.images.contiguous(memory_format=torch.channels_last)
    with autocast(args.precision, device):
        for _ in range(5):
            bench.step(64)
        start = time.perf_counter()
        for _ in range(args.steps):
            bench.step(64)
        rate = args.steps / (time.perf_counter() - start)
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            for _ in range(args.steps):
                bench.step(64)
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    layout = "channels-last" if args.channels_last else "contiguous"
    print(f"{args.preset}, {args.precision}, {layout}: {rate:.2f} steps/s unprofiled; top operators by own CPU time")
    print(f"{'operator':<44}{'share':>7}{'ms/step':>9}{'calls/step':>11}")
    for event in events[: args.rows]:
        share = event.self_cpu_time_total / total
        per_step = event.self_cpu_time_total / 1000 / args.steps
        print(f"{event.key[:43]:<44}{share:>7.1%}{per_step:>9.2f}{event.count / args.steps:>11.1f}")


if __name__ == "__main__":
    main()
