"""How long one evaluation takes, against an older revision in the same run.

    python benchmarks/eval_speed.py [--dataset mnist] [--num 5000] [--baseline b3681fe] [--repeats 2] [--data-dir D]

Judges `num` real test images (a class-balanced stand-in for generated samples) with every metric and its 95%
interval, as `acgan evaluate` and the evaluations during training do, in a fresh process per measurement: the
evaluator is loaded (training features from a cache filled beforehand), then two evaluations are timed, the first
(`acgan evaluate`: one per process) and the second (an evaluation during training, after the first). The current
tree and --baseline (a git worktree, benchmarks/.baseline-REV) alternate, repeat after repeat, so drift cancels in
the paired ratio. Writes benchmarks/results/eval-speed-<dataset>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from step_speed import worktree  # type: ignore[import-not-found]
from throughput import machine  # type: ignore[import-not-found]

REPO = Path(__file__).resolve().parents[1]

# Run in the measured revision's own code (PYTHONPATH): only APIs both revisions have.
MEASURE = """
import json, sys, time, torch
from acgan.data.dataset import load_dataset
from acgan.evaluation.evaluate import load_evaluator
name, num, data_dir, timed = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None, sys.argv[4] == "1"
test = load_dataset(name, "test", data_dir=data_dir, show_progress=False)
evaluator = load_evaluator(test.info, data_dir=data_dir, show_progress=False)
index = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:num]
images, labels = test.batch(index), test.labels[index]
seconds = []
for _ in range(2 if timed else 1):
    start = time.perf_counter()
    evaluator.evaluate_images(images, labels)
    seconds.append(time.perf_counter() - start)
print(json.dumps(seconds))
"""


def measure(source: Path, args: argparse.Namespace, cache: str, timed: bool = True) -> list[float]:
    """Seconds of the first and second evaluation in a fresh process running the code in `source`."""
    env = {**os.environ, "PYTHONPATH": str(source / "src"), "ACGAN_CACHE_DIR": cache}
    done = subprocess.run([sys.executable, "-c", MEASURE, args.dataset, str(args.num), args.data_dir or "",
                           "1" if timed else "0"], env=env, check=True, capture_output=True, text=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--num", type=int, default=5000)
    parser.add_argument("--baseline", default="b3681fe", help="the revision the time is compared against")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    measured_on = machine()
    sources = {"current": REPO, "baseline": worktree(args.baseline)}
    runs: dict[str, list[list[float]]] = {name: [] for name in sources}
    with tempfile.TemporaryDirectory() as cache:
        for source in sources.values():  # fill the cache: training features and the real reference, untimed
            measure(source, args, cache, timed=False)
        for repeat in range(args.repeats):
            for name, source in sources.items():
                runs[name].append(measure(source, args, cache))
                print(f"repeat {repeat + 1} {name}: first {runs[name][-1][0]:.1f} s, again {runs[name][-1][1]:.1f} s",
                      flush=True)  # fmt: skip
    record: dict[str, Any] = {"machine": measured_on, "dataset": args.dataset, "num": args.num,
                              "baseline": args.baseline, "repeats": args.repeats, "runs": runs}  # fmt: skip
    for which, position in (("first", 0), ("again", 1)):
        record[f"median_{which}_s"] = {name: statistics.median(r[position] for r in rs) for name, rs in runs.items()}
        record[f"speed_up_{which}"] = statistics.median(
            b[position] / c[position] for b, c in zip(runs["baseline"], runs["current"], strict=True)
        )
    out = REPO / "benchmarks" / "results" / f"eval-speed-{args.dataset}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"speed-up against {args.baseline}: first {record['speed_up_first']:.2f}x, again "
          f"{record['speed_up_again']:.2f}x; wrote {out}")  # fmt: skip


if __name__ == "__main__":
    main()
