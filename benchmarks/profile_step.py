"""Where a training step's time goes, per preset and precision, against this machine's matrix-product rate.

    python benchmarks/profile_step.py                                   # the default preset, fp32 and bf16
    python benchmarks/profile_step.py --presets dcgan --precisions bf16 --by-shape
    python benchmarks/profile_step.py --references --presets brownlee   # a reference preset, the references' way
    python benchmarks/profile_step.py --presets resnet --shape 3,32,32 --set ada=true --name colour

For each preset and precision: the step as `acgan train` runs it (its resolved config with the --set changes:
objective, scheme, EMA, regularisers, augmentation; random images of --shape held on the device as uint8, batch
64), its FLOPs (torch.utils.flop_counter), steps/s unprofiled (the median of --windows timed windows after a
warm-up), the achieved GFLOP/s and its share of the same run's matrix-product rate in that precision (2048^3),
then the top operators under torch.profiler by their own CPU time (with --by-shape: per input shape, which names
the layer) and the same grouped into convolutions / BatchNorm / activations / copies and casts / optimizer /
moving average / other.
Writes benchmarks/results/profile-<presets>-<machine>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from step_speed import matmul_rate  # type: ignore[import-not-found]
from throughput import (  # type: ignore[import-not-found]
    default_step,
    machine,
    machine_slug,
    parse_override,
    seed_scheme_setup,
)
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

GROUPS = {
    "convolutions": ("convolution", "conv2d", "conv_transpose"),
    "BatchNorm": ("batch_norm",),
    "matrix products (linear layers, heads)": ("aten::mm", "aten::addmm", "aten::bmm"),
    "activations (ReLU, LeakyReLU, tanh)": ("relu", "threshold", "clamp_min", "tanh"),
    "copies and casts": ("copy_", "_to_copy", "clone", "contiguous"),
    "moving average": ("lerp",),
    "optimizer (Adam)": ("adam", "addcdiv", "addcmul", "sqrt"),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def group_of(name: str) -> str:
    lowered = name.lower()
    for group, keys in GROUPS.items():
        if any(key.lower() in lowered for key in keys):
            return group
    return "other"


def step_function(preset: str, precision: str, args: argparse.Namespace) -> Callable[[], None]:
    """One training step of `preset` at `precision`: as `acgan train` runs it (on images of --shape, with the
    --set changes to its config), or the references' way."""
    device = torch.device("cpu")
    if args.references:
        bench = seed_scheme_setup(preset, device)
        return lambda: bench.step(args.batch_size, precision)
    shape = tuple(int(n) for n in args.shape.split(","))
    changes = dict(parse_override(item) for item in args.overrides)
    return default_step(args.batch_size, device, precision, image_shape=shape, preset=preset, **changes).step


def steps_per_second(step: Callable[[], None], steps: int, windows: int) -> float:
    """Median steps/s of `windows` windows of `steps` steps, after a warm-up."""
    for _ in range(5):
        step()
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


def operator_table(step: Callable[[], None], steps: int, by_shape: bool, rows: int) -> dict[str, Any]:
    """The top operators by own CPU time (ms per step, calls per step; input shapes with `by_shape`) and groups."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=by_shape) as profiler:
        for _ in range(steps):
            step()
    events = sorted(profiler.key_averages(group_by_input_shape=by_shape), key=lambda e: e.self_cpu_time_total,
                    reverse=True)  # fmt: skip
    total = sum(e.self_cpu_time_total for e in events)
    groups: dict[str, float] = {}
    for event in events:
        groups[group_of(event.key)] = groups.get(group_of(event.key), 0.0) + event.self_cpu_time_total / 1000 / steps
    operators = [{"name": e.key, "shapes": str(e.input_shapes)[:100] if by_shape else "",
                  "ms_per_step": e.self_cpu_time_total / 1000 / steps, "share": e.self_cpu_time_total / total,
                  "calls_per_step": e.count / steps} for e in events[:rows]]  # fmt: skip
    return {"ms_per_step": total / 1000 / steps, "groups_ms_per_step": groups, "operators": operators}


def profile_one(preset: str, precision: str, args: argparse.Namespace, rates: dict[str, float]) -> dict[str, Any]:
    step = step_function(preset, precision, args)
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = int(counter.get_total_flops())
    rate = steps_per_second(step, args.steps, args.windows)
    achieved = flops * rate / 1e9
    row = {"preset": preset, "precision": precision, "step_gflop": flops / 1e9, "steps_per_s": rate,
           "images_per_s": rate * args.batch_size, "gflops": achieved, "matmul_gflops": rates[precision],
           "share_of_matmul_rate": achieved / rates[precision],
           **operator_table(step, args.steps, args.by_shape, args.rows)}  # fmt: skip
    print(f"\n{preset} ({'references' if args.references else 'as trained'}), {precision}, batch {args.batch_size}: "
          f"{rate:.2f} steps/s unprofiled, {flops / 1e9:.2f} GFLOP/step, {achieved:.0f} GFLOP/s = "
          f"{row['share_of_matmul_rate']:.0%} of the {precision} matmul rate ({rates[precision]:.0f})")  # fmt: skip
    print(f"{'operator':<40}{'shapes' if args.by_shape else '':<52}{'share':>7}{'ms/step':>9}{'calls':>7}")
    for op in row["operators"]:
        print(f"{op['name'][:39]:<40}{op['shapes'][:51]:<52}{op['share']:>7.1%}{op['ms_per_step']:>9.2f}"
              f"{op['calls_per_step']:>7.1f}")  # fmt: skip
    print(f"{'group':<92}{'':>7}{'ms/step':>9}")
    for group, ms in sorted(row["groups_ms_per_step"].items(), key=lambda item: -item[1]):
        print(f"{group:<92}{'':>7}{ms:>9.2f}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="dcgan")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--references", action="store_true", help="the references' training (seed_scheme_setup)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed window and profiled")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--rows", type=int, default=14)
    parser.add_argument("--by-shape", action="store_true", help="operators per input shape")
    parser.add_argument("--shape", default="1,28,28", help="C,H,W of the random images (3,32,32: colour)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a TrainConfig field (repeatable), e.g. --set ada=true")  # fmt: skip
    parser.add_argument("--name", default="", help="suffix of the result file")
    args = parser.parse_args()
    rates = {name: matmul_rate(dtype) for name, dtype in DTYPES.items()}
    print(f"{machine()['cpu_model']}: matmul fp32 {rates['fp32']:.0f}, bf16 {rates['bf16']:.0f} GFLOP/s")
    rows = [profile_one(preset, precision, args, rates) for preset in args.presets.split(",")
            for precision in args.precisions.split(",")]  # fmt: skip
    record = {"machine": machine(), "args": vars(args), "matmul_gflops": rates, "rows": rows}
    suffix = f"-{args.name}" if args.name else ""
    out = Path(__file__).parent / "results" / f"profile-{args.presets.replace(',', '+')}{suffix}-{machine_slug()}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
