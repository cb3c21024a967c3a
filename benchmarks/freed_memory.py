"""Training speed with and without keeping freed memory (acgan.device.keep_freed_memory), measured in one run.

    python benchmarks/freed_memory.py [--steps 300] [--repeats 3] [--dataset mnist]

Runs `acgan train` of the default preset for `--steps` steps, alternately as shipped ("kept") and with
keep_freed_memory replaced by a function that does nothing ("returned": glibc's default, which gives large
freed blocks back to the OS), `--repeats` times each, interleaved. Reports each run's steps/s between step 50
and the last (from its metrics.jsonl) and the process's minor page faults. Writes
benchmarks/results/freed-memory-<host>.json with the CPU model.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from throughput import machine  # type: ignore[import-not-found]

WARM_UP_STEP = 50
TRAIN = """
import sys
import acgan.device
if sys.argv[1] == "returned":
    acgan.device.keep_freed_memory = lambda: False
from acgan.cli import main
sys.argv = ["acgan", "train", *sys.argv[2:]]
main()
"""


def timed_run(mode: str, dataset: str, steps: int) -> dict[str, float]:
    """One `acgan train` in a fresh process; its steps/s after the warm-up and its minor page faults."""
    with tempfile.TemporaryDirectory() as work:
        run = Path(work) / "run"
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
        subprocess.run([sys.executable, "-c", TRAIN, mode, "--dataset", dataset, "--steps", str(steps), "--run-dir",
                        str(run), "--no-progress", "--no-tensorboard", "--seed", "0"],
                       check=True, capture_output=True, cwd=work)  # fmt: skip
        faults = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before
        lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    seconds = {r["step"]: r["seconds"] for r in lines if "kind" not in r}
    return {"steps_per_s": (steps - WARM_UP_STEP) / (seconds[steps] - seconds[WARM_UP_STEP]), "minor_faults": faults}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", default="mnist")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"kept": [], "returned": []}
    for repeat in range(args.repeats):
        for mode in runs:
            runs[mode].append(timed_run(mode, args.dataset, args.steps))
            print(f"repeat {repeat + 1}, {mode}: {runs[mode][-1]}", flush=True)
    info = machine()
    print(info["cpu_model"])
    for mode, results in runs.items():
        rates = [r["steps_per_s"] for r in results]
        faults = [int(r["minor_faults"]) for r in results]
        print(f"{mode:9s} steps/s {' / '.join(f'{x:.2f}' for x in rates)} (median {statistics.median(rates):.2f}); "
              f"page faults per run {' / '.join(f'{f:,}' for f in faults)}")  # fmt: skip
    pairs = [k["steps_per_s"] / r["steps_per_s"] for k, r in zip(runs["kept"], runs["returned"], strict=True)]
    print("kept / returned, per pair: " + ", ".join(f"{p:.2f}x" for p in pairs))
    out = Path(__file__).parent / "results" / f"freed-memory-{info['host']}.json"
    out.write_text(json.dumps({"machine": info, "args": vars(args), "runs": runs, "pair_ratios": pairs}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
