"""Labelled image data sets from any source: the data tells the models their classes, channels and resolution.

`load_dataset(source)` takes a registered name (`mnist`, `fashion-mnist`, `cifar10`) or a path: a folder of
class folders, or a folder (or archive) of CIFAR-10 binary files. Every source gives the same thing: uint8
pixels (N, H, W, C), int64 labels and a DatasetInfo saved with every checkpoint, from which evaluation and
serving find the same data again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acgan.data import cifar
from acgan.data.folders import (
    FolderScan,
    common_resolution,
    decode_folder,
    scan_folder,
    skipped_summary,
    stratified_holdout,
)
from acgan.data.idx import parse_idx
from acgan.data.images import resize_square
from acgan.data.locate import cache_root, download_file, locate_files, search_places, verify_file
from acgan.data.registry import DATASETS, SPLITS, DatasetSpec
from acgan.errors import DataError
from acgan.files import atomic_write_bytes
from acgan.models.networks import LIMITS

DEFAULT_HOLDOUT = 0.1
MIN_RESOLUTION, MAX_RESOLUTION = LIMITS["resolution"]  # what the models can be built with


@dataclass(frozen=True)
class DatasetInfo:
    """Facts about a data set that models, sampling and serving need (saved with every checkpoint).

    `source` is the path of data read from a path ("" for data sets found by name); `holdout` the share of
    each class held out as the test split of a folder without one; `checksums_verified` False when the
    files were read although they are not the official release.
    """

    name: str
    num_classes: int
    channels: int
    resolution: int
    class_names: tuple[str, ...]
    source: str = ""
    holdout: float = 0.0
    checksums_verified: bool = True

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
            source=str(data.get("source", "")),
            holdout=float(data.get("holdout", 0.0)),
            checksums_verified=bool(data.get("checksums_verified", True)),
        )

    @property
    def locator(self) -> str:
        """What `load_dataset` needs to find this data again: the path, or the registered name."""
        return self.source or self.name


class IndexedPixels:
    """Some rows of a (memory-mapped) (N, H, W, C) array, chosen by index, without copying them."""

    def __init__(self, base: np.ndarray, index: np.ndarray) -> None:
        self.base, self.index = base, index

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.base.shape[1:])

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key: slice | np.ndarray) -> np.ndarray:
        return np.asarray(self.base[self.index[key]])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.base[self.index], dtype=dtype)


@dataclass(frozen=True)
class ImageDataset:
    """One split: pixels (N, H, W, C) uint8, in memory (a tensor) or memory-mapped from the decode cache (numpy).

    labels: (N,) int64 in [0, num_classes). `notes` are one-line remarks about the data (skipped files).
    """

    pixels: torch.Tensor | np.ndarray | IndexedPixels
    labels: torch.Tensor
    info: DatasetInfo
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(self, index: torch.Tensor | np.ndarray | slice) -> torch.Tensor:
        """The images at `index` as (B, C, H, W) float32 in [-1, 1] (CPU)."""
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        if isinstance(self.pixels, torch.Tensor):
            chosen = self.pixels[index if isinstance(index, slice) else torch.as_tensor(index)]
        else:
            chosen = torch.from_numpy(np.array(self.pixels[index]))
        return uint8_to_model_range(chosen.permute(0, 3, 1, 2))

    @property
    def images(self) -> torch.Tensor:
        """All images as (N, C, H, W) float32 in [-1, 1]: for small data sets (4 bytes per pixel)."""
        return self.batch(slice(None))

    @property
    def in_memory(self) -> bool:
        """True when the pixels are a tensor in memory, False when they are read from the decode cache."""
        return isinstance(self.pixels, torch.Tensor)

    def to_memory(self) -> ImageDataset:
        """The same data set with its pixels read into a tensor."""
        if self.in_memory:
            return self
        return ImageDataset(torch.from_numpy(np.array(self.pixels)), self.labels, self.info, self.notes)

    @property
    def nbytes(self) -> int:
        """Bytes the uint8 pixels take in memory."""
        return int(np.prod(self.pixels.shape))

    def content_fingerprint(self) -> str:
        """A short hash of the labels and every k-th image (about 512 images read): changes when the content does,
        wherever the data lives."""
        return _content_digest(self, hashlib.sha256()).hexdigest()[:12]


def _content_digest(dataset: ImageDataset, digest: Any) -> Any:
    digest.update(dataset.labels.numpy().tobytes())
    step = max(1, len(dataset) // 512)
    digest.update(np.ascontiguousarray(np.asarray(dataset.pixels[::step])).tobytes())
    return digest


def data_fingerprint(dataset: ImageDataset) -> str:
    """A short hash of a data set's facts (DatasetInfo, its place included), labels and every k-th image: keys the
    caches derived from it (reference classifiers, evaluation statistics)."""
    return _content_digest(dataset, hashlib.sha256(json.dumps(dataset.info.to_dict()).encode())).hexdigest()[:12]


def data_change(saved: DatasetInfo, now: DatasetInfo) -> str | None:
    """Why a run trained on `saved` cannot continue on `now` (classes renamed, added or removed, another image
    shape), in words; None when the classes and the image shape are the same."""
    old, new = list(saved.class_names), list(now.class_names)
    if old != new:
        removed = [name for name in old if name not in new]
        added = [name for name in new if name not in old]
        parts = [f"{label} {', '.join(repr(n) for n in names[:5])}{' ...' if len(names) > 5 else ''}"
                 for label, names in (("removed", removed), ("added", added)) if names]  # fmt: skip
        what = "; ".join(parts) if parts else "the same names in another order"
        if removed and added and len(old) == len(new):
            what = f"renamed: {what}"
        return (f"the classes changed since this run started ({what}); the run's label indices would mean other "
                f"classes. Restore the data as it was (classes: {', '.join(old[:10])}{' ...' if len(old) > 10 else ''})"
                " or start a new run")  # fmt: skip
    shape = (saved.channels, saved.resolution)
    if shape != (now.channels, now.resolution):
        return (f"the images are now {now.channels}x{now.resolution}x{now.resolution}; this run trained on "
                f"{saved.channels}x{saved.resolution}x{saved.resolution}. Restore the data as it was, or start a new run")  # fmt: skip
    return None


def uint8_to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1] (the seeds' `(x - 127.5) / 127.5`)."""
    return (images.float() - 127.5) / 127.5


