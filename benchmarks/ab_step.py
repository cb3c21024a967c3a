"""One change's effect on the training step's speed: the code here against a revision, alternating, in one run.

    python benchmarks/ab_step.py --before HEAD~1 [--precision bf16] [--preset dcgan] [--rounds 8] [--steps 40]
    python benchmarks/ab_step.py --before HEAD~1 --precision fp32 --preset dcgan-cbn --shape 3,32,32 --name colour

Checks --before out into a git worktree (benchmarks/.baseline-REV) and alternates, round by round, a fresh
process of each version (the order flips every round, so drift in the machine's speed hits both): each builds
the preset's step as `acgan train` runs it (benchmarks/throughput.py default_step: random images of --shape,
28x28 grey unless told, batch 64), warms it up, and reports the best steps/s of five timed windows (on a shared
machine the best window is the one least disturbed by others). Prints every round, the medians and the median
of the per-round ratios (after / before). Writes benchmarks/results/ab-step-<name>-<machine>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from step_speed import worktree
from throughput import machine, machine_slug

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import statistics, sys, time, torch
sys.path.insert(0, {benchmarks!r})
from throughput import default_step
bench = default_step({batch}, torch.device("cpu"), {precision!r}, image_shape={shape!r}, preset={preset!r})
for _ in range(10):
    bench.step()
rates = []
for _ in range(5):
    start = time.perf_counter()
    for _ in range({steps}):
        bench.step()
    rates.append({steps} / (time.perf_counter() - start))
print(max(rates))
"""


def image_shape(text: str) -> tuple[int, int, int]:
    """--shape's C,H,W: three positive integers."""
    parts = text.split(",")
    if len(parts) != 3 or not all(part.strip().isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f"expected C,H,W (three positive integers, e.g. 3,32,32), got {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def rate(source: Path, args: argparse.Namespace) -> float:
    """Steps/s of the step of the code in `source`, in a fresh process."""
    code = CHILD.format(benchmarks=str(REPO / "benchmarks"), batch=args.batch_size, precision=args.precision,
                        preset=args.preset, steps=args.steps, shape=args.shape)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(source / "src"), "ACGAN_AUTO_PRECISION": "fp32"}
    done = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the revision before the change")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--preset", default="dcgan")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--shape", type=image_shape, default=(1, 28, 28), help="C,H,W of the random images (3,32,32: colour)"
    )
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--name", default="change")
    args = parser.parse_args()
    sources = {"before": worktree(args.before), "after": REPO}
    rounds: list[dict[str, float]] = []
    for index in range(args.rounds):
        order = list(sources) if index % 2 == 0 else list(reversed(sources))
        rounds.append({name: rate(sources[name], args) for name in order})
        print(f"round {index + 1}: before {rounds[-1]['before']:.2f}, after {rounds[-1]['after']:.2f} steps/s "
              f"({rounds[-1]['after'] / rounds[-1]['before']:.3f}x)", flush=True)  # fmt: skip
    medians = {name: statistics.median(r[name] for r in rounds) for name in sources}
    ratio = statistics.median(r["after"] / r["before"] for r in rounds)
    print(f"{args.preset} {args.precision}: before {medians['before']:.2f}, after {medians['after']:.2f} steps/s; "
          f"median ratio {ratio:.3f}x ({sum(r['after'] > r['before'] for r in rounds)}/{len(rounds)} rounds faster)")  # fmt: skip
    out = REPO / "benchmarks" / "results" / f"ab-step-{args.name}-{machine_slug()}.json"
    before = subprocess.run(["git", "rev-parse", "--short", args.before], cwd=REPO, check=True, capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    out.write_text(json.dumps({"machine": machine(), "args": vars(args), "before_commit": before, "rounds": rounds,
                               "medians": medians, "median_ratio": ratio}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
