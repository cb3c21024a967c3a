"""Samples from any generator, for `acgan evaluate --samples`: an .npz file, a folder of images, or an exported
.onnx generator; their classes matched to the data set's by name or index.

An .npz holds `images` (uint8 in 0..255, or float in [-1, 1]; NHWC or NCHW; (N, H, W) for grey images) and
`labels` ((N,) class indices, or class names), optionally `class_names` (then `labels` index into it). A folder is
either what `acgan generate DIR/` writes (NNNNN_LABEL_name.png with class_names.json) or one folder per class
(DIR/<class>/*.png, as StudioGAN and most code save samples). Images must have the data set's shape: resizing
would judge something else than the generator made.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from acgan.data.dataset import DatasetInfo, uint8_to_model_range
from acgan.errors import AcganError
from acgan.labels import resolve_label

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
GENERATED_NAME = re.compile(r"^\d+_(\d+)_")  # acgan generate's NNNNN_LABEL_name.png


def class_indices(names: list[str], info: DatasetInfo, where: str) -> list[int]:
    """The data set's index of each class name of the samples (acgan's label rule: a name, or an index); AcganError
    naming the first that matches no class."""
    indices = []
    for name in names:
        try:
            indices.append(resolve_label(str(name), info))
        except AcganError:
            raise AcganError(f"{where}: class {name!r} is not a class of {info.name} (its classes: "
                             f"{', '.join(info.class_names)})") from None  # fmt: skip
    return indices


def as_model_images(images: np.ndarray, info: DatasetInfo, where: str) -> torch.Tensor:
    """(N, C, H, W) float32 in [-1, 1] from an NCHW, NHWC or (grey) NHW array of uint8 or floats in [-1, 1]."""
    c, side = info.channels, info.resolution
    if images.ndim == 3 and c == 1:
        images = images[:, :, :, None]
    if images.ndim == 4 and images.shape[1:] == (c, side, side):
        images = images.transpose(0, 2, 3, 1)
    if images.ndim != 4 or images.shape[1:] != (side, side, c):
        raise AcganError(f"{where}: images of shape {images.shape}; {info.name}'s are {side}x{side} with {c} "
                         f"channel(s), as (N, {side}, {side}, {c}) or (N, {c}, {side}, {side})")  # fmt: skip
    if images.dtype == np.uint8:
        return uint8_to_model_range(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2))
    if images.dtype.kind != "f" or not np.isfinite(images).all() or np.abs(images).max() > 1.0 + 1e-6:
        raise AcganError(f"{where}: images must be uint8 (0..255) or floats in [-1, 1], got {images.dtype}")
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).permute(0, 3, 1, 2).contiguous()


def from_npz(path: Path, info: DatasetInfo) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise AcganError(f"{path}: not a readable .npz file ({exc})") from None
    if "images" not in arrays or "labels" not in arrays:
        raise AcganError(f"{path}: an .npz of samples needs arrays 'images' and 'labels' (found: "
                         f"{', '.join(arrays) or 'none'})")  # fmt: skip
    labels = arrays["labels"].reshape(-1)
    if "class_names" in arrays:
        names = [str(name) for name in arrays["class_names"].reshape(-1)]
        if labels.dtype.kind not in "iu" or labels.min(initial=0) < 0 or labels.max(initial=0) >= len(names):
            raise AcganError(f"{path}: labels must index into class_names (0..{len(names) - 1})")
        mapping = class_indices(names, info, str(path))
        indices = [mapping[int(label)] for label in labels]
    else:
        indices = class_indices([str(label) for label in labels], info, str(path))
    images = as_model_images(arrays["images"], info, str(path))
    if images.shape[0] != len(indices):
        raise AcganError(f"{path}: {images.shape[0]} images but {len(indices)} labels")
    return images, torch.tensor(indices, dtype=torch.int64)


def from_folder(path: Path, info: DatasetInfo) -> tuple[torch.Tensor, torch.Tensor]:
    names_file = path / "class_names.json"
    if names_file.is_file():  # what `acgan generate DIR/` writes
        try:
            names = json.loads(names_file.read_text())
        except ValueError:
            raise AcganError(f"{names_file}: not JSON") from None
        mapping = class_indices([str(name) for name in names], info, str(path))
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        found = [(file, GENERATED_NAME.match(file.name)) for file in files]
        pairs = [(file, mapping[int(match.group(1))]) for file, match in found
                 if match and int(match.group(1)) < len(mapping)]  # fmt: skip
    else:  # one folder per class
        folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        mapping = class_indices([folder.name for folder in folders], info, str(path))
        pairs = [(file, index) for folder, index in zip(folders, mapping, strict=True)
                 for file in sorted(folder.iterdir()) if file.suffix.lower() in IMAGE_SUFFIXES]  # fmt: skip
    if not pairs:
        raise AcganError(f"{path}: no images (a folder of samples holds NNNNN_LABEL_name.png files with "
                         "class_names.json, as acgan generate writes, or one folder of images per class)")  # fmt: skip
    mode = "L" if info.channels == 1 else "RGB"
    try:
        arrays = [np.asarray(Image.open(file).convert(mode)) for file, _ in pairs]
    except OSError as exc:
        raise AcganError(f"{path}: cannot read an image ({exc})") from None
    shapes = {array.shape for array in arrays}
    if len(shapes) != 1:
        raise AcganError(f"{path}: images of several sizes ({', '.join(map(str, sorted(shapes)[:3]))})")
    images = as_model_images(np.stack(arrays), info, str(path))
    return images, torch.tensor([index for _, index in pairs], dtype=torch.int64)


def load_samples(path: Path, info: DatasetInfo, num: int = 10_000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, C, H, W) in [-1, 1] and labels (N,) in the data set's indices, from an .npz, a folder or an .onnx
    generator (`num` class-balanced samples from `seed`); AcganError for anything else (one line)."""
    if path.is_dir():
        images, labels = from_folder(path, info)
    elif path.suffix.lower() == ".npz" and path.is_file():
        images, labels = from_npz(path, info)
    elif path.suffix.lower() == ".onnx" and path.is_file():
        images, labels = from_onnx(path, info, num, seed)
    else:
        raise AcganError(f"{path}: give an .npz file, a folder of images or an exported .onnx generator")
    too_few = [info.class_names[c] for c in range(info.num_classes) if int((labels == c).sum()) < 2]
    if too_few:
        raise AcganError(f"{path}: every class needs at least 2 samples; too few of {', '.join(too_few[:5])}")
    return images, labels