def model_range_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] (clamped) -> uint8 [0, 255], rounding to nearest."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def dataset_names() -> list[str]:
    """Registered names accepted by `load_dataset` (besides paths)."""
    return sorted([*DATASETS, cifar.NAME])


def get_spec(name: str) -> DatasetSpec:
    """Look up an IDX data set by name; DataError listing the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown data set '{name}' (known: {', '.join(dataset_names())})") from None


def image_channels(source: str, resolution: int | None = None, holdout: float = DEFAULT_HOLDOUT,
                   verify_checksums: bool = True) -> int | None:  # fmt: skip
    """1 (grey) or 3 (colour): the channels `load_dataset(source)` gives, from the registry for a named data set
    and from the images for a folder (decoded through the cache); None when the source cannot be loaded."""
    if source in DATASETS:
        return 1
    if source == cifar.NAME:
        return 3
    try:
        return load_dataset(source, resolution=resolution, holdout=holdout, verify_checksums=verify_checksums,
                            show_progress=True).info.channels  # fmt: skip
    except DataError:
        return None


def load_dataset(
    source: str,
    split: str = "train",
    data_dir: Path | str | None = None,
    limit: int | None = None,
    download: bool = True,
    spec: DatasetSpec | None = None,
    resolution: int | None = None,
    holdout: float = DEFAULT_HOLDOUT,
    verify_checksums: bool = True,
    show_progress: bool = False,
) -> ImageDataset:
    """Load one split of a data set, by registered name or path (see the module docstring).

    `limit` keeps the first `limit` images (a seeded subset for folders, whose files are sorted by class);
    `resolution` resizes (crop to square, Lanczos; default the data's own size, or 64 for folders of mixed
    sizes); `holdout` is the share of each class held out as the test split of a folder without one;
    `verify_checksums=False` reads files that are not the official release. DataError for anything unusable.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}' (known: {', '.join(SPLITS)})")
    if not source.strip():
        raise DataError(f"no data set given: name one ({', '.join(dataset_names())}) or give a folder's path")
    if resolution is not None and not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise DataError(f"resolution must be in {MIN_RESOLUTION}..{MAX_RESOLUTION}, got {resolution}")
    if spec is not None or source in DATASETS:
        dataset = _load_idx(spec or get_spec(source), split, data_dir, download, verify_checksums)
    elif source == cifar.NAME:
        dataset = _load_cifar(_locate_cifar(data_dir, download), split, verify_checksums, named=True)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(
                f"unknown data set '{source}': not a registered name ({', '.join(dataset_names())}) and no such "
                "file or folder (a labelled image folder is ROOT/<class>/*.png)"
            )
        path = path.resolve()
        cifar_files = cifar.find_cifar_files(path)
        if cifar_files is not None:
            dataset = _load_cifar(cifar_files, split, verify_checksums, named=False, source=path)
        else:
            return _load_folder(path, split, limit, resolution, holdout, show_progress)
    if limit is not None:
        dataset = ImageDataset(dataset.pixels[:limit], dataset.labels[:limit], dataset.info, dataset.notes)
    if resolution is not None and resolution != dataset.info.resolution:
        pixels = resize_square(np.asarray(dataset.pixels), resolution)
        info = DatasetInfo(**{**dataset.info.to_dict(), "class_names": dataset.info.class_names,
                              "resolution": resolution})  # fmt: skip
        dataset = ImageDataset(torch.from_numpy(pixels), dataset.labels, info, dataset.notes)
    return dataset


