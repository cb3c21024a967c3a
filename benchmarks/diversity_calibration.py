"""The MS-SSIM diversity verdicts on real data: how often do they cry wolf?

    python benchmarks/diversity_calibration.py [--dataset fashion-mnist] [--splits 3]

Splits each class of the real test set into two random halves and judges one half against the other with
the rule `acgan evaluate` uses (acgan.evaluation.metrics.diversity_verdict, 200 pairs a side, as there).
Real data against real data should be "as varied" every time: each other verdict is a false alarm.
Prints the verdict counts; writes benchmarks/results/diversity-calibration-<dataset>-<host>.json with the CPU model.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from throughput import machine

from acgan.data import load_dataset
from acgan.evaluation.evaluate import MS_SSIM_PAIRS
from acgan.evaluation.metrics import diversity_verdict, pairwise_ms_ssim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    test = load_dataset(args.dataset, "test")
    images, labels = test.images, test.labels
    verdicts: Counter[str] = Counter()
    rows = []
    for split in range(args.splits):
        rng = torch.Generator().manual_seed(split)
        for c, name in enumerate(test.info.class_names):
            members = torch.nonzero(labels == c).flatten()
            members = members[torch.randperm(len(members), generator=rng)]
            half = len(members) // 2
            first = pairwise_ms_ssim(images[members[:half]], MS_SSIM_PAIRS, rng)
            second = pairwise_ms_ssim(images[members[half:]], MS_SSIM_PAIRS, rng)
            verdict = diversity_verdict(first, second)
            verdicts[verdict] += 1
            rows.append({"split": split, "class": name, "ms_ssim": float(first.mean()),
                         "reference_ms_ssim": float(second.mean()), "verdict": verdict})  # fmt: skip
    print(f"{args.dataset}: real half against real half, {args.splits} splits x {test.info.num_classes} classes: "
          f"{dict(verdicts)}")  # fmt: skip
    output = (
        args.output
        or Path(__file__).parent / "results" / f"diversity-calibration-{args.dataset}-{machine()['host']}.json"
    )
    output.write_text(json.dumps({"machine": machine(), "dataset": args.dataset, "verdicts": dict(verdicts),
                                  "rows": rows}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
