"""Where a training step's time goes: the top operators under torch.profiler, grouped into the README's rows.

    python benchmarks/profile_step.py                                  # the default preset as `acgan train` runs it
    python benchmarks/profile_step.py --precision bf16                 # another precision
    python benchmarks/profile_step.py --references --preset brownlee   # a reference preset, the references' way

Random 28x28 images held on the device as uint8, batch 64; `--steps` profiled steps after a warm-up. Prints
the operators sorted by their own CPU time (share, ms per step, calls per step), the same grouped into
convolutions / BatchNorm / elementwise activations / copies and casts / optimizer / moving average / other,
and the steps/s measured beside (unprofiled). Writes benchmarks/results/profile-<name>-<host>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from throughput import default_step, machine, seed_scheme_setup  # type: ignore[import-not-found]
from torch.profiler import ProfilerActivity, profile

GROUPS = {
    "convolutions": ("convolution", "conv2d", "conv_transpose"),
    "BatchNorm": ("batch_norm",),
    "matrix products (linear layers, heads)": ("aten::mm", "aten::addmm", "aten::bmm"),
    "activations (ReLU, LeakyReLU, tanh)": ("relu", "threshold", "clamp_min", "tanh"),
    "copies and casts": ("copy_", "_to_copy", "clone", "contiguous"),
    "moving average": ("lerp",),
    "optimizer (Adam)": ("adam", "addcdiv", "addcmul", "sqrt"),
}


def group_of(name: str) -> str:
    lowered = name.lower()
    for group, keys in GROUPS.items():
        if any(key.lower() in lowered for key in keys):
            return group
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="dcgan")
    parser.add_argument("--references", action="store_true", help="the references' training (seed_scheme_setup)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rows", type=int, default=14)
    parser.add_argument("--name", default="", help="suffix of the result file")
    args = parser.parse_args()
    device = torch.device("cpu")
    if args.references:
        bench = seed_scheme_setup(args.preset, device)
        precision = "fp32" if args.precision == "auto" else args.precision

        def step() -> None:
            bench.step(args.batch_size, precision)
    else:
        default = default_step(args.batch_size, device, args.precision, preset=args.preset)
        precision, step = default.precision, default.step
    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    rate = args.steps / (time.perf_counter() - start)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(args.steps):
            step()
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"{args.preset} ({'references' if args.references else 'as trained'}), {precision}, batch {args.batch_size}: "
          f"{rate:.2f} steps/s unprofiled; {machine()['cpu_model']}")  # fmt: skip
    print(f"{'operator':<44}{'share':>7}{'ms/step':>9}{'calls/step':>11}")
    for event in events[: args.rows]:
        share = event.self_cpu_time_total / total
        per_step = event.self_cpu_time_total / 1000 / args.steps
        print(f"{event.key[:43]:<44}{share:>7.1%}{per_step:>9.2f}{event.count / args.steps:>11.1f}")
    groups: dict[str, float] = {}
    for event in events:
        groups[group_of(event.key)] = groups.get(group_of(event.key), 0.0) + event.self_cpu_time_total
    print(f"\n{'group':<44}{'share':>7}{'ms/step':>9}")
    for group, micros in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"{group:<44}{micros / total:>7.1%}{micros / 1000 / args.steps:>9.2f}")
    record = {"machine": machine(), "args": vars(args), "precision": precision, "steps_per_s": rate,
              "groups_ms_per_step": {g: m / 1000 / args.steps for g, m in groups.items()},
              "operators": [{"name": e.key, "ms_per_step": e.self_cpu_time_total / 1000 / args.steps,
                             "calls_per_step": e.count / args.steps} for e in events[: args.rows]]}  # fmt: skip
    suffix = f"-{args.name}" if args.name else ""
    out = Path(__file__).parent / "results" / f"profile-{args.preset}{suffix}-{machine()['host']}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
