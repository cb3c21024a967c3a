"""Measuring any generator: KID, bootstrap intervals, the k-NN memberships, `evaluate --samples` (npz, folders, ONNX),
the Python API and the Classification Accuracy Score."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from acgan.config import TrainConfig
from acgan.evaluation.intervals import (
    BlockMoments,
    bootstrap,
    frechet_interval,
    percentile_interval,
    real_blocks,
    resample_counts,
    weighted_stats,
)
from acgan.evaluation.metrics import (
    feature_stats,
    kernel_distance,
    kth_neighbour_radius,
    prdc_memberships,
)
from acgan.training import train
from tests.helpers import assert_one_line_error, make_folder, run_cli


def test_kid_is_the_unbiased_mmd_of_the_cubic_kernel_by_hand() -> None:
    a = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    b = torch.randn(6, 4, generator=torch.Generator().manual_seed(1)) + 0.5

    def k(x: torch.Tensor, y: torch.Tensor) -> float:
        return float((x.double() @ y.double() / 4 + 1) ** 3)

    same = sum(k(a[i], a[j]) + k(b[i], b[j]) for i in range(6) for j in range(6) if i != j) / 30
    cross = sum(k(a[i], b[j]) for i in range(6) for j in range(6)) / 36
    mean, _ = kernel_distance(a, b, subsets=3, subset_size=6)  # whole sets: every subset is the same
    assert mean == pytest.approx(same - 2 * cross)
    rng = torch.Generator().manual_seed(5)
    x, y = torch.randn(300, 4, generator=rng), torch.randn(300, 4, generator=rng)  # one distribution, two draws
    near, _ = kernel_distance(x, y, subsets=5, subset_size=300)
    far, _ = kernel_distance(x, y + 1.0, subsets=5, subset_size=300)
    assert abs(near) < 0.05 * far
    assert all(math.isnan(v) for v in kernel_distance(a[:1], b))


def test_weighted_statistics_equal_the_statistics_of_the_repeated_rows() -> None:
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(2))
    counts = torch.tensor([0, 2, 1, 0, 3, 1, 0])
    mean, cov = weighted_stats(x, counts)
    expected_mean, expected_cov = feature_stats(x.repeat_interleave(counts, dim=0))
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-6)
    np.testing.assert_allclose(cov, expected_cov, rtol=1e-4, atol=1e-6)
    # features far from zero (as after a ReLU): centring once keeps the float32 products exact enough
    far = torch.rand(2000, 16, generator=torch.Generator().manual_seed(3)) + 100
    heavy = resample_counts(2000, torch.Generator().manual_seed(4))
    mean, cov = weighted_stats(far, heavy)
    expected_mean, expected_cov = feature_stats(far.repeat_interleave(heavy, dim=0))
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-8)  # 2e-9 seen on an AMD EPYC
    np.testing.assert_allclose(cov, expected_cov, rtol=1e-4, atol=1e-7)
    assert int(resample_counts(50, torch.Generator().manual_seed(0)).sum()) == 50


def test_percentile_interval_and_a_frechet_interval_around_its_value() -> None:
    assert percentile_interval(list(map(float, range(101)))) == (pytest.approx(2.5), pytest.approx(97.5))
    assert all(math.isnan(v) for v in percentile_interval([math.nan]))
    rng = torch.Generator().manual_seed(3)
    a, b = torch.randn(400, 4, generator=rng), torch.randn(600, 4, generator=rng) + 0.3
    from acgan.evaluation.metrics import frechet_distance_of

    low, high = frechet_interval(a, real_blocks(b), resamples=100)
    assert low < frechet_distance_of(a, b) < high and high - low < 0.5


def test_block_moments_are_the_rows_statistics_and_resample_like_rows() -> None:
    x = torch.randn(600, 3, generator=torch.Generator().manual_seed(6)) + 50  # far from zero, as after a ReLU
    every = torch.ones(600, dtype=torch.long)
    for blocks in (600, 40):  # a block per row, and blocks of 15 rows: all drawn once, the statistics of all rows
        mean, cov = BlockMoments(x, blocks).stats(torch.ones(blocks, dtype=torch.long))
        expected_mean, expected_cov = weighted_stats(x, every)
        np.testing.assert_allclose(mean, expected_mean, rtol=1e-8)  # float32 sums of centred rows
        np.testing.assert_allclose(cov, expected_cov, rtol=1e-4, atol=1e-6)
    single = BlockMoments(x, 600)  # a block per row: a draw of blocks is a draw of rows, the same statistics
    counts = resample_counts(600, torch.Generator().manual_seed(7))
    order = torch.randperm(600, generator=torch.Generator().manual_seed(0))  # the blocks' rows, as BlockMoments drew
    np.testing.assert_allclose(single.stats(counts)[1], weighted_stats(x[order], counts)[1], rtol=1e-4, atol=1e-6)
    # blocks of 15 independent rows: the bootstrap spread of the mean is that of resampling the rows
    by_rows = bootstrap(lambda rng: float(weighted_stats(x, resample_counts(600, rng))[0][0]), 400)
    grouped = BlockMoments(x, 40)
    by_blocks = bootstrap(lambda rng: float(grouped.stats(resample_counts(40, rng))[0][0]), 400)
    assert 0.7 < (by_blocks[1] - by_blocks[0]) / (by_rows[1] - by_rows[0]) < 1.4


def test_memberships_give_the_manifold_metrics_by_their_definitions() -> None:
    rng = torch.Generator().manual_seed(4)
    real, fake = torch.randn(40, 3, generator=rng), torch.randn(30, 3, generator=rng) * 1.5
    members = prdc_memberships(real, fake, k=3)
    real_radius, fake_radius = kth_neighbour_radius(real, 3), kth_neighbour_radius(fake, 3)
    distances = torch.cdist(real, fake)
    inside = distances < real_radius[:, None]
    expected = {"precision": float(inside.any(0).double().mean()),
                "recall": float((distances < fake_radius[None, :]).any(1).double().mean()),
                "density": float(inside.double().sum(0).mean() / 3),
                "coverage": float((distances.min(1).values < real_radius).double().mean())}  # fmt: skip
    assert members.values() == pytest.approx(expected)
    only_first = torch.zeros(30, dtype=torch.int64)
    only_first[0] = 30  # a resample of one fake, thirty times
    assert members.values(only_first)["coverage"] == pytest.approx(float(inside[:, 0].double().mean()))


def test_each_manifold_metric_lies_inside_its_own_interval() -> None:
    # Recall and coverage are unions over the generated points: resampling those (a resample holds ~63% of them)
    # read low, and the intervals missed their own values. Samples and real points from one distribution.
    from acgan.evaluation.intervals import membership_intervals

    rng = torch.Generator().manual_seed(5)
    members = prdc_memberships(torch.randn(600, 8, generator=rng), torch.randn(600, 8, generator=rng), k=5)
    values, intervals = members.values(), membership_intervals(members, resamples=100)
    assert set(intervals) == set(values)
    for name, (low, high) in intervals.items():
        assert low <= values[name] <= high, (name, low, values[name], high)
        assert high - low < 0.15, name


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("judge")
    folder = make_folder(root / "shapes", per_class=24, size=16)
    run = root / "run"
    train(TrainConfig(dataset=str(folder), batch_size=8, width=4, steps=2, epochs=None, device="cpu", precision="fp32",
                      tensorboard=False), run, show_progress=False)  # fmt: skip
    return folder, run


@pytest.mark.slow
def test_evaluate_samples_from_npz_folders_and_onnx_gives_the_checkpoints_report(
    shapes_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, run = shapes_run
    assert run_cli(["generate", "--checkpoint", str(run), "--num", "30", "--output", str(tmp_path / "s.npz")],
                   capsys)[0] == 0  # fmt: skip
    assert run_cli(["generate", "--checkpoint", str(run), "--num", "30", "--output", f"{tmp_path}/pngs/"],
                   capsys)[0] == 0  # fmt: skip
    assert run_cli(["export", "--checkpoint", str(run), "--output", str(tmp_path / "g.onnx")], capsys)[0] == 0
    reports = {}
    for name in ("s.npz", "pngs", "g.onnx"):
        code, out, err = run_cli(["evaluate", "--samples", str(tmp_path / name), "--dataset", str(folder), "--num",
                                  "30", "--json"], capsys)  # fmt: skip
        assert code == 0, err
        reports[name] = json.loads(out)
    for report in reports.values():
        assert set(report["metrics"]) >= {"conditional_accuracy", "fd", "intra_fd", "kid", "intra_kid", "recall"}
        low, high = report["metrics"]["fd"]["interval"]
        assert low <= high and report["num_samples"] == 30
    same = reports["s.npz"]["metrics"]["conditional_accuracy"]["generated"]
    assert reports["pngs"]["metrics"]["conditional_accuracy"]["generated"] == pytest.approx(same)  # same images
    assert (tmp_path / "s-eval" / "eval.json").is_file() and (tmp_path / "pngs" / "eval.json").is_file()


@pytest.mark.slow
def test_evaluate_samples_refuses_what_it_cannot_judge_in_one_line(
    shapes_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, _ = shapes_run
    good = np.zeros((6, 16, 16, 3), np.uint8)
    cases = {
        "wrong-shape.npz": {"images": np.zeros((6, 28, 28, 3), np.uint8), "labels": np.arange(6) % 3},
        "unknown-class.npz": {"images": good, "labels": np.arange(6) % 3, "class_names": np.array(["a", "b", "c"])},
        "too-few.npz": {"images": good[:4], "labels": np.array([0, 0, 1, 2])},
        "no-labels.npz": {"images": good},
    }
    messages = {"wrong-shape.npz": "16x16 with 3 channel", "unknown-class.npz": "'a' is not a class",
                "too-few.npz": "at least 2 samples", "no-labels.npz": "needs arrays 'images' and 'labels'"}  # fmt: skip
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
        code, _, err = run_cli(["evaluate", "--samples", str(tmp_path / name), "--dataset", str(folder)], capsys)
        assert_one_line_error(code, err, messages[name])
    code, _, err = run_cli(["evaluate", "--samples", str(tmp_path / "too-few.npz")], capsys)
    assert_one_line_error(code, err, "--samples needs --dataset")


@pytest.mark.slow
def test_the_python_api_and_the_classification_accuracy_score(shapes_run: tuple[Path, Path]) -> None:
    import acgan

    folder, run = shapes_run
    images = acgan.load_generator(run).sample(torch.arange(30) % 3, seed=0)  # (30, 3, 16, 16) in [-1, 1]
    names = [["circle", "square", "triangle"][i % 3] for i in range(30)]
    report = acgan.evaluate_samples(images, names, dataset=str(folder), cas=True)
    assert 0 <= report["cas"]["generated"] <= 1 and 0 <= report["cas"]["real"] <= 1
    assert report["cas"]["real"] >= 0.9  # the real shapes are easy: a classifier trained on them recognises them
    again = acgan.evaluate_samples((images.permute(0, 2, 3, 1).numpy() + 1) / 2 * 2 - 1, np.arange(30) % 3,
                                   dataset=str(folder), intervals=False)  # fmt: skip
    assert "interval" not in again["metrics"]["fd"]
