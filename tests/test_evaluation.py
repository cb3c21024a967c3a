"""Reference classifiers, the evaluator's report, `acgan evaluate`, and evaluation during training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from acgan.cli import main
from acgan.config import TrainConfig
from acgan.data import load_dataset
from acgan.data.dataset import DatasetInfo, ImageDataset, model_range_to_uint8
from acgan.evaluation.classifier import (
    ReferenceClassifier,
    classifier_accuracy,
    classifier_cache_path,
    load_reference_classifier,
    read_classifier,
    save_classifier,
    shipped_classifier_bytes,
    train_classifier,
)
from acgan.evaluation.evaluate import Evaluator, format_report
from acgan.models import ModelConfig, build_generator
from acgan.training import train
from tests.conftest import IDX_DATASET, idx_data, use_real_dataset

REAL_ACCURACY = 0.9 if IDX_DATASET == "mnist" else 0.8  # the shipped classifier on real test images, with margin


def _blobs(n: int, seed: int) -> ImageDataset:
    """Three easy classes: a bright square in one of three places on a dark background."""
    rng = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = torch.full((n, 1, 28, 28), -1.0) + 0.1 * torch.rand(n, 1, 28, 28, generator=rng)
    for i, label in enumerate(labels.tolist()):
        images[i, :, 2 + 8 * label : 10 + 8 * label, 8:20] = 1.0
    info = DatasetInfo("blobs", 3, 1, 28, ("top", "middle", "bottom"))
    pixels = model_range_to_uint8(images).permute(0, 2, 3, 1).contiguous()  # (N, H, W, 1) uint8
    return ImageDataset(pixels, labels, info)


def test_classifier_training_is_deterministic_and_learns(tmp_path: Path) -> None:
    data = _blobs(384, seed=0)
    first = train_classifier(data, epochs=1, batch_size=64, show_progress=False)
    second = train_classifier(data, epochs=1, batch_size=64, show_progress=False)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert classifier_accuracy(first, _blobs(90, seed=1)) == 1.0
    save_classifier(first, tmp_path / "c.safetensors", data.info, {"test_accuracy": 1.0})
    loaded, metadata = read_classifier((tmp_path / "c.safetensors").read_bytes(), "c")
    assert metadata["test_accuracy"] == 1.0 and metadata["config"]["num_classes"] == 3
    torch.testing.assert_close(loaded(data.images[:4])[1], first(data.images[:4])[1])


@pytest.mark.slow
def test_unknown_data_set_gets_a_classifier_trained_and_cached(tmp_path: Path) -> None:
    data = _blobs(256, seed=0)
    first, facts = load_reference_classifier(data.info, data, cache_dir=tmp_path, test=_blobs(30, seed=1),
                                             show_progress=False)  # fmt: skip
    assert facts["test_accuracy"] > 0.9 and facts["train_images"] == 256
    assert len(list(tmp_path.glob("blobs-28px-*.safetensors"))) == 1
    again, _ = load_reference_classifier(data.info, data, cache_dir=tmp_path)  # from the cache: not trained again
    other = _blobs(256, seed=5)  # other content under the same name: its own classifier, never a stale one
    assert classifier_cache_path(other, tmp_path) != classifier_cache_path(data, tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True))


def test_real_test_images_score_the_classifiers_test_accuracy() -> None:
    train_set, test_set = _blobs(300, seed=0), _blobs(60, seed=1)
    classifier = ReferenceClassifier(3)  # untrained on purpose: the identity must hold for any classifier
    evaluator = Evaluator(train_set.info, classifier, train_set, test_set)
    reference = evaluator.reference(len(test_set))
    assert reference["conditional_accuracy"] == pytest.approx(classifier_accuracy(classifier, test_set))


def test_report_lays_every_metric_beside_its_real_value() -> None:
    train_set, test_set = _blobs(300, seed=0), _blobs(60, seed=1)
    classifier = train_classifier(train_set, epochs=1, batch_size=50, show_progress=False)
    evaluator = Evaluator(train_set.info, classifier, train_set, test_set)
    generator = build_generator(ModelConfig("dcgan", num_classes=3))  # untrained: noise
    report = evaluator.evaluate(generator, num=60, seed=0)
    assert report["num_samples"] == 60
    assert set(report["metrics"]) >= {"conditional_accuracy", "fd", "intra_fd", "classifier_score", "precision",
                                      "recall", "density", "coverage", "ms_ssim", "nn_distance_median"}  # fmt: skip
    real = report["metrics"]["conditional_accuracy"]["real"]
    assert real == 1.0 and report["metrics"]["fd"]["generated"] > report["metrics"]["fd"]["real"]
    assert len(report["per_class"]) == 3 and len(report["confusion"]) == 3
    assert sum(map(sum, report["confusion"])) == 60
    table = format_report(report)
    assert "conditional accuracy" in table and "middle" in table
    assert (
        report["classifier"]["test_accuracy"] == real and "reference classifier (small): test accuracy 1.000" in table
    )
    # Generating the real test images themselves reproduces the real row.
    evaluator_again = Evaluator(train_set.info, classifier, train_set, test_set)
    measured = evaluator_again._measure(test_set.images, test_set.labels)
    assert measured["conditional_accuracy"] == pytest.approx(real)


@pytest.mark.parametrize(("dataset", "minimum"), [("mnist", 0.99), ("fashion-mnist", 0.91)])
def test_shipped_classifier_weights_reach_their_accuracy(
    monkeypatch: pytest.MonkeyPatch, dataset: str, minimum: float
) -> None:
    use_real_dataset(dataset, monkeypatch)
    data = shipped_classifier_bytes(dataset)
    assert data is not None and len(data) < 2_000_000
    classifier, metadata = read_classifier(data, dataset)
    accuracy = classifier_accuracy(classifier, load_dataset(dataset, "test"))
    assert accuracy >= minimum
    assert accuracy == pytest.approx(metadata["test_accuracy"], abs=1e-4)
    assert metadata["command"].startswith(f"acgan classifier train --dataset {dataset}")


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short run on real data with quick evaluations every epoch (MNIST, else Debian's Fashion-MNIST; or skipped)."""
    found = idx_data()
    if found is None:
        pytest.skip("no real IDX data: provide ../shared/data or apt-get install dataset-fashion-mnist")
    name, root = found
    run = tmp_path_factory.mktemp("eval") / "run"
    config = TrainConfig(dataset=name, limit=96, batch_size=16, epochs=3, eval_every=1, eval_samples=100,
                         best_metric="conditional_accuracy", data_dir=str(root), device="cpu")  # fmt: skip
    train(config, run, show_progress=False)
    return run


