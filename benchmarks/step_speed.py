"""The default preset's training speed on this machine: `auto` against both forced precisions and older code, in one run.

    python benchmarks/step_speed.py [--baseline 6563a79] [--also REV,...] [--steps 1350] [--repeats 3]

Runs `acgan train --dataset mnist --steps N` with the default preset of each variant in turn, interleaved
(repeat 1: every variant, repeat 2: every variant, ...), so drift in the machine's speed hits all of them:
  - `baseline`: the code of --baseline (checked out into a git worktree, benchmarks/.baseline-REV), its default;
  - each --also revision the same way (e.g. the main branch before a change: "nowhere slower than main");
  - `auto`, `fp32`, `bf16`: the code here with its default precision (`auto`, chosen by measurement and cached
    as a user's first run would) and with `--precision fp32` / `--precision bf16`.
Ratios are medians over repeats of the two variants' ratio within a repeat. Images/s come from each run's own
metrics.jsonl between step --from (150) and the last step (start-up, the
precision measurement and the final checkpoint left out). In the same run it measures the machine's fp32 and
bf16 matrix-product rates (2048^3) and the FLOPs of one step of the current default, and states each variant's
achieved FLOP rate against the matrix-product rate of the precision it ran in. Writes
benchmarks/results/step-speed-<machine>.json (machine: CPU model, cores, bf16 features).
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
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from throughput import default_step, machine, machine_slug

REPO = Path(__file__).resolve().parents[1]
FORCED = ("fp32", "bf16")


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
    """A revision checked out beside the benchmarks (made once)."""
    folder = REPO / "benchmarks" / f".baseline-{revision}"
    if not (folder / "src" / "acgan").is_dir():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), revision], check=True,
                       capture_output=True)  # fmt: skip
    return folder


def timed_run(source: Path, dataset: str, steps: int, first: int, extra: list[str]) -> dict[str, Any]:
    """`acgan train` of the code in `source` for `steps` steps; its rate between step `first` and the end."""
    with tempfile.TemporaryDirectory() as work:
        run = Path(work) / "run"
        env = {**os.environ, "PYTHONPATH": str(source / "src")}
        command = [sys.executable, "-m", "acgan", "train", "--dataset", dataset, "--steps", str(steps), "--run-dir",
                   str(run), "--no-progress", "--no-tensorboard", "--seed", "0", *extra]  # fmt: skip
        subprocess.run(command, env=env, check=True, capture_output=True, cwd=work)
        lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        seconds = {r["step"]: r["seconds"] for r in lines if "kind" not in r}
        runtime = json.loads((run / "config.json").read_text())["runtime"]
    rate = (steps - first) / (seconds[steps] - seconds[first])
    choice = runtime.get("precision_choice", {})
    return {"steps_per_s": rate, "images_per_s": rate * runtime["global_batch_size"],
            "batch_size": runtime["global_batch_size"], "precision": runtime["precision"],
            "how": choice.get("how", "rule"), "measured_rates": choice.get("rates", {})}  # fmt: skip


def variants(baseline: str, also: list[str]) -> dict[str, tuple[Path, list[str]]]:
    """name -> (code, extra flags)."""
    older = {name: (worktree(rev), []) for name, rev in [("baseline", baseline), *((rev, rev) for rev in also)]}
    return older | {"auto": (REPO, [])} | {p: (REPO, ["--precision", p]) for p in FORCED}


def paired_ratio(runs: dict[str, list[dict[str, Any]]], name: str, against: str) -> float:
    """The median over repeats of `name`'s images/s over `against`'s in the same repeat (drift between repeats,
    which is large on a shared machine, cancels in each ratio)."""
    pairs = zip(runs[name], runs[against], strict=True)
    return statistics.median(a["images_per_s"] / b["images_per_s"] for a, b in pairs)


def summarise(runs: dict[str, list[dict[str, Any]]], flops: int, rates: dict[str, float]) -> dict[str, Any]:
    """Medians per variant, ratios against the baseline (paired by repeat), and the targets' verdicts."""
    summary = {}
    for name, results in runs.items():
        precision = results[0]["precision"]
        summary[name] = {"images_per_s": statistics.median(r["images_per_s"] for r in results),
                         "steps_per_s": statistics.median(r["steps_per_s"] for r in results),
                         "precision": precision, "how": results[0]["how"],
                         "vs_baseline": paired_ratio(runs, name, "baseline")}  # fmt: skip
        if name in ("auto", *FORCED):
            achieved = flops * summary[name]["steps_per_s"] / 1e9
            summary[name] |= {"gflops": achieved, "share_of_matmul_rate": achieved / rates[precision]}
    best = max(FORCED, key=lambda p: summary[p]["images_per_s"])
    verdicts = {"faster_forced": best, "auto_vs_faster_forced": paired_ratio(runs, "auto", best),
                "auto_runs_the_faster_precision": summary["auto"]["precision"] == best}  # fmt: skip
    verdicts |= {f"auto_vs_{name}": paired_ratio(runs, "auto", name) for name in runs
                 if name not in ("auto", "baseline", *FORCED)}  # fmt: skip
    return {"summary": summary, "targets": verdicts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="6563a79", help="the revision the speed is compared against")
    parser.add_argument("--also", default="", help="more revisions to run alongside, comma-separated")
    parser.add_argument("--steps", type=int, default=1350)
    parser.add_argument("--from", dest="first", type=int, default=150, help="the step the timed window starts at")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--only", default="", help="run only these variants (comma-separated), e.g. auto,fp32,bf16")
    args = parser.parse_args()
    measured_on = machine()  # the machine and the code as the run starts (the tree may change during it)
    rates = {"fp32": matmul_rate(torch.float32), "bf16": matmul_rate(torch.bfloat16)}
    chosen = variants(args.baseline, [rev for rev in args.also.split(",") if rev])
    if args.only:
        chosen = {name: chosen[name] for name in ["baseline", *args.only.split(",")] if name in chosen}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
    for repeat in range(args.repeats):
        for name, (source, extra) in chosen.items():
            runs[name].append(timed_run(source, args.dataset, args.steps, args.first, extra))
            print(f"repeat {repeat + 1}, {name}: {runs[name][-1]}", flush=True)
    flops = default_step().flops()
    result = {"machine": measured_on, "args": vars(args), "matmul_gflops": rates, "step_gflop": flops / 1e9,
              "runs": runs, **summarise(runs, flops, rates)}  # fmt: skip
    print(f"{result['machine']['cpu_model']} ({', '.join(result['machine']['cpu_flags']) or 'no bf16 features'}): "
          f"matmul fp32 {rates['fp32']:.0f} GFLOP/s, bf16 {rates['bf16']:.0f} GFLOP/s; step {flops / 1e9:.1f} GFLOP")  # fmt: skip
    for name, row in result["summary"].items():
        share = f", {row['gflops']:.0f} GFLOP/s = {row['share_of_matmul_rate']:.0%} of {row['precision']} matmul" if (
            "gflops" in row) else ""  # fmt: skip
        print(f"{name:<10} {row['precision']} ({row['how']}): {row['images_per_s']:7.0f} images/s = "
              f"{row['vs_baseline']:.2f}x baseline{share}")  # fmt: skip
    targets = result["targets"]
    print(f"auto ({result['summary']['auto']['precision']}) = {targets['auto_vs_faster_forced']:.3f}x the faster "
          f"forced precision ({targets['faster_forced']}), paired by repeat")  # fmt: skip
    for name in (key for key in targets if key.startswith("auto_vs_") and key != "auto_vs_faster_forced"):
        print(f"auto = {targets[name]:.3f}x {name.removeprefix('auto_vs_')}, paired by repeat")
    out = REPO / "benchmarks" / "results" / f"step-speed-{machine_slug()}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
