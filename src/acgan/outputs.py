"""Where generated images go: one PNG grid, one .npz of arrays, or a folder of PNG files (one per image).

`acgan generate` and the HTTP API write through these. Every file is written atomically. A folder gets its
`class_names.json` and `request.json` (what was asked for) before any image, so an interrupted run leaves a
folder that says what it holds, and running the same request again continues it where it stopped.
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acgan.data.dataset import DatasetInfo
from acgan.errors import AcganError
from acgan.files import atomic_write_bytes, picture_bytes
from acgan.labels import ALL, labels_for_request
from acgan.sampling import TrainedGenerator, Truncation, to_uint8_hwc

GENERATE_CHUNK = 1024  # images sampled (and, for a folder, written) at a time
CLASS_NAMES_FILE = "class_names.json"
REQUEST_FILE = "request.json"
MAX_SLUG = 64  # characters of a class name in an image's file name


def npz_bytes(images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], **extra: np.ndarray) -> bytes:
    """images (N, H, W, C) uint8, labels (N,) int64, the class names and `extra` arrays as a compressed .npz."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images, labels=labels.astype(np.int64), class_names=np.array(class_names),
                        **extra)  # type: ignore[arg-type]  # fmt: skip
    return buffer.getvalue()


def grid_png_bytes(images: np.ndarray, class_names: tuple[str, ...], per_class_rows: bool) -> bytes:
    """(N, H, W, C) uint8 images as one PNG: a row per class with its name when `per_class_rows` (N a multiple of
    the classes, in class order), else a square-ish grid at twice the size."""
    from acgan.visualize import class_grid_image, grid_image

    if per_class_rows:
        return picture_bytes(class_grid_image(images, class_names, ncol=len(images) // len(class_names)))
    return picture_bytes(grid_image(images, ncol=math.ceil(math.sqrt(len(images))), scale=2))


@dataclass(frozen=True)
class OutputTarget:
    """A checked place to write generated images: `kind` is "png", "npz" or "folder"."""

    path: Path
    kind: str

    @classmethod
    def parse(cls, output: str) -> OutputTarget:
        """x.png, x.npz or DIR/ (or an existing folder); AcganError for anything else."""
        path = Path(output)
        if output.endswith(("/", os.sep)) or path.is_dir():
            return cls(path, "folder")
        kind = path.suffix.lower().lstrip(".")
        if kind not in ("png", "npz"):
            raise AcganError(f"unsupported output '{output}': use a .png file, a .npz file or a folder ending in /")
        return cls(path, kind)


def request_labels(label: str, num: int, info: DatasetInfo, start: int) -> np.ndarray:
    """(n,) int64 labels of images start .. start + GENERATE_CHUNK of a request for `num` images of `label`."""
    return np.asarray(labels_for_request(label, num, info, start, start + GENERATE_CHUNK), np.int64)


def sampled(trained: TrainedGenerator, labels: np.ndarray, seed: int, precision: str,
            truncation: Truncation | None = None) -> np.ndarray:  # fmt: skip
    """(n, H, W, C) uint8 images for (n,) labels, image i from seed + i."""
    return to_uint8_hwc(trained.sample(torch.from_numpy(labels), seed=seed, precision=precision,
                                       truncation=truncation))  # fmt: skip


def write_file(target: OutputTarget, trained: TrainedGenerator, label: str, num: int, seed: int,
               precision: str, truncation: Truncation | None = None) -> None:  # fmt: skip
    """Sample every image of the request, then write one PNG grid (a row per class for 'all') or one .npz."""
    chunks = [(sampled(trained, labels, seed + start, precision, truncation), labels)
              for start in range(0, num, GENERATE_CHUNK) for labels in [request_labels(label, num, trained.info, start)]]  # fmt: skip
    images, labels = np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])
    class_names = trained.info.class_names
    data = (npz_bytes(images, labels, class_names) if target.kind == "npz"
            else grid_png_bytes(images, class_names, per_class_rows=label.strip().lower() == ALL))  # fmt: skip
    atomic_write_bytes(target.path, data)


