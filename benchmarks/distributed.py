"""Data-parallel training on this machine: one process against `--nproc 2`, same steps, same evaluation.

    python benchmarks/distributed.py [--dataset fashion-mnist] [--preset dcgan] [--steps 1500] [--samples 5000]

Three runs, one after another (never overlapping), each `acgan train` in a fresh process tree:
  1 process,  batch 64                 (global batch 64: the reference)
  2 processes, batch 32 each           (global batch 64: the same updates' arithmetic, BatchNorm statistics per
                                        process over half the images: the cost of not syncing them)
  2 processes, batch 64 each           (global batch 128: data-parallel scaling)
Each is evaluated on the same seed and sample count. Prints steps/s and images/s (from the run's own clock,
start-up excluded) and the metrics; writes benchmarks/results/distributed-<host>.json with the CPU model.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from throughput import machine

from acgan.evaluation.evaluate import load_evaluator
from acgan.sampling import load_generator

COLUMNS = ("conditional_accuracy", "intra_fd", "fd", "recall", "precision")
VARIANTS = (("1 process, batch 64", 1, 64), ("2 processes x batch 32", 2, 32), ("2 processes x batch 64", 2, 64))


def train_run(run: Path, nproc: int, batch: int, args: argparse.Namespace) -> dict[str, float]:
    """Train one variant; its steps/s and images/s over the run's logged training time."""
    shutil.rmtree(run, ignore_errors=True)
    command = [sys.executable, "-m", "acgan", "train", "--dataset", args.dataset, "--preset", args.preset,
               "--steps", str(args.steps), "--batch-size", str(batch), "--run-dir", str(run), "--no-progress",
               "--no-tensorboard", "--device", "cpu", "--seed", str(args.seed)]  # fmt: skip
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    started = time.monotonic()
    subprocess.run(command, check=True)
    wall = time.monotonic() - started
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "kind" not in r]
    first, last = steps[0], steps[-1]
    rate = (last["step"] - first["step"]) / (last["seconds"] - first["seconds"])
    return {"steps_per_s": rate, "images_per_s": rate * batch * nproc, "wall_seconds": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--preset", default="dcgan")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = []
    evaluator = None
    print(f"{'variant':<26}{'steps/s':>9}{'images/s':>10}" + "".join(f"{c[:10]:>12}" for c in COLUMNS))
    for name, nproc, batch in VARIANTS:
        run = Path("runs") / f"bench-distributed-{nproc}x{batch}"
        speed = train_run(run, nproc, batch, args)
        trained = load_generator(run)
        evaluator = evaluator or load_evaluator(trained.info)
        report = evaluator.evaluate(trained.generator, num=args.samples, seed=0)
        values = {c: report["metrics"][c]["generated"] for c in COLUMNS}
        rows.append({"variant": name, "processes": nproc, "batch_per_process": batch, **speed, **values})
        print(f"{name:<26}{speed['steps_per_s']:>9.2f}{speed['images_per_s']:>10.0f}"
              + "".join(f"{values[c]:>12.3f}" for c in COLUMNS), flush=True)  # fmt: skip
    assert evaluator is not None
    real = {c: report["metrics"][c]["real"] for c in COLUMNS}
    print(f"{'real data':<45}" + "".join(f"{real[c]:>12.3f}" for c in COLUMNS))
    output = Path(__file__).parent / "results" / f"distributed-{platform.node()}.json"
    output.write_text(
        json.dumps({"machine": machine(), "args": vars(args), "rows": rows, "real": real}, indent=2) + "\n"
    )
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