def _load_idx(spec: DatasetSpec, split: str, data_dir: Path | str | None, download: bool,
              verify: bool) -> ImageDataset:  # fmt: skip
    """One split of an IDX data set (MNIST, Fashion-MNIST), verified unless told otherwise."""
    paths = locate_files(spec, data_dir=data_dir, download=download)
    image_file, label_file = spec.images[split], spec.labels[split]
    image_path, label_path = paths[image_file.filename], paths[label_file.filename]
    images = parse_idx(verify_file(image_path, image_file, verify), image_path)
    labels = parse_idx(verify_file(label_path, label_file, verify), label_path)
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{image_path}: expected (N, H, W) images and (N,) labels, got {images.shape}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{image_path} has {images.shape[0]} images but {label_path} has {labels.shape[0]} labels")
    num_classes = len(spec.class_names)
    if labels.size and int(labels.max()) >= num_classes:
        raise DataError(f"{label_path}: label {int(labels.max())} out of range for {num_classes} classes")
    height, width = images.shape[1:]
    if height != width:
        raise DataError(f"{image_path}: images must be square, got {height}x{width}")
    info = DatasetInfo(spec.name, num_classes, 1, int(height), spec.class_names, checksums_verified=verify)
    pixels = torch.from_numpy(np.array(images, copy=True)).unsqueeze(3)  # (N, H, W, 1) uint8
    return ImageDataset(pixels, torch.from_numpy(labels.astype(np.int64)), info)


def _locate_cifar(data_dir: Path | str | None, download: bool) -> Path:
    """The CIFAR-10 binary files in the usual places, else the official archive downloaded into the cache."""
    places = search_places(cifar.NAME, data_dir)
    for place in places:
        found = cifar.find_cifar_files(place.folder)
        if found is not None:
            return found
    target = cache_root() / cifar.NAME / cifar.ARCHIVE
    failure: str | None = "download disabled"
    if download:
        failure = download_file(cifar.ARCHIVE_URL, target, lambda data: None if cifar.matches_official(
            data, cifar.ARCHIVE_CHECKSUMS) else "checksum mismatch")  # fmt: skip
        if failure is None:
            return target
    searched = "; ".join(place.describe() for place in places)
    raise DataError(
        f"data set 'cifar10': no CIFAR-10 binary files found. Searched: {searched}. Download failed ({failure}). "
        f"Put cifar-10-binary.tar.gz (or its cifar-10-batches-bin/*.bin files) in DIR/cifar10/ and point "
        f"data_dir (--data-dir) at DIR (or set ACGAN_DATA_DIR=DIR), or copy it to {target.parent}"
    )


