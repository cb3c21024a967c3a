"""Run an exported ONNX generator with ONNX Runtime behind the same Generator interface as PyTorch weights.

`acgan generate` and `acgan serve` load `.onnx` files through this: the facts stored by `acgan export`
(class names, model config, data set, training) rebuild the TrainedGenerator, and `forward(z, labels)`
runs the ONNX graph, so the same seeds give the same images (within the export's 1e-4 check).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from acgan.data.dataset import DatasetInfo
from acgan.errors import CheckpointError
from acgan.models.networks import Generator, ModelConfig


class OnnxGenerator(Generator):
    """G(z, labels) computed by an ONNX Runtime session on the CPU; (N, C, H, W) float32 in [-1, 1]."""

    fixed_precision = "fp32"  # the exported graph's arithmetic; autocast does not reach it

    def __init__(self, config: ModelConfig, session: Any) -> None:
        super().__init__(config, nn.Identity(), nn.Sequential())
        self.session = session
        self._anchor = nn.Parameter(torch.zeros(0), requires_grad=False)  # sampling reads the device from it

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        feed = {"z": z.detach().float().cpu().numpy(), "labels": labels.detach().cpu().numpy().astype(np.int64)}
        return torch.from_numpy(np.asarray(self.session.run(["images"], feed)[0]))


def onnx_session(path: Path) -> Any:
    """An ONNX Runtime session on the CPU whose threads sleep when idle (by default they spin for a while after
    each call: a loaded generator kept two cores busy between requests and slowed everything else)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: a foreign graph's warnings would come before our one line
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def load_onnx_generator(path: Path) -> tuple[OnnxGenerator, DatasetInfo, int, dict[str, Any]]:
    """(generator, data set facts, step, training facts) from a file written by `acgan export`."""
    try:
        import onnxruntime  # noqa: F401  # present? (one line if not, before any work)
    except ImportError:
        raise CheckpointError("running an .onnx generator needs onnxruntime: pip install 'acgan[export]'") from None
    try:
        session = onnx_session(path)
        meta = session.get_modelmeta().custom_metadata_map
        config = ModelConfig.from_dict(json.loads(meta["model_config"]))
        info = DatasetInfo.from_dict(json.loads(meta["dataset"]))
        step, training = int(meta.get("step", 0)), json.loads(meta.get("training", "{}"))
    except KeyError as exc:
        raise CheckpointError(
            f"{path}: not an acgan export (no {exc} in its metadata); export with acgan export"
        ) from None
    except Exception as exc:  # onnxruntime raises its own exception types for damaged files
        raise CheckpointError(f"{path}: cannot load the ONNX model ({str(exc).splitlines()[0][:120]})") from None
    problem = graph_problem(session, config)
    if problem:
        raise CheckpointError(f"{path}: not an acgan generator export: {problem}")
    return OnnxGenerator(config, session), info, step, training


# What `acgan export` writes: (name, element type, rank) of the graph's inputs and its output.
INPUTS = {"z": ("tensor(float)", 2), "labels": ("tensor(int64)", 1)}
OUTPUT = ("images", "tensor(float)", 4)
RANGE_SLACK = 1e-3  # tanh's outputs, with room for the graph's rounding


def graph_problem(session: Any, config: ModelConfig) -> str | None:
    """Why `session` is not the generator its metadata describes (one phrase), or None: the graph's input names,
    types and ranks, its output, and a one-image run checked for the image shape and the [-1, 1] range. Metadata
    can be copied onto any file; the graph cannot pretend."""
    inputs = {arg.name: (arg.type, len(arg.shape)) for arg in session.get_inputs()}
    if inputs != INPUTS:
        described = ", ".join(f"{name} {kind} rank {rank}" for name, (kind, rank) in sorted(inputs.items()))
        return f"its inputs are {described or 'none'}; an export takes z (float, rank 2) and labels (int64, rank 1)"
    outputs = {arg.name: (arg.type, len(arg.shape)) for arg in session.get_outputs()}
    if outputs.get(OUTPUT[0]) != OUTPUT[1:]:
        return f"it has no output 'images' (float, rank 4) (outputs: {', '.join(outputs) or 'none'})"
    try:
        (images,) = session.run([OUTPUT[0]], {"z": np.zeros((1, config.z_dim), np.float32),
                                              "labels": np.zeros(1, np.int64)})  # fmt: skip
    except Exception as exc:  # the graph cannot run on its declared inputs (onnxruntime's own exception types)
        return f"it fails on one latent of size {config.z_dim} ({str(exc).splitlines()[0][:100]})"
    expected = (1, config.channels, config.resolution, config.resolution)
    images = np.asarray(images)
    if images.shape != expected:
        return f"one latent gives an array of shape {images.shape}, not an image of shape {expected}"
    if not np.isfinite(images).all() or np.abs(images).max() > 1 + RANGE_SLACK:
        return "its images are not in [-1, 1]"
    return None