@pytest.mark.slow
def test_training_logs_evaluations_and_keeps_the_best(mnist_run: Path) -> None:
    records = [json.loads(x) for x in (mnist_run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r.get("kind") == "eval"]
    assert [r["step"] for r in evals] == [6, 12, 18]
    assert all(0 <= r["conditional_accuracy"] <= 1 and r["real"]["conditional_accuracy"] > REAL_ACCURACY for r in evals)
    for r in evals:  # each headline metric's 95% interval, around its value
        assert {"conditional_accuracy", "fd", "intra_fd", "kid", "recall"} <= set(r["intervals"])
        low, high = r["intervals"]["fd"]
        assert low <= r["fd"] <= high or abs(r["fd"] - (low + high) / 2) < high - low
    best = json.loads((mnist_run / "checkpoints" / "best.json").read_text())
    best_eval = max(evals, key=lambda r: r["conditional_accuracy"])  # first maximum wins ties
    assert best["metric"] == "conditional_accuracy" and best["step"] == best_eval["step"]
    assert best["interval"] == best_eval["intervals"]["conditional_accuracy"]  # the best value's own error bar
    best_dir = mnist_run / "checkpoints" / (mnist_run / "checkpoints" / "best").read_text()
    assert best_dir.is_dir() and best_dir.name == f"step_{best['step']:08d}"
    assert (mnist_run / "eval.png").is_file()


@pytest.mark.slow
def test_evaluate_command_writes_report_and_plot(
    mnist_run: Path,
    idx_root: Path,
    session_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(session_cache))  # the training features the run's evaluations cached
    assert main(["evaluate", "--checkpoint", str(mnist_run), "--num", "200", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_samples"] == 200 and report["step"] == 18
    assert report["metrics"]["conditional_accuracy"]["real"] > REAL_ACCURACY
    assert (mnist_run / "eval.json").is_file() and (mnist_run / "confusion.png").is_file()
    assert main(["evaluate", "--checkpoint", str(mnist_run), "--num", "200"]) == 0
    out = capsys.readouterr().out
    assert "conditional accuracy" in out and "real data" in out


def test_source_collapse_warning() -> None:
    from acgan.evaluation.registry import is_better
    from acgan.training.monitor import source_collapse_warning

    assert source_collapse_warning(0.01, 0.02, 100) is not None
    assert source_collapse_warning(0.6, 0.02, 100) is None
    assert is_better("intra_fd", 1.0, 2.0) and not is_better("conditional_accuracy", 0.5, 0.9)


def test_too_few_samples_per_class_is_a_clear_error() -> None:
    from acgan.errors import AcganError

    train_set, test_set = _blobs(60, seed=0), _blobs(30, seed=1)
    evaluator = Evaluator(train_set.info, ReferenceClassifier(3), train_set, test_set)
    with pytest.raises(AcganError, match=r"at least 2 samples per class: num >= 6"):
        evaluator.evaluate(build_generator(ModelConfig("dcgan", num_classes=3)), num=5)


def test_evaluate_bad_input_gets_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from tests.helpers import assert_one_line_error

    code = main(["evaluate", "--checkpoint", str(tmp_path / "missing")])
    assert_one_line_error(code, capsys.readouterr().err, "checkpoint not found")
    code = main(["evaluate", "--checkpoint", str(tmp_path), "--num", "5"])
    assert_one_line_error(code, capsys.readouterr().err, "--num")