def _load_cifar(files: Path, split: str, verify: bool, named: bool, source: Path | None = None) -> ImageDataset:
    """CIFAR-10 binary data; named 'cifar10' when verified official, else after its folder."""
    data = cifar.read_cifar_split(files, split, verify)
    name = cifar.NAME if verify else (source or files).name.removesuffix(".tar.gz")
    info = DatasetInfo(name, len(data.class_names), 3, 32, data.class_names,
                       source="" if named else str(source or files), checksums_verified=verify)  # fmt: skip
    return ImageDataset(torch.from_numpy(data.pixels), torch.from_numpy(data.labels), info)


def _load_folder(root: Path, split: str, limit: int | None, resolution: int | None, holdout: float,
                 show_progress: bool) -> ImageDataset:  # fmt: skip
    """One split of a labelled image folder, decoded through the cache (memory-mapped pixels)."""
    if not 0 <= holdout < 1:
        raise DataError(f"holdout must be in [0, 1), got {holdout}")
    scan = scan_folder(root)
    cache_dir = cache_root() / "folders"
    if resolution is None:
        resolution = _cached_common_resolution(scan, cache_dir, show_progress)
        if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
            raise DataError(f"{root}: the images are {resolution}x{resolution} pixels, outside the sizes acgan trains "
                            f"on ({MIN_RESOLUTION}..{MAX_RESOLUTION}); choose one with --resolution (e.g. 64)")  # fmt: skip
    decoded = decode_folder(scan, resolution, cache_dir, show_progress=show_progress)
    total = len(scan.files) + len(scan.skipped)
    # What this scan skipped (links and stray files change no cached image) and what the decode could not read.
    skipped = tuple(dict.fromkeys((*scan.skipped, *decoded.skipped)))
    notes = [note for note in [skipped_summary(skipped, total)] if note]
    train_mask = ~decoded.is_test
    present = sorted(set(decoded.class_index[train_mask].tolist()))
    dropped = [name for i, name in enumerate(decoded.class_names) if i not in present]
    if not present:
        raise DataError(f"{root}: no usable training images" + (f" ({notes[0]})" if notes else ""))
    if len(present) < 2:
        raise DataError(
            f"{root}: only one class with usable images ('{decoded.class_names[present[0]]}'); an AC-GAN needs at "
            "least two: put each class's images in its own folder"
        )
    if dropped:
        notes.append(f"class folder(s) without usable images left out: {', '.join(dropped)}")
    remap = np.full(len(decoded.class_names), -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    labels = remap[decoded.class_index]  # -1 for dropped classes
    keep = labels >= 0
    if decoded.has_test_split:
        used_holdout = 0.0
        chosen = keep & (decoded.is_test if split == "test" else train_mask)
    else:
        used_holdout = holdout
        held = stratified_holdout(np.where(keep, labels, -1), holdout) & keep
        chosen = held if split == "test" else (keep & ~held)
    index = np.flatnonzero(chosen)
    if limit is not None and limit < len(index):
        index = np.sort(np.random.default_rng(0).permutation(index)[:limit])
    if split == "test" and len(index) == 0:
        raise DataError(f"{root}: no test images to judge against: add ROOT/test/<class>/ folders of images kept out "
                        "of training (a run trained with --holdout 0 held none out of ROOT/<class>/)")  # fmt: skip
    pixels = decoded.pixels[:, :, :, :1] if decoded.all_grey else decoded.pixels
    channels = 1 if decoded.all_grey else 3
    info = DatasetInfo(root.name, len(present), channels, resolution,
                       tuple(decoded.class_names[i] for i in present), source=str(root), holdout=used_holdout)  # fmt: skip
    view = IndexedPixels(pixels, index) if len(index) != pixels.shape[0] else pixels
    return ImageDataset(view, torch.from_numpy(labels[index]), info, tuple(notes))


def _cached_common_resolution(scan: FolderScan, cache_dir: Path, show_progress: bool) -> int:
    """`common_resolution` of the folder, remembered per folder content (reading headers takes a while)."""
    path = cache_dir / f"sizes-{scan.content_key()}.json"
    try:
        return int(json.loads(path.read_text())["resolution"])
    except (OSError, ValueError, KeyError):
        resolution = common_resolution(scan, show_progress)
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps({"resolution": resolution}).encode())
        return resolution
