"""The default preset's training speed, against the code before issue 21, measured in one run.

    python benchmarks/step_speed.py [--baseline 6563a79] [--steps 400] [--repeats 3] [--dataset mnist]

Checks the baseline revision out into a git worktree (benchmarks/.baseline-REV), then runs `acgan train` with
the default preset of each version in turn (baseline, current, baseline, current, ...: interleaved, so drift
in the machine's speed hits both), each for `--steps` steps on real data with nothing else changed from the
defaults. Steps/s and images/s are read from each run's own metrics.jsonl between step 50 and the last step
(start-up and the final checkpoint left out). In the same run it measures this machine's fp32 and bf16
matrix-product rates (2048^3, median of 10) and the FLOPs of one training step of the current default
(torch.utils.flop_counter), and states the achieved FLOP rate against the rate of the precision used.
Writes benchmarks/results/step-speed-<host>.json with the CPU model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from throughput import default_step, machine

REPO = Path(__file__).resolve().parents[1]
WARM_UP_STEP = 50


def matmul_rate(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """GFLOP/s of a size^3 matrix product in `dtype` (median of `repeats`)."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    for _ in range(2):
        torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def worktree(revision: str) -> Path:
    """The baseline revision checked out beside the benchmarks (made once)."""
    folder = REPO / "benchmarks" / f".baseline-{revision}"
    if not (folder / "src" / "acgan").is_dir():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), revision], check=True,
                       capture_output=True)  # fmt: skip
    return folder


def timed_run(source: Path, dataset: str, steps: int, extra: list[str]) -> dict[str, float]:
    """`acgan train` of the version in `source` for `steps` steps; its steps/s and images/s after the warm-up."""
    with tempfile.TemporaryDirectory() as work:
        run = Path(work) / "run"
        env = {**os.environ, "PYTHONPATH": str(source / "src")}
        command = [sys.executable, "-m", "acgan", "train", "--dataset", dataset, "--steps", str(steps), "--run-dir",
                   str(run), "--no-progress", "--no-tensorboard", "--seed", "0", *extra]  # fmt: skip
        subprocess.run(command, env=env, check=True, capture_output=True, cwd=work)
        lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        seconds = {r["step"]: r["seconds"] for r in lines if "kind" not in r}
        config = json.loads((run / "config.json").read_text())
    batch = config["runtime"]["global_batch_size"]
    rate = (steps - WARM_UP_STEP) / (seconds[steps] - seconds[WARM_UP_STEP])
    return {"steps_per_s": rate, "images_per_s": rate * batch, "batch_size": batch,
            "precision": config["runtime"]["precision"]}  # fmt: skip


def default_step_flops() -> tuple[int, int, str]:
    """FLOPs of one training step of the current default preset on 28x28 grey images, its batch, its precision."""
    bench = default_step()
    return bench.flops(), bench.batch_size, bench.precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="6563a79", help="the revision before issue 21")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--set", action="append", default=[], metavar="FLAG=VALUE",
                        help="extra `acgan train` flags for the current version only, e.g. --set batch-size=128")  # fmt: skip
    args = parser.parse_args()
    extra = [part for item in args.set for part in (f"--{item.partition('=')[0]}", item.partition("=")[2])]
    rates = {"fp32": matmul_rate(torch.float32), "bf16": matmul_rate(torch.bfloat16)}
    versions = {"baseline": worktree(args.baseline), "current": REPO}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
    for repeat in range(args.repeats):
        for name, source in versions.items():
            runs[name].append(timed_run(source, args.dataset, args.steps, extra if name == "current" else []))
            print(f"repeat {repeat + 1}, {name}: {runs[name][-1]}", flush=True)
    flops, batch, precision = default_step_flops()
    summary = {name: {key: statistics.median(r[key] for r in results) for key in ("steps_per_s", "images_per_s")}
               | {"batch_size": results[0]["batch_size"], "precision": results[0]["precision"]}
               for name, results in runs.items()}  # fmt: skip
    achieved = flops * summary["current"]["steps_per_s"] / 1e9
    result = {"machine": machine(), "args": vars(args), "matmul_gflops": rates, "runs": runs, "summary": summary,
              "current_step_gflop": flops / 1e9, "current_gflops": achieved,
              "share_of_matmul_rate": achieved / rates[precision],
              "speedup_images_per_s": summary["current"]["images_per_s"] / summary["baseline"]["images_per_s"],
              "speedup_steps_per_s": summary["current"]["steps_per_s"] / summary["baseline"]["steps_per_s"]}  # fmt: skip
    print(f"{machine()['cpu_model']}: matmul fp32 {rates['fp32']:.0f} GFLOP/s, bf16 {rates['bf16']:.0f} GFLOP/s")
    for name, row in summary.items():
        print(f"{name:<9} batch {row['batch_size']:>4} {row['precision']}: {row['steps_per_s']:6.2f} steps/s "
              f"{row['images_per_s']:7.0f} images/s")  # fmt: skip
    print(f"speed-up: {result['speedup_steps_per_s']:.2f}x steps/s, {result['speedup_images_per_s']:.2f}x images/s; "
          f"current step {flops / 1e9:.1f} GFLOP at batch {batch} = {achieved:.0f} GFLOP/s = "
          f"{result['share_of_matmul_rate']:.0%} of the {precision} matmul rate")  # fmt: skip
    out = REPO / "benchmarks" / "results" / f"step-speed-{machine()['host']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
