"""The README's demo, measured: `make demo`'s training and grid, then `acgan evaluate` on it.

    python benchmarks/demo.py [--epochs 3] [--dataset fashion-mnist] [--picture docs/fashion-mnist-dcgan.png]

Runs `acgan train --dataset D --epochs E --seed 0` with the default preset (as `make demo` does), writes the
labelled grid of every class (`acgan generate --label all --num 100 --seed 0`), copies it to --picture for the
README, evaluates 10,000 samples, and writes benchmarks/results/demo-<dataset>.json: steps, training minutes,
steps/s, the precision `auto` chose and every metric beside its real-data value. `make results` puts the numbers
under the README's picture.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from throughput import machine

REPO = Path(__file__).resolve().parents[1]


def acgan(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "acgan", *args], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")}, cwd=REPO)  # fmt: skip
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--run-dir", type=Path, default=REPO / "runs" / "bench-demo")
    parser.add_argument("--picture", type=Path, default=REPO / "docs" / "fashion-mnist-dcgan.png")
    args = parser.parse_args()
    measured_on = machine()  # the machine and the code as the run starts (the tree may change during it)
    shutil.rmtree(args.run_dir, ignore_errors=True)
    start = time.monotonic()
    acgan("train", "--dataset", args.dataset, "--epochs", str(args.epochs), "--seed", "0", "--run-dir",
          str(args.run_dir), "--no-progress")  # fmt: skip
    command_seconds = time.monotonic() - start
    grid = args.run_dir / "all-classes.png"
    acgan("generate", "--checkpoint", str(args.run_dir), "--label", "all", "--num", "100", "--seed", "0",
          "--output", str(grid))  # fmt: skip
    shutil.copyfile(grid, args.picture)
    report = json.loads(acgan("evaluate", "--checkpoint", str(args.run_dir), "--num", "10000", "--json"))
    lines = [json.loads(line) for line in (args.run_dir / "metrics.jsonl").read_text().splitlines()]
    last = [line for line in lines if "kind" not in line][-1]
    runtime = json.loads((args.run_dir / "config.json").read_text())["runtime"]
    result = {"machine": measured_on, "dataset": args.dataset, "epochs": args.epochs, "steps": last["step"],
              "training_minutes": last["seconds"] / 60, "command_minutes": command_seconds / 60,
              "steps_per_s": last["step"] / last["seconds"], "precision": runtime["precision_choice"],
              "picture": str(args.picture.relative_to(REPO)), "metrics": report["metrics"],
              "collapsed_classes": report["collapsed_classes"], "less_varied_classes": report["less_varied_classes"],
              "classes": len(report["per_class"])}  # fmt: skip
    out = REPO / "benchmarks" / "results" / f"demo-{args.dataset}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{last['step']} steps in {last['seconds'] / 60:.1f} min; wrote {out} and {args.picture}")


if __name__ == "__main__":
    main()
