"""ONNX and TorchScript export: checked by the command itself, readable by ONNX Runtime with the same images."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from acgan.cli import main
from acgan.errors import AcganError
from acgan.export import TOLERANCE, export_generator
from acgan.sampling import load_generator, make_latents
from tests.helpers import write_checkpoint


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("export"))


@pytest.mark.slow
def test_onnx_export_matches_pytorch_for_any_batch_and_carries_metadata(weights: Path, tmp_path: Path) -> None:
    target = tmp_path / "g.onnx"
    assert main(["export", "--checkpoint", str(weights), "--format", "onnx", "--output", str(target)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]  # one self-contained file, nothing left over
    metadata = {p.key: p.value for p in onnx.load(str(target)).metadata_props}
    assert json.loads(metadata["class_names"])[7] == "Sneaker" and metadata["z_dim"] == "100"
    assert json.loads(metadata["image_shape"]) == [1, 28, 28] and json.loads(metadata["training"])["objective"] == "tac"
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    trained = load_generator(weights)
    for n in (1, 3, 17):  # a dynamic batch
        z, labels = make_latents(n, 100, seed=5), torch.arange(n) % 10
        onnx_images = session.run(["images"], {"z": z.numpy(), "labels": labels.numpy()})[0]
        with torch.no_grad():
            torch_images = trained.generator.float()(z, labels).numpy()
        assert onnx_images.shape == (n, 1, 28, 28)
        assert np.abs(onnx_images - torch_images).max() <= TOLERANCE


def test_torchscript_export_reloads_with_its_metadata(weights: Path, tmp_path: Path) -> None:
    target = tmp_path / "g.pt"
    result = export_generator(load_generator(weights), "torchscript", target)
    assert result["max_abs_diff"] <= TOLERANCE
    extra = {"acgan.json": ""}
    module = torch.jit.load(str(target), _extra_files=extra)
    assert json.loads(json.loads(extra["acgan.json"])["class_names"])[0] == "T-shirt/top"
    assert module(torch.zeros(2, 100), torch.tensor([0, 9])).shape == (2, 1, 28, 28)


def test_an_export_that_does_not_match_is_not_written(weights: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr("acgan.export.TOLERANCE", -1.0)  # nothing can match: the check must refuse
    with pytest.raises(AcganError, match="differs from PyTorch"):
        export_generator(load_generator(weights), "onnx", tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_generate_and_serve_run_an_onnx_file_with_the_same_seeds(
    weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fastapi.testclient import TestClient

    from acgan.serving import ServeOptions, create_app

    model = tmp_path / "g.onnx"
    assert main(["export", "--checkpoint", str(weights), "--output", str(model)]) == 0
    for source, name in ((weights, "torch.npz"), (model, "onnx.npz")):
        assert main(["generate", "--checkpoint", str(source), "--label", "Sneaker", "--num", "6", "--seed", "4",
                     "--output", str(tmp_path / name)]) == 0  # fmt: skip
    from_torch, from_onnx = np.load(tmp_path / "torch.npz"), np.load(tmp_path / "onnx.npz")
    assert np.abs(from_torch["images"].astype(int) - from_onnx["images"].astype(int)).max() <= 1  # uint8 levels
    assert from_onnx["class_names"].tolist() == from_torch["class_names"].tolist()
    capsys.readouterr()
    assert main(["info", "--checkpoint", str(model)]) == 0
    assert "fashion-mnist" in capsys.readouterr().out
    with TestClient(create_app(load_generator(model), ServeOptions(max_images=16))) as client:
        assert client.get("/api/v1/info").json()["class_names"][7] == "Sneaker"
        response = client.get("/api/v1/generate", params={"label": "Sneaker", "n": 4, "seed": 4, "format": "npz"})
        served = np.load(io.BytesIO(response.content))["images"]
    assert np.abs(served.astype(int) - from_torch["images"][:4].astype(int)).max() <= 1
    assert main(["export", "--checkpoint", str(model), "--output", str(tmp_path / "again.onnx")]) == 1


def test_export_to_a_folder_is_a_clear_error(weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--checkpoint", str(weights), "--output", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("acgan: error: --output must be a file") and list(tmp_path.iterdir()) == []
