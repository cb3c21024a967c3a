"""Metric math on cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from acgan.evaluation.metrics import (
    classifier_score,
    conditional_accuracy,
    frechet_distance,
    frechet_distance_of,
    mean_pairwise_ms_ssim,
    ms_ssim,
    nearest_neighbour_distances,
    precision_recall_density_coverage,
)


def test_frechet_distance_of_identical_sets_is_zero() -> None:
    x = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    assert frechet_distance_of(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_the_closed_form_for_gaussians() -> None:
    # Diagonal covariances: FD = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    # A rotated (non-diagonal) pair: FD is invariant to rotating both distributions.
    theta = 0.7
    rotation = np.array([[math.cos(theta), -math.sin(theta), 0], [math.sin(theta), math.cos(theta), 0], [0, 0, 1]])
    fd_rotated = frechet_distance(rotation @ mu1, rotation @ np.diag(a) @ rotation.T, rotation @ mu2,
                                  rotation @ np.diag(b) @ rotation.T)  # fmt: skip
    assert fd_rotated == pytest.approx(expected, rel=1e-8)
    # Singular covariances (fewer samples than dimensions, as per class in a small evaluation): the other side's
    # Cholesky factor, or the square root when both are singular, give the same closed form.
    for a_side, b_side in (([0.0, 4.0, 9.0], b), (a, [4.0, 0.0, 9.0]), ([0.0, 4.0, 9.0], [4.0, 0.0, 9.0])):
        s1, s2 = np.array(a_side), np.array(b_side)
        closed = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
        assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(closed, rel=1e-10)
    # Sampled Gaussians approach the closed form.
    rng = torch.Generator().manual_seed(1)
    x = torch.randn(200_000, 3, generator=rng, dtype=torch.float64) * torch.tensor(np.sqrt(a)) + torch.tensor(mu1)
    y = torch.randn(200_000, 3, generator=rng, dtype=torch.float64) * torch.tensor(np.sqrt(b)) + torch.tensor(mu2)
    assert frechet_distance_of(x, y) == pytest.approx(expected, rel=0.02)


def test_precision_recall_of_a_set_against_itself_and_a_disjoint_set() -> None:
    x = torch.randn(300, 4, generator=torch.Generator().manual_seed(0))
    same = precision_recall_density_coverage(x, x, k=5)
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    far = precision_recall_density_coverage(x, x + 100.0, k=5)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_precision_high_recall_low_for_a_collapsed_generator() -> None:
    real = torch.randn(400, 2, generator=torch.Generator().manual_seed(0))
    collapsed = torch.randn(400, 2, generator=torch.Generator().manual_seed(1)) * 0.05  # all near the mode
    metrics = precision_recall_density_coverage(real, collapsed, k=5)
    assert metrics["precision"] > 0.95 and metrics["recall"] < 0.2 and metrics["coverage"] < 0.2


def test_ms_ssim_of_an_image_with_itself_is_one_and_drops_for_different_images() -> None:
    rng = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 28, 28, generator=rng) * 2 - 1
    torch.testing.assert_close(ms_ssim(x, x), torch.ones(4, dtype=torch.float64))
    y = torch.rand(4, 1, 28, 28, generator=rng) * 2 - 1
    assert float(ms_ssim(x, y).max()) < 0.2
    noisy = (x + 0.1 * torch.randn(4, 1, 28, 28, generator=rng)).clamp(-1, 1)
    assert 0.2 < float(ms_ssim(x, noisy).mean()) < 1.0
    same_image_pairs = x[:1].repeat(10, 1, 1, 1)
    assert mean_pairwise_ms_ssim(same_image_pairs, 20, torch.Generator().manual_seed(0)) == pytest.approx(1.0)


def test_conditional_accuracy_and_confusion() -> None:
    probs = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.1, 0.7, 0.2], [0.0, 0.0, 1.0]])
    requested = torch.tensor([0, 1, 2, 2])
    overall, per_class, confusion = conditional_accuracy(probs, requested, 3)
    assert overall == 0.75 and per_class == [1.0, 1.0, 0.5]
    assert confusion == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_classifier_score_bounds() -> None:
    confident_balanced = torch.eye(10).repeat(5, 1)
    assert classifier_score(confident_balanced) == pytest.approx(10.0, rel=1e-6)
    assert classifier_score(torch.full((20, 10), 0.1)) == pytest.approx(1.0, rel=1e-6)
    all_same_class = torch.zeros(20, 10)
    all_same_class[:, 3] = 1
    assert classifier_score(all_same_class) == pytest.approx(1.0, rel=1e-6)


def test_nearest_neighbour_distance() -> None:
    references = torch.full((3, 1, 2, 2), -1.0)
    references[1] = 1.0
    queries = torch.full((2, 1, 2, 2), -1.0)
    queries[1, 0, 0, 0] = 0.0  # one pixel at 0.5 in [0, 1] units
    torch.testing.assert_close(nearest_neighbour_distances(queries, references), torch.tensor([0.0, 0.5]))


@pytest.mark.parametrize("side", [4, 8, 16, 28, 32, 64])
def test_ms_ssim_at_every_resolution(side: int) -> None:
    """Small images use the scales that fit (16 px crashed inside conv2d before); 28 px keeps its three scales."""
    rng = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, side, side, generator=rng) * 2 - 1
    y = torch.rand(3, 3, side, side, generator=rng) * 2 - 1
    torch.testing.assert_close(ms_ssim(x, x), torch.ones(3, dtype=torch.float64))
    assert float(ms_ssim(x, y).max()) < 0.5


def test_frechet_distance_of_too_few_rows_is_nan_not_a_crash() -> None:
    rng = torch.Generator().manual_seed(0)
    many = torch.randn(50, 8, generator=rng)
    assert math.isnan(frechet_distance_of(many[:1], many)) and math.isnan(frechet_distance_of(many, many[:0]))
    assert math.isnan(frechet_distance_of(many, torch.full((5, 8), math.inf)))
    assert frechet_distance_of(many[:2], many) >= 0


def test_prdc_with_k_rows_or_fewer_is_nan_not_a_crash() -> None:
    points = torch.randn(20, 4, generator=torch.Generator().manual_seed(0))
    assert all(math.isnan(v) for v in precision_recall_density_coverage(points, points[:5], k=5).values())
    assert all(math.isnan(v) for v in precision_recall_density_coverage(points[:3], points, k=5).values())
    assert not any(math.isnan(v) for v in precision_recall_density_coverage(points, points[:6], k=5).values())


def test_diversity_verdicts_are_calibrated_by_real_pairs_spread() -> None:
    from acgan.evaluation.metrics import diversity_verdict

    rng = torch.Generator().manual_seed(0)
    real = 0.3 + 0.1 * torch.randn(200, generator=rng, dtype=torch.float64)  # real same-class pairs
    same = 0.3 + 0.1 * torch.randn(200, generator=rng, dtype=torch.float64)  # samples as varied as real data
    slightly = 0.34 + 0.1 * torch.randn(200, generator=rng, dtype=torch.float64)  # +0.04: beyond noise, not collapse
    alike = 0.6 + 0.05 * torch.randn(200, generator=rng, dtype=torch.float64)  # above real's 90th percentile
    assert diversity_verdict(same, real) == "as varied"
    assert diversity_verdict(0.32 + 0.1 * torch.randn(200, generator=rng, dtype=torch.float64), real) == "as varied"
    assert diversity_verdict(slightly, real) == "less varied"
    assert diversity_verdict(alike, real) == "collapsed"
    assert diversity_verdict(torch.empty(0, dtype=torch.float64), real) == "n/a"


def test_a_collapsed_image_set_is_called_collapsed_and_real_data_is_not() -> None:
    """Through MS-SSIM: smooth random 'real' images against a second draw of them and against one image repeated."""
    from acgan.evaluation.metrics import diversity_verdict, pairwise_ms_ssim

    rng = torch.Generator().manual_seed(0)

    def smooth(n: int) -> torch.Tensor:
        coarse = torch.rand(n, 1, 7, 7, generator=rng) * 2 - 1
        return torch.nn.functional.interpolate(coarse, size=28, mode="bilinear", align_corners=False)

    real, other_real = smooth(300), smooth(300)
    one = smooth(1).repeat(300, 1, 1, 1)
    collapsed = (one + 0.05 * torch.randn(one.shape, generator=rng)).clamp(-1, 1)
    pairs = {name: pairwise_ms_ssim(images, 200, torch.Generator().manual_seed(1))
             for name, images in (("real", real), ("other", other_real), ("collapsed", collapsed))}  # fmt: skip
    assert diversity_verdict(pairs["other"], pairs["real"]) == "as varied"
    assert diversity_verdict(pairs["collapsed"], pairs["real"]) == "collapsed"
