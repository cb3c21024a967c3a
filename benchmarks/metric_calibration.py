"""Do the evaluator's metrics measure what they claim? Real test images with known damage, each level judged.

    python benchmarks/metric_calibration.py --dataset mnist [--num 5000] [--data-dir DIR]

Starts from the data set's real test images (`--num` of them, class-balanced where there are enough) and damages
them in four ways, each at several levels, then runs `acgan evaluate`'s metrics (with their 95% bootstrap
intervals) on every version:
  (a) variety removed: within each class the images' classifier features are clustered (k-means, 8 clusters) and
      only 8, 4, 2 or 1 clusters' images are kept (drawn again to the class's size);
  (b) duplicates: 50%, 10% or 1% of each class's images are distinct, each repeated to the class's size;
  (c) fidelity removed: Gaussian blur (sigma 0.5, 1, 2 px) and Gaussian noise (std 0.1, 0.2, 0.4 in [-1, 1]);
  (d) class leakage: 5%, 20%, 50% of the labels swapped to another class.
For each metric and damage: its value per level, and whether it moved the way worse means (lower for accuracy,
precision, recall, coverage; higher for the distances and MS-SSIM) by more than its interval (the damaged value
outside the undamaged one's interval, or the intervals apart). A metric that does not respond to its own kind of
damage is marked. Writes benchmarks/results/metric-calibration-<dataset>.json and a plot beside it (.png): per
damage, each metric's change toward worse relative to its undamaged value, level by level.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from throughput import machine

from acgan.data.dataset import load_dataset
from acgan.evaluation.classifier import judge
from acgan.evaluation.evaluate import load_evaluator
from acgan.evaluation.registry import BY_NAME
from acgan.visualize import pyplot, save_figure

REPO = Path(__file__).resolve().parents[1]
METRICS = ("conditional_accuracy", "fd", "intra_fd", "kid", "intra_kid", "precision", "recall", "coverage", "ms_ssim")
# What each damage should hurt (the metrics made to see it)
OWN = {"variety": ("recall", "coverage", "intra_fd", "intra_kid", "ms_ssim"),
       "duplicates": ("recall", "coverage", "fd", "kid", "ms_ssim"),
       "blur": ("precision", "fd", "kid"), "noise": ("precision", "fd", "kid"),
       "leakage": ("conditional_accuracy", "intra_fd", "intra_kid")}  # fmt: skip
Damage = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def kmeans(features: torch.Tensor, k: int, rng: torch.Generator, iterations: int = 20) -> torch.Tensor:
    """Cluster labels (N,) of (N, D) features (Lloyd's algorithm from k random rows)."""
    centres = features[torch.randperm(features.shape[0], generator=rng)[:k]].clone()
    for _ in range(iterations):
        assignment = torch.cdist(features, centres).argmin(dim=1)
        for j in range(centres.shape[0]):
            members = features[assignment == j]
            if members.shape[0]:
                centres[j] = members.mean(dim=0)
    return torch.cdist(features, centres).argmin(dim=1)


def refill(index: torch.Tensor, size: int, rng: torch.Generator) -> torch.Tensor:
    """`size` indices drawn with replacement from `index`."""
    return index[torch.randint(index.numel(), (size,), generator=rng)]


def keep_clusters(kept: int, clusters: dict[int, torch.Tensor]) -> Damage:
    def damage(images: torch.Tensor, labels: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = []
        for c in labels.unique().tolist():
            mine = (labels == c).nonzero().squeeze(1)
            inside = mine[clusters[c] < kept]  # clusters 0 .. kept - 1 of this class
            chosen.append(refill(inside if inside.numel() else mine, mine.numel(), rng))
        index = torch.cat(chosen)
        return images[index], labels[index]

    return damage


def duplicates(share: float) -> Damage:
    def damage(images: torch.Tensor, labels: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        chosen = []
        for c in labels.unique().tolist():
            mine = (labels == c).nonzero().squeeze(1)
            distinct = mine[torch.randperm(mine.numel(), generator=rng)[: max(1, round(share * mine.numel()))]]
            chosen.append(distinct.repeat(math.ceil(mine.numel() / distinct.numel()))[: mine.numel()])
        index = torch.cat(chosen)
        return images[index], labels[index]

    return damage


def blur(sigma: float) -> Damage:
    def damage(images: torch.Tensor, labels: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        radius = max(1, math.ceil(3 * sigma))
        taps = torch.exp(-(torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2) / (2 * sigma**2))
        kernel = (taps[:, None] * taps[None, :] / taps.sum() ** 2)[None, None]  # (1, 1, k, k)
        c = images.shape[1]
        padded = F.pad(images, (radius,) * 4, mode="replicate")
        return F.conv2d(padded, kernel.expand(c, 1, -1, -1), groups=c), labels

    return damage


def noise(std: float) -> Damage:
    def damage(images: torch.Tensor, labels: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return (images + std * torch.randn(images.shape, generator=rng)).clamp(-1, 1), labels

    return damage


def leakage(share: float, classes: int) -> Damage:
    def damage(images: torch.Tensor, labels: torch.Tensor, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        swapped = torch.rand(labels.shape, generator=rng) < share
        other = (labels + torch.randint(1, classes, labels.shape, generator=rng)) % classes  # never the same class
        return images, torch.where(swapped, other, labels)

    return damage


def moved(name: str, base: dict[str, Any], damaged: dict[str, Any]) -> bool:
    """Whether `name` got worse beyond the intervals (the damaged value outside the undamaged one's interval)."""
    value, reference = damaged["generated"], base["generated"]
    low, high = base.get("interval") or (math.nan, math.nan)
    if not all(math.isfinite(v) for v in (value, reference)):
        return False
    if not (math.isfinite(low) and math.isfinite(high)):
        low = high = reference
    return value < low if BY_NAME[name].higher_is_better else value > high


def worsening(name: str, base: float, value: float) -> float:
    """How much worse `value` is than `base` for metric `name`, relative to |base| (negative: better)."""
    change = (base - value) if BY_NAME[name].higher_is_better else (value - base)
    return change / max(abs(base), 1e-3)


def plot(rows: dict[str, Any], damages: list[str], dataset: str, output: Path) -> None:
    """One panel per damage: each metric's relative worsening at levels 0 (undamaged) to 3."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(damages), figsize=(4 * len(damages), 3.6), sharey=True)
    base = rows["undamaged"]
    for ax, kind in zip(axes, damages, strict=True):
        levels = [version for version in rows if version.startswith(kind + ":")]
        for name in METRICS:
            values = [worsening(name, base[name]["generated"], rows[v][name]["generated"]) for v in levels]
            style = "-" if name in OWN[kind] else ":"
            ax.plot(range(len(levels) + 1), [0.0, *values], style, marker="o", markersize=3, label=name)
        ax.set_yscale("symlog", linthresh=0.05)
        ax.set_xticks(range(len(levels) + 1), ["none", *(v.split(": ")[1] for v in levels)], fontsize=7, rotation=20)
        ax.set_title(kind + " (solid: meant to see it)", fontsize=9)
        ax.axhline(0, color="grey", linewidth=0.5)
    axes[0].set_ylabel("worse than undamaged (relative)")
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle(f"Metrics on damaged real {dataset} test images", fontsize=10)
    save_figure(fig, output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--num", type=int, default=5000)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    measured_on = machine()  # the machine and the code as the run starts (the tree may change during it)
    test = load_dataset(args.dataset, "test", data_dir=args.data_dir, show_progress=False)
    evaluator = load_evaluator(test.info, data_dir=args.data_dir, source=args.dataset)
    rng = torch.Generator().manual_seed(args.seed)
    index = torch.randperm(len(test), generator=rng)[: args.num]
    images, labels = test.batch(index), test.labels[index]
    features = judge(evaluator.classifier, images).features
    clusters = {c: kmeans(features[labels == c], 8, rng) for c in labels.unique().tolist()}
    k = test.info.num_classes
    damages: dict[str, list[tuple[str, Damage]]] = {
        "variety": [(f"{n} of 8 clusters", keep_clusters(n, clusters)) for n in (4, 2, 1)],
        "duplicates": [(f"{share:.0%} distinct", duplicates(share)) for share in (0.5, 0.1, 0.01)],
        "blur": [(f"sigma {sigma:g} px", blur(sigma)) for sigma in (0.5, 1.0, 2.0)],
        "noise": [(f"std {std:g}", noise(std)) for std in (0.1, 0.2, 0.4)],
        "leakage": [(f"{share:.0%} swapped", leakage(share, k)) for share in (0.05, 0.2, 0.5)],
    }  # fmt: skip
    base = evaluator.evaluate_images(images, labels)["metrics"]
    print("undamaged: " + ", ".join(f"{name} {base[name]['generated']:.3f}" for name in METRICS), flush=True)
    rows: dict[str, Any] = {"undamaged": {name: base[name] for name in METRICS}}
    verdicts: dict[str, dict[str, bool]] = {}
    for kind, levels in damages.items():
        for level, damage in levels:
            damaged = evaluator.evaluate_images(*damage(images, labels, rng))["metrics"]
            rows[f"{kind}: {level}"] = {name: damaged[name] for name in METRICS}
            print(f"{kind}, {level}: " + ", ".join(f"{name} {damaged[name]['generated']:.3f}" for name in METRICS),
                  flush=True)  # fmt: skip
        strongest = rows[f"{kind}: {levels[-1][0]}"]
        verdicts[kind] = {name: moved(name, base[name], strongest[name]) for name in METRICS}
    deaf = {kind: [name for name in OWN[kind] if not verdicts[kind][name]] for kind in OWN}
    result = {"machine": measured_on, "dataset": args.dataset, "num": len(labels), "rows": rows,
              "moved_at_the_strongest_level": verdicts, "own_metrics": OWN, "not_responding": deaf}  # fmt: skip
    name = Path(args.dataset).name if "/" in args.dataset else args.dataset
    out = REPO / "benchmarks" / "results" / f"metric-calibration-{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, list(damages), name, out.with_suffix(".png"))
    print(f"not responding to their own damage: {deaf}\nwrote {out}")


if __name__ == "__main__":
    main()
