"""The calibration benchmark's damages and verdicts on tiny tensors (the benchmark itself runs the full evaluator)."""

from __future__ import annotations

import math
import sys

import torch

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from metric_calibration import blur, duplicates, keep_clusters, kmeans, leakage, moved, noise, worsening


def _images(n: int = 40, classes: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
    rng = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=rng) * 2 - 1, torch.arange(n) % classes, rng


def test_duplicates_keep_each_class_size_with_the_asked_share_distinct() -> None:
    images, labels, rng = _images()
    damaged, kept = duplicates(0.2)(images, labels, rng)
    assert damaged.shape == images.shape and torch.bincount(kept).tolist() == torch.bincount(labels).tolist()
    for c in range(4):
        assert torch.unique(damaged[kept == c], dim=0).shape[0] == 2  # 20% of 10 images


def test_leakage_swaps_about_the_share_and_never_to_the_same_class() -> None:
    images, labels, rng = _images(n=4000)
    same, swapped = leakage(0.2, 4)(images, labels, rng)
    assert torch.equal(same, images)
    changed = (swapped != labels).float().mean().item()
    assert abs(changed - 0.2) < 0.03 and int(swapped.max()) < 4 and int(swapped.min()) >= 0


def test_blur_keeps_a_flat_image_and_smooths_an_edge_and_noise_stays_in_range() -> None:
    flat = torch.full((1, 3, 9, 9), 0.25)
    labels, rng = torch.zeros(1, dtype=torch.long), torch.Generator().manual_seed(1)
    torch.testing.assert_close(blur(1.0)(flat, labels, rng)[0], flat)
    edge = torch.cat([torch.full((1, 1, 9, 4), -1.0), torch.full((1, 1, 9, 5), 1.0)], dim=3)
    smoothed = blur(1.0)(edge, labels, rng)[0]
    assert -1 < smoothed[0, 0, 4, 3] < smoothed[0, 0, 4, 4] < 1  # the step became a ramp
    noisy = noise(0.4)(edge, labels, rng)[0]
    assert noisy.min() >= -1 and noisy.max() <= 1 and not torch.equal(noisy, edge)


def test_keep_clusters_draws_only_from_the_kept_clusters() -> None:
    # two well-separated groups per class: keeping one cluster keeps one group
    rng = torch.Generator().manual_seed(2)
    features = torch.cat([torch.randn(20, 2, generator=rng), torch.randn(20, 2, generator=rng) + 50])
    clusters = kmeans(features, 2, rng)
    assert len(set(clusters[:20].tolist())) == 1 and set(clusters[:20].tolist()) != set(clusters[20:].tolist())
    images, labels = features[:, :, None, None], torch.zeros(40, dtype=torch.long)
    damaged, kept = keep_clusters(1, {0: clusters})(images, labels, rng)
    inside = (clusters == 0).nonzero().squeeze(1)
    assert kept.shape == labels.shape and all(any(torch.equal(x, images[i]) for i in inside) for x in damaged)


def test_a_metric_moved_only_beyond_its_interval_the_way_worse_means() -> None:
    base = {"generated": 0.9, "interval": [0.88, 0.92]}
    assert moved("conditional_accuracy", base, {"generated": 0.85})  # higher is better: fell below
    assert not moved("conditional_accuracy", base, {"generated": 0.89})  # inside the interval
    assert not moved("conditional_accuracy", base, {"generated": 0.95})  # better is not "moved"
    fd = {"generated": 3.0, "interval": [2.5, 3.5]}
    assert moved("fd", fd, {"generated": 4.0}) and not moved("fd", fd, {"generated": 2.0})
    assert not moved("fd", fd, {"generated": math.nan})
    assert worsening("fd", 2.0, 3.0) == 0.5 and worsening("recall", 0.8, 0.4) == 0.5
