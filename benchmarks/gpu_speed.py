"""Training speed on a GPU: images/s and the share of the GPU's bf16 dense rate; the colour default's quality.

    python benchmarks/gpu_speed.py [--batches 64,256] [--steps 200] [--modes eager,compile]     # grey default
    python benchmarks/gpu_speed.py --colour --quality-images 2000000 --data-dir DIR             # colour default

For each batch size and mode (eager; torch.compile(mode="max-autotune"), which uses CUDA graphs), runs the
default's training step as `acgan train` does (bf16 autocast, channels-last, fused Adam, uint8 data on the device
gathered per batch) on random images (28x28 grey; 32x32 colour with --colour, the default preset for colour data
and its settings) and reports steps/s, images/s, the compile time, the FLOPs of one step
(torch.utils.flop_counter) and the achieved rate as a share of the GPU's measured bf16 dense matrix-product rate
(8192^3, median of 10). With --quality-images N it then trains the same default on the real data set (--dataset:
CIFAR-10 with --colour) for N images and reports acgan's evaluator on 10,000 samples beside the real test images.
Writes benchmarks/results/gpu-speed-<host>.json with the GPU's name. Ready to run on the first machine with a
GPU; exits with a message where there is none.
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
from throughput import default_step, machine, parse_override

from acgan.models.presets import default_preset

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


def measure(batch_size: int, mode: str, steps: int, device: torch.device, shape: tuple[int, int, int],
            changes: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Steps/s of the default's step at `batch_size` on `device`, eager or compiled, on (C, H, W) = `shape` images."""
    from acgan.training.state import compile_for_training

    bench = default_step(batch_size, device, image_shape=shape, **changes)
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


def quality_after(images: int, dataset: str, data_dir: str | None, batch_size: int, changes: dict[str, Any],
                  device: torch.device) -> dict[str, Any]:  # fmt: skip
    """Train on `dataset` for `images` images (`acgan train`, fresh run), then acgan's evaluator on 10,000 samples."""
    import tempfile

    from acgan.config import TrainConfig
    from acgan.evaluation.evaluate import load_evaluator
    from acgan.sampling import load_generator
    from acgan.training import train

    config = TrainConfig(dataset=dataset, data_dir=data_dir, batch_size=batch_size, steps=max(1, images // batch_size),
                         epochs=None, device=device.type, **changes)  # fmt: skip
    with tempfile.TemporaryDirectory() as run:
        start = time.perf_counter()
        result = train(config, Path(run) / "run", show_progress=False)
        seconds = time.perf_counter() - start
        trained = load_generator(Path(run) / "run", device=device)
        report = load_evaluator(trained.info, data_dir=data_dir).evaluate(trained.generator, num=10_000, seed=0)
    metrics = {name: {"generated": m["generated"], "real": m["real"]} for name, m in report["metrics"].items()}
    return {"dataset": dataset, "preset": trained.config.preset, "images": result.step * batch_size,
            "steps": result.step, "seconds": seconds, "images_per_s": result.step * batch_size / seconds,
            "metrics": metrics}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--modes", default="eager,compile")
    parser.add_argument("--device", default="cuda", help="cuda; cpu only to check the script itself")
    parser.add_argument("--colour", action="store_true", help="the default for colour data, on 32x32 colour images")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a TrainConfig field (repeatable)")  # fmt: skip
    parser.add_argument("--quality-images", type=int, default=0, help="then train on real data for this many images")
    parser.add_argument("--quality-batch", type=int, default=256)
    parser.add_argument("--dataset", default=None, help="for --quality-images (cifar10 with --colour, else mnist)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    shape = (3, 32, 32) if args.colour else (1, 28, 28)
    changes = {"preset": default_preset(shape[0]), **dict(parse_override(item) for item in args.overrides)}
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run this on a machine with a GPU")
    peak = bf16_rate(device, size=8192 if device.type == "cuda" else 1024)
    rows = [measure(int(batch), mode, args.steps, device, shape, changes) for batch in args.batches.split(",")
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
    record: dict[str, Any] = {"machine": machine(), "gpu": gpu, "bf16_tflops": peak, "image_shape": shape,
                              "changes": changes, "rows": rows}  # fmt: skip
    if args.quality_images:
        dataset = args.dataset or ("cifar10" if args.colour else "mnist")
        quality = quality_after(args.quality_images, dataset, args.data_dir, args.quality_batch, changes, device)
        print(f"{quality['preset']} on {dataset}: {quality['images']:,} images in {quality['seconds']:.0f} s "
              f"({quality['images_per_s']:.0f} images/s with data loading and checkpoints); " + ", ".join(
                  f"{name} {m['generated']:.3f} (real {m['real']:.3f})" for name, m in quality["metrics"].items()
                  if name in ("conditional_accuracy", "fd", "intra_fd", "recall")))  # fmt: skip
        record["quality"] = quality
    name = f"gpu-speed-{'colour-' if args.colour else ''}{machine()['host']}.json"
    out = REPO / "benchmarks" / "results" / name
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
