"""The default preset's training speed on a GPU: images/s and the share of the GPU's bf16 dense rate.

    python benchmarks/gpu_speed.py [--batches 64,256] [--steps 200] [--modes eager,compile]

For each batch size and mode (eager; torch.compile(mode="max-autotune"), which uses CUDA graphs), runs the
default preset's training step (bf16 autocast, channels-last, fused Adam, uint8 data on the device gathered
per batch, as `acgan train` does) on random 28x28 images and reports steps/s, images/s, the compile time, the
FLOPs of one step (torch.utils.flop_counter) and the achieved rate as a share of the GPU's measured bf16
dense matrix-product rate (8192^3, median of 10). Writes benchmarks/results/gpu-speed-<host>.json with the
GPU's name. Ready to run on the first machine with a GPU; exits with a message where there is none.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from throughput import default_step, machine

REPO = Path(__file__).resolve().parents[1]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bf16_rate(device: torch.device, size: int = 8192, repeats: int = 10) -> float:
    """The device's bf16 dense matrix-product rate in TFLOP/s (median of `repeats`)."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        torch.mm(a, b)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b)
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e12


def measure(batch_size: int, mode: str, steps: int, device: torch.device) -> dict[str, Any]:
    """Steps/s of the default preset's step at `batch_size` on `device`, eager or compiled."""
    from acgan.training.state import compile_for_training

    bench = default_step(batch_size, device)
    flops = bench.flops()
    compile_seconds = 0.0
    if mode == "compile":
        compile_for_training(bench.state, device)
        start = time.perf_counter()
        for _ in range(3):
            bench.step()
        synchronize(device)
        compile_seconds = time.perf_counter() - start
    for _ in range(10):
        bench.step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        bench.step()
    synchronize(device)
    rate = steps / (time.perf_counter() - start)
    return {"batch_size": batch_size, "mode": mode, "precision": bench.precision, "steps_per_s": rate,
            "images_per_s": rate * batch_size, "step_gflop": flops / 1e9, "compile_seconds": compile_seconds,
            "tflops": flops * rate / 1e12}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--modes", default="eager,compile")
    parser.add_argument("--device", default="cuda", help="cuda; cpu only to check the script itself")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run this on a machine with a GPU")
    peak = bf16_rate(device, size=8192 if device.type == "cuda" else 1024)
    rows = [measure(int(batch), mode, args.steps, device) for batch in args.batches.split(",")
            for mode in args.modes.split(",")]  # fmt: skip
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else machine()["cpu_model"]
    print(f"{gpu}: bf16 dense matmul {peak:.0f} TFLOP/s")
    print(f"{'batch':>6} {'mode':<8} {'steps/s':>9} {'images/s':>10} {'GFLOP/step':>11} {'TFLOP/s':>8} {'share':>6} "
          f"{'compile s':>9}")  # fmt: skip
    for row in rows:
        row["share_of_bf16_rate"] = row["tflops"] / peak
        print(f"{row['batch_size']:>6} {row['mode']:<8} {row['steps_per_s']:>9.1f} {row['images_per_s']:>10.0f} "
              f"{row['step_gflop']:>11.1f} {row['tflops']:>8.2f} {row['share_of_bf16_rate']:>6.1%} "
              f"{row['compile_seconds']:>9.1f}")  # fmt: skip
    out = REPO / "benchmarks" / "results" / f"gpu-speed-{machine()['host']}.json"
    out.write_text(json.dumps({"machine": machine(), "gpu": gpu, "bf16_tflops": peak, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
