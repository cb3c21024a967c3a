"""In-memory labelled image data sets: the data tells the models their classes, channels and resolution."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acgan.data.idx import parse_idx
from acgan.data.locate import locate_files, verify_file
from acgan.data.registry import DATASETS, SPLITS, DatasetSpec
from acgan.errors import DataError


@dataclass(frozen=True)
class DatasetInfo:
    """Facts about a data set that models, sampling and serving need (saved with every checkpoint)."""

    name: str
    num_classes: int
    channels: int
    resolution: int
    class_names: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "class_names": list(self.class_names)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        return cls(
            name=str(data["name"]),
            num_classes=int(data["num_classes"]),
            channels=int(data["channels"]),
            resolution=int(data["resolution"]),
            class_names=tuple(str(n) for n in data["class_names"]),
        )


@dataclass(frozen=True)
class ImageDataset:
    """A whole split in memory.

    images: (N, C, H, W) float32 in [-1, 1]; labels: (N,) int64 in [0, num_classes).
    """

    images: torch.Tensor
    labels: torch.Tensor
    info: DatasetInfo

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def uint8_to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1] (the seeds' `(x - 127.5) / 127.5`)."""
    return (images.float() - 127.5) / 127.5


def model_range_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] (clamped) -> uint8 [0, 255], rounding to nearest."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def dataset_names() -> list[str]:
    """Names accepted by `load_dataset`."""
    return sorted(DATASETS)


def get_spec(name: str) -> DatasetSpec:
    """Look up a built-in data set by name; DataError listing the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown data set '{name}' (known: {', '.join(dataset_names())})") from None


def load_dataset(
    name: str,
    split: str = "train",
    data_dir: Path | str | None = None,
    limit: int | None = None,
    download: bool = True,
    spec: DatasetSpec | None = None,
) -> ImageDataset:
    """Load one split of a built-in IDX data set, verified, as (N, 1, 28, 28) images in [-1, 1].

    `limit` keeps the first `limit` images (for quick runs and tests); `spec` overrides the registry.
    """
    spec = spec or get_spec(name)
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}' (known: {', '.join(SPLITS)})")
    paths = locate_files(spec, data_dir=data_dir, download=download)
    image_file, label_file = spec.images[split], spec.labels[split]
    image_path, label_path = paths[image_file.filename], paths[label_file.filename]
    images = parse_idx(verify_file(image_path, image_file), image_path)
    labels = parse_idx(verify_file(label_path, label_file), label_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{image_path}: expected (N, H, W) images and (N,) labels, got {images.shape}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{image_path} has {images.shape[0]} images but {label_path} has {labels.shape[0]} labels")
    num_classes = len(spec.class_names)
    if labels.size and int(labels.max()) >= num_classes:
        raise DataError(f"{label_path}: label {int(labels.max())} out of range for {num_classes} classes")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    height, width = images.shape[1:]
    if height != width:
        raise DataError(f"{image_path}: images must be square, got {height}x{width}")
    info = DatasetInfo(spec.name, num_classes, 1, int(height), spec.class_names)
    pixels = torch.from_numpy(np.array(images, copy=True)).unsqueeze(1)  # (N, 1, H, W) uint8
    return ImageDataset(
        images=uint8_to_model_range(pixels),
        labels=torch.from_numpy(labels.astype(np.int64)),
        info=info,
    )