def from_onnx(path: Path, info: DatasetInfo, num: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from acgan.sampling import load_generator, sample  # deferred: ONNX Runtime is optional

    trained = load_generator(path)
    mapping = class_indices(list(trained.info.class_names), info, str(path))
    if trained.info.num_classes != info.num_classes:
        raise AcganError(f"{path}: a generator of {trained.info.num_classes} classes; {info.name} has "
                         f"{info.num_classes}")  # fmt: skip
    per_class = max(2, num // info.num_classes)
    own = torch.arange(info.num_classes).repeat_interleave(per_class)  # the generator's own class indices
    images = sample(trained, own, seed=seed)
    return as_model_images(images.permute(0, 2, 3, 1).numpy(), info, str(path)), torch.tensor(mapping)[own]


def evaluate_samples(images: Any, labels: Any, dataset: str, data_dir: str | Path | None = None,
                     intervals: bool = True, cas: bool = False, inception: bool = False,
                     inception_weights: str | Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Judge any generator's samples against `dataset` (a registered name or a folder), as `acgan evaluate` judges
    a checkpoint's: every metric beside its real-data value, with 95% intervals (and the CAS with `cas`; FID, KID
    and IS in Inception-v3's feature space with `inception` or `inception_weights`, the weights file, by default
    $ACGAN_INCEPTION_WEIGHTS).

    images: a numpy array (uint8 0..255 or floats in [-1, 1]; NHWC, NCHW, or NHW for grey) or a (N, C, H, W) tensor
    in [-1, 1]; labels: (N,) class indices or names of `dataset`.
    """
    from acgan.data.dataset import load_dataset
    from acgan.evaluation.evaluate import load_evaluator
    from acgan.evaluation.inception import weights_path

    weights = weights_path(inception_weights) if inception or inception_weights else None  # before any work
    info = load_dataset(dataset, "train", data_dir=data_dir, show_progress=False).info
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    model_images = as_model_images(array, info, "images")
    names = labels.tolist() if isinstance(labels, torch.Tensor | np.ndarray) else list(labels)
    indices = torch.tensor(class_indices([str(label) for label in names], info, "labels"), dtype=torch.int64)
    if len(indices) != model_images.shape[0]:
        raise AcganError(f"{model_images.shape[0]} images but {len(indices)} labels")
    evaluator = load_evaluator(info, data_dir=data_dir, source=dataset, show_progress=False)
    report = evaluator.evaluate_images(model_images, indices, intervals=intervals)
    report.update(evaluator.views(model_images, indices, cas=cas, inception_weights=weights, show_progress=False))
    return report