def image_name(index: int, label: int, class_name: str, digits: int) -> str:
    """NNNNN_LABEL_CLASS.png, the class name cut to MAX_SLUG characters (file names have a length limit)."""
    slug = "".join(c if c.isalnum() else "-" for c in class_name).strip("-").lower()[:MAX_SLUG].strip("-")
    return f"{index:0{digits}d}_{label}_{slug}.png"


class ImageFolder:
    """A folder of generated PNGs for one request: `start` writes what the folder is for, `write` adds images.

    A folder holding the same request (request.json) continues: images already there are kept, not redone
    (each is complete: written atomically). A folder holding anything else needs `force` (same names replaced).
    """

    def __init__(self, folder: Path, class_names: tuple[str, ...], request: dict[str, Any], total: int) -> None:
        self.folder, self.class_names, self.request = folder, class_names, request
        self.digits = max(5, len(str(total - 1)))
        self.written = 0
        self.kept = 0

    @staticmethod
    def check(folder: Path, force: bool) -> None:
        """Before any work: AcganError for a folder holding files, unless `force` or it has a request.json (an
        interrupted run, perhaps of this request: `start` compares once the request is known)."""
        if not force and not (folder / REQUEST_FILE).is_file():
            _refuse_unless_empty(folder)

    def start(self, force: bool) -> int:
        """Prepare the folder; the number of images an earlier run of the same request already wrote."""
        same = self._holds_same_request()
        if not force and not same:
            _refuse_unless_empty(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(
            self.folder / CLASS_NAMES_FILE, json.dumps(list(self.class_names), ensure_ascii=False).encode()
        )
        atomic_write_bytes(self.folder / REQUEST_FILE, json.dumps(self.request, indent=2).encode())
        return sum(1 for p in self.folder.glob("*.png") if not p.name.startswith(".")) if same else 0

    def _holds_same_request(self) -> bool:
        try:
            return bool(json.loads((self.folder / REQUEST_FILE).read_text()) == self.request)
        except (OSError, ValueError):
            return False

    def missing(self, first_index: int, labels: np.ndarray) -> np.ndarray:
        """Which of the images first_index, first_index + 1, ... (with these labels) are not in the folder yet."""
        return np.array([not (self.folder / self.name(first_index + i, int(label))).is_file()
                         for i, label in enumerate(labels)], dtype=bool)  # fmt: skip

    def name(self, index: int, label: int) -> str:
        return image_name(index, label, self.class_names[label], self.digits)

    def fill(self, trained: TrainedGenerator, label: str, seed: int, precision: str,
             truncation: Truncation | None = None) -> None:  # fmt: skip
        """Sample the request chunk by chunk (image i uses seed + i: the same images as one call) and write what
        is missing; AcganError saying how many images are there when interrupted."""
        total = self.request["num"]
        try:
            for start in range(0, total, GENERATE_CHUNK):
                labels = request_labels(label, total, trained.info, start)
                if not self.missing(start, labels).any():
                    self.kept += len(labels)
                    continue
                self.write(sampled(trained, labels, seed + start, precision, truncation), labels, first_index=start)
        except KeyboardInterrupt:
            raise AcganError(f"interrupted: {self.written + self.kept} of {total} images are in {self.folder}/; run "
                             "the same command again to continue (or pass --force to start over)") from None  # fmt: skip

    def write(self, images: np.ndarray, labels: np.ndarray, first_index: int) -> None:
        """Write (n, H, W, C) uint8 images numbered from `first_index`, skipping those already there."""
        from PIL import Image

        for offset, (image, label) in enumerate(zip(images, labels, strict=True)):
            path = self.folder / self.name(first_index + offset, int(label))
            if path.is_file():
                self.kept += 1
                continue
            atomic_write_bytes(path, picture_bytes(Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)))
            self.written += 1


def _refuse_unless_empty(folder: Path) -> None:
    if folder.is_dir() and any(folder.iterdir()):
        raise AcganError(
            f"{folder} is not empty and holds no interrupted run of this request; choose an empty or new "
            "folder, or pass --force to write into it (files with the same names are replaced)"
        )
