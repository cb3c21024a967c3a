"""FID, KID and IS in the FID Inception-v3's feature space: the network's layout, TensorFlow's resize, the weights
file's checks and the plumbing, with randomly initialised weights saved to a file; the published weights where a
file is provided ($ACGAN_INCEPTION_WEIGHTS)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from acgan.data import load_dataset
from acgan.errors import AcganError
from acgan.evaluation import inception
from acgan.evaluation.inception import (
    WEIGHTS_ENV,
    WEIGHTS_FILE,
    WEIGHTS_SHA256,
    FidInception,
    inception_outputs,
    inception_report,
    load_inception,
    resize_bilinear_tf1,
    weights_path,
)
from acgan.evaluation.metrics import classifier_score, frechet_distance_of, kernel_distance
from tests.conftest import REPO_ROOT
from tests.helpers import cli_output, make_folder

SHARED = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised network of the same architecture, saved as the published file is (a state dict);
    He-initialised so that features keep their scale through the 94 layers (PyTorch's default shrinks them to
    one constant vector)."""
    torch.manual_seed(0)
    network = FidInception()
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(network.state_dict(), path)
    return path


def test_tensorflow_bilinear_resize_reads_input_position_i_times_in_over_out() -> None:
    row = torch.tensor([[[[0.0, 10.0]]]]).expand(1, 1, 2, 2)  # columns 0 and 10
    resized = resize_bilinear_tf1(row, 4)  # output column j reads input position j * 2 / 4: 0, 0.5, 1, 1.5
    assert resized[0, 0, 0].tolist() == [0.0, 5.0, 10.0, 10.0]  # the last column repeats at the edge
    image = torch.rand(2, 3, 7, 7)
    assert torch.equal(resize_bilinear_tf1(image, 7), image)


def test_the_network_has_the_published_files_layout() -> None:
    shapes = {name: tuple(t.shape) for name, t in FidInception().state_dict().items()}
    assert shapes["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
    assert shapes["Mixed_7c.branch_pool.conv.weight"] == (192, 2048, 1, 1)
    assert shapes["Mixed_6e.branch7x7dbl_5.conv.weight"] == (192, 192, 1, 7)
    assert shapes["fc.weight"] == (1008, 2048) and shapes["Mixed_5b.branch_pool.bn.running_var"] == (32,)
    features, logits = FidInception().eval()(torch.full((2, 3, 32, 32), 128.0))
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)


def test_the_weights_file_is_verified_and_its_absence_explained(
    random_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(AcganError, match=f"{WEIGHTS_FILE}.*{WEIGHTS_SHA256}.*https://"):
        weights_path(None)
    monkeypatch.setenv(WEIGHTS_ENV, str(random_weights))
    with pytest.raises(AcganError, match=r"SHA-256 .* is not that of"):
        weights_path(None)  # random weights are not the published file
    with pytest.raises(AcganError, match=r"SHA-256 .* is not that of"):
        load_inception(random_weights)
    load_inception(random_weights, expected_sha256=None)  # the layout fits
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3)}, other)
    with pytest.raises(AcganError, match="not the FID Inception-v3's weights"):
        load_inception(other, expected_sha256=None)
    monkeypatch.delenv(WEIGHTS_ENV)
    code, output = cli_output(["evaluate", "--checkpoint", str(tmp_path / "no-run"), "--inception"], capsys)
    assert code == 1 and len(output.strip().splitlines()) == 1 and WEIGHTS_FILE in output and WEIGHTS_SHA256 in output
    code, output = cli_output(["evaluate", "--checkpoint", str(tmp_path / "no-run"), "--inception-weights",
                               str(random_weights)], capsys)  # fmt: skip
    assert code == 1 and len(output.strip().splitlines()) == 1 and "is not that of" in output


def test_the_report_is_acgans_own_metrics_on_the_networks_features(
    random_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inception, "INPUT_SIZE", 75)  # the smallest input the network takes: 16x less work
    root = make_folder(tmp_path / "shapes", per_class=12)
    train, test = load_dataset(str(root), "train"), load_dataset(str(root), "test")
    network = load_inception(random_weights, expected_sha256=None)
    generated = train.batch(slice(0, 24)).flip(3)  # stand-in samples: mirrored training images
    report = inception_report(network, "random", generated, train, test, show_progress=False)
    features, logits = inception_outputs(network, generated)
    reference, _ = inception_outputs(network, train.batch(slice(0, len(train))))
    assert report["generated"]["fid"] == pytest.approx(frechet_distance_of(features, reference))
    assert report["generated"]["kid"] == pytest.approx(kernel_distance(features, reference, 100, 1000)[0])
    halves = [classifier_score(torch.softmax(logits[i : i + 2].double(), dim=1)) for i in range(0, 20, 2)]
    assert report["generated"]["inception_score"] == pytest.approx(sum(halves) / len(halves))  # 10 splits of 2
    assert report["reference_images"] == len(train) and report["real_images"] == len(test)
    calls = []
    monkeypatch.setattr(inception, "inception_outputs", lambda *a, **k: calls.append(1) or inception_outputs(*a, **k))
    again = inception_report(network, "random", generated, train, test, show_progress=False)
    assert again["generated"] == report["generated"] and len(calls) == 1  # the real images' outputs: from the cache
    assert report["real"]["fid"] > 1e-6 and report["generated"]["fid"] > 1e-6  # features that tell images apart


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get(WEIGHTS_ENV), reason=f"${WEIGHTS_ENV} not set: no published weights file")
def test_the_published_weights_score_real_cifar_images_as_papers_do() -> None:
    if not (SHARED / "cifar10-subset").is_dir():
        pytest.skip("../shared/data/cifar10-subset absent")
    network = load_inception(weights_path(None))  # verified by its SHA-256
    train = load_dataset(str(SHARED / "cifar10-subset"), "train", verify_checksums=False)
    test = load_dataset(str(SHARED / "cifar10-subset"), "test", verify_checksums=False)
    report = inception_report(network, WEIGHTS_SHA256, test.batch(slice(0, len(test))), train, test, False)
    assert report["generated"]["inception_score"] > 6  # real CIFAR-10 images score about 11 (fewer here: ~1,000)
    assert report["generated"]["fid"] < 60  # the test images against the training images: small, biased upward
