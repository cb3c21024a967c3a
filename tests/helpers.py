"""Helpers shared by the tests: run the CLI in-process, generated image folders, a served checkpoint file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from acgan.checkpoint import safetensors_bytes
from acgan.cli import main
from acgan.data.dataset import DatasetInfo
from acgan.data.registry import FASHION_MNIST
from acgan.files import atomic_write_bytes
from acgan.models import ModelConfig, build_generator

COLOURS = ((220, 40, 40), (40, 200, 60), (50, 70, 230))
FASHION_INFO = DatasetInfo("fashion-mnist", 10, 1, 28, FASHION_MNIST.class_names)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `acgan ARGS` in-process: (exit code, stdout, stderr). A traceback fails the calling test."""
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, out + err
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    """A failure said in exactly one line, `acgan: error: ...`, holding every fragment."""
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("acgan: error:") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def make_image(label: int, index: int, size: int = 32, grey: bool = False) -> Image.Image:
    """A class-coloured square on a darker background, shifted by `index` (so images differ within a class)."""
    array = np.full((size, size, 3), 20, dtype=np.uint8)
    offset = index % max(1, size // 4)
    array[offset : offset + size // 2, offset : offset + size // 2] = COLOURS[label % len(COLOURS)]
    if grey:
        return Image.fromarray(array.mean(axis=2).astype(np.uint8), mode="L")
    return Image.fromarray(array)


def make_folder(root: Path, classes: tuple[str, ...] = ("circle", "square", "triangle"), per_class: int = 20,
                size: int = 32, grey: bool = False, split: bool = False) -> Path:  # fmt: skip
    """ROOT/<class>/*.png (or ROOT/train/ and ROOT/test/ with a quarter of the images in test)."""
    for label, name in enumerate(classes):
        for index in range(per_class):
            part = ("test" if index % 4 == 0 else "train") if split else ""
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            suffix = ".jpg" if index % 5 == 1 and not grey else ".png"
            make_image(label, index, size, grey).save(folder / f"{index:03d}{suffix}", quality=95)
    return root


def write_checkpoint(folder: Path, with_eval: bool = False, info: DatasetInfo = FASHION_INFO) -> Path:
    """A dcgan generator (random weights, BatchNorm statistics moved off their defaults) as generator.safetensors."""
    config = ModelConfig("dcgan", 100, info.num_classes, info.channels, info.resolution)
    generator = build_generator(config, seed=0)
    generator(torch.randn(32, 100), torch.arange(32) % info.num_classes)  # one train-mode pass: BatchNorm moves
    path = folder / "generator.safetensors"
    training = {"preset": "dcgan", "objective": "tac", "class_weight": 1.0, "spectral_norm": True}
    atomic_write_bytes(path, safetensors_bytes(generator, config, info, step=123, training_facts=training))
    if with_eval:
        report = {"num_samples": 1000, "metrics": {"conditional_accuracy": {"generated": 0.5, "real": 0.9}}}
        (folder / "eval.json").write_text(json.dumps(report))
    return path


def cli_output(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run `acgan ARGS` in-process: (exit code, stdout and stderr together)."""
    code, out, err = run_cli(args, capsys)
    return code, out + err


def forged_onnx(path: Path, trained: object, kind: str = "inputs") -> Path:
    """An ONNX file carrying a real export's metadata (copied from `trained`) on a graph that is not a generator:
    `inputs`: an input named x; `shape`: right inputs, images of the wrong shape; `range`: right shape, values 5."""
    import onnx
    from onnx import TensorProto, helper

    from acgan.export import export_metadata

    meta = export_metadata(trained)  # type: ignore[arg-type]
    z_dim = trained.generator.config.z_dim  # type: ignore[attr-defined]
    c, h, w = json.loads(meta["image_shape"])
    z = helper.make_tensor_value_info("x" if kind == "inputs" else "z", TensorProto.FLOAT, ["N", z_dim])
    labels = helper.make_tensor_value_info("labels", TensorProto.INT64, ["N"])
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", "a", "b", "c"])
    if kind == "range":
        constants = [helper.make_tensor("rest", TensorProto.INT64, [3], [c, h, w]),
                     helper.make_tensor("five", TensorProto.FLOAT, [1, 1, 1, 1], [5.0])]  # fmt: skip
        nodes = [helper.make_node("Shape", ["labels"], ["n"]),
                 helper.make_node("Concat", ["n", "rest"], ["shape"], axis=0),
                 helper.make_node("Expand", ["five", "shape"], ["images"])]  # fmt: skip
    else:  # (N, z_dim) -> (N, 1, 1, z_dim): the declared rank, not an image
        constants = [helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2])]
        nodes = [helper.make_node("Unsqueeze", [z.name, "axes"], ["images"])]
    graph = helper.make_graph(nodes, "forged", [z, labels], [images], initializer=constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path
