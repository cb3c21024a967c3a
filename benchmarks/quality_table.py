"""The objective comparison table: every quality.py result of one data set and budget, mean and spread over seeds.

    python benchmarks/quality_table.py --dataset mnist --minutes 5
    python benchmarks/quality_table.py --dataset fashion-mnist --minutes 10

Reads benchmarks/results/quality-*.json written by quality.py (runs named with --name), groups them by name
and prints a Markdown table: final metrics after the budget, each beside the real data's value. With two or
more seeds, a cell shows the mean and, after +-, half the range.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
COLUMNS = (("conditional_accuracy", "cond. acc.", 4), ("intra_fd", "intra-FD", 2), ("fd", "FD", 2),
           ("precision", "precision", 3), ("recall", "recall", 3), ("coverage", "coverage", 3),
           ("ms_ssim", "MS-SSIM", 3))  # fmt: skip


def load(dataset: str, minutes: float, preset: str) -> dict[str, list[dict[str, object]]]:
    """Results grouped by run name, in the order they were first written."""
    groups: dict[str, list[dict[str, object]]] = {}
    for path in sorted(RESULTS.glob("quality-*.json"), key=lambda p: p.stat().st_mtime):
        record = json.loads(path.read_text())
        if "name" not in record or record["dataset"] != dataset or record["budget_minutes"] != minutes:
            continue
        if record["preset"] != preset:
            continue
        groups.setdefault(str(record["name"]), []).append(record)
    return groups


def cell(values: list[float], digits: int) -> str:
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(max(values) - min(values)) / 2:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--preset", default="dcgan")
    args = parser.parse_args()
    groups = load(args.dataset, args.minutes, args.preset)
    if not groups:
        raise SystemExit(f"no named quality results for {args.dataset} at {args.minutes:g} minutes")
    header = ["run", "options", "seeds", "steps", *(title for _, title, _ in COLUMNS)]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|")
    real: dict[str, float] = {}
    for name, runs in groups.items():
        finals = [run["curve"][-1] for run in runs]  # type: ignore[index]
        real = runs[-1]["real"]  # type: ignore[assignment]
        overrides = ", ".join(f"{k}={v}" for k, v in runs[0]["overrides"].items()) or "-"  # type: ignore[attr-defined]
        seeds = ",".join(str(run.get("seed", 0)) for run in runs)
        row = [name, overrides, seeds, cell([f["steps"] for f in finals], 0)]
        row += [cell([f[key] for f in finals], digits) for key, _, digits in COLUMNS]
        print("| " + " | ".join(row) + " |")
    print("| real test data | | | | " + " | ".join(f"{real[key]:.{d}f}" for key, _, d in COLUMNS) + " |")


if __name__ == "__main__":
    main()
