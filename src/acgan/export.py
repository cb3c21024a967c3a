"""Export a trained generator to ONNX or TorchScript, and check the export against PyTorch before keeping it.

The exported model takes `z` (N, z_dim) float32 and `labels` (N,) int64, any N, and returns images
(N, C, H, W) float32 in [-1, 1]. Class names, z size, image shape and the training facts travel inside
the file (ONNX metadata_props; TorchScript extra file `acgan.json`). Each export is verified on 64 fixed
latents (seed 0, every class in turn): ONNX Runtime (or the reloaded TorchScript module) must match
PyTorch within 1e-4, else the file is not written and the export fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from acgan.errors import AcganError
from acgan.files import written_aside
from acgan.onnx_backend import onnx_session
from acgan.sampling import TrainedGenerator, make_latents
from acgan.version import __version__

FORMATS = ("onnx", "torchscript")
TOLERANCE = 1e-4
CHECK_SIZE = 64
OPSET = 18


class _GeneratorGraph(nn.Module):
    """G(z, labels) -> images in eval mode: the function that is exported."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.generator(z, labels)  # (N, C, H, W) in [-1, 1]


def export_metadata(trained: TrainedGenerator) -> dict[str, str]:
    """String key-value facts stored in the exported file."""
    info, config = trained.info, trained.generator.config
    return {
        "acgan_version": __version__,
        "class_names": json.dumps(list(info.class_names)),
        "z_dim": str(config.z_dim),
        "image_shape": json.dumps([info.channels, info.resolution, info.resolution]),
        "dataset": json.dumps(info.to_dict()),
        "model_config": json.dumps(config.to_dict()),
        "training": json.dumps(trained.training_facts or {}),
        "step": str(trained.step),
        "inputs": "z: (N, z_dim) float32; labels: (N,) int64",
        "outputs": "images: (N, C, H, W) float32 in [-1, 1]",
    }


def check_inputs(trained: TrainedGenerator) -> tuple[torch.Tensor, torch.Tensor]:
    """The 64 fixed latents (seed 0) and labels (every class in turn) every export is checked on."""
    z = make_latents(CHECK_SIZE, trained.generator.config.z_dim, seed=0)  # (64, z_dim)
    labels = torch.arange(CHECK_SIZE) % trained.info.num_classes  # (64,)
    return z, labels


def export_generator(trained: TrainedGenerator, fmt: str, output: Path) -> dict[str, Any]:
    """Write `trained` to `output` as `fmt` after verifying it; return {"max_abs_diff", "format", "path"}."""
    if fmt not in FORMATS:
        raise AcganError(f"unknown export format '{fmt}' (known: {', '.join(FORMATS)})")
    if output.is_dir() or not output.name or output.name.endswith(("/", os.sep)):
        raise AcganError(f"--output must be a file to write (e.g. g.onnx or g.pt), not the folder {output}")
    if trained.source.suffix.lower() == ".onnx":
        raise AcganError(f"{trained.source} is already an export; export from the checkpoint it came from")
    graph = _GeneratorGraph(trained.generator).to("cpu").float().eval()
    z, labels = check_inputs(trained)
    with torch.inference_mode():
        expected = graph(z, labels).numpy()  # (64, C, H, W)
    output.parent.mkdir(parents=True, exist_ok=True)
    with written_aside(output) as tmp:  # a failed check raises here: nothing is written
        if fmt == "onnx":
            actual = _export_onnx(graph, z, labels, tmp, export_metadata(trained))
        else:
            actual = _export_torchscript(graph, z, labels, tmp, export_metadata(trained))
        difference = float(np.abs(actual - expected).max())
        if not difference <= TOLERANCE:
            raise AcganError(
                f"the {fmt} export differs from PyTorch by {difference:.2e} (more than {TOLERANCE:g}) on "
                f"{CHECK_SIZE} fixed latents; not written"
            )
    return {"format": fmt, "path": str(output), "max_abs_diff": difference, "checked_images": CHECK_SIZE}


def _export_onnx(graph: nn.Module, z: torch.Tensor, labels: torch.Tensor, path: Path,
                 metadata: dict[str, str]) -> np.ndarray:  # fmt: skip
    """torch.onnx (the dynamo exporter) with a dynamic batch; metadata added; run back with ONNX Runtime."""
    try:
        import onnx
        import onnxruntime  # noqa: F401  # present? (one line if not, before any work)
    except ImportError:
        raise AcganError("ONNX export needs onnx, onnxscript and onnxruntime: pip install 'acgan[export]'") from None
    batch = torch.export.Dim("batch")
    chatter = io.StringIO()  # the exporter prints its progress; the command prints one line of its own
    with warnings.catch_warnings(), contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        torch.onnx.export(graph, (z[:2], labels[:2]), str(path), input_names=["z", "labels"],
                          output_names=["images"], dynamic_shapes=({0: batch}, {0: batch}), opset_version=OPSET,
                          dynamo=True, external_data=False, verbose=False)  # fmt: skip
    model = onnx.load(str(path))
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    session = onnx_session(path)
    return np.asarray(session.run(["images"], {"z": z.numpy(), "labels": labels.numpy()})[0])


def _export_torchscript(graph: nn.Module, z: torch.Tensor, labels: torch.Tensor, path: Path,
                        metadata: dict[str, str]) -> np.ndarray:  # fmt: skip
    """torch.jit.trace (shapes are not baked in: batch stays dynamic), saved with acgan.json, then reloaded."""
    with warnings.catch_warnings(), torch.inference_mode(False):
        warnings.simplefilter("ignore")
        with torch.no_grad():  # the export samples; training-only paths (gradient layouts) stay out of the graph
            traced = torch.jit.trace(graph, (z[:2], labels[:2]))
        torch.jit.save(traced, str(path), _extra_files={"acgan.json": json.dumps(metadata)})
        loaded = torch.jit.load(str(path))
        with torch.no_grad():
            return loaded(z, labels).numpy()
