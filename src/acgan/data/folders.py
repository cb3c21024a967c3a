"""Labelled image folders: ROOT/<class>/*.png, or ROOT/train/<class>/ with an optional ROOT/test/<class>/.

Class names are the folder names, sorted. Every file is decoded once (threads, with a progress bar) into
a uint8 cache keyed by the folder's content (relative paths, sizes, modification times) and the
resolution, so a second run starts at once; the cache is a raw (N, H, W, 3) file that can be memory-mapped
when the data set does not fit in memory. Bad files never stop a run: they are skipped and summarised.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import unicodedata
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acgan.data.images import IMAGE_SUFFIXES, UnusableImage, decode_image, image_size
from acgan.errors import DataError
from acgan.files import written_aside
from acgan.progress import bar

CACHE_FORMAT = 1  # bump when the decode policy changes: old caches are then ignored
FALLBACK_RESOLUTION = 64  # when the images do not all share one size
SPLIT_SEED = 0  # the held-out split does not depend on the training seed: every run judges the same images
EXAMPLES_SHOWN = 3
LINKED_FOLDER = "a link to a folder (not followed)"


@dataclass(frozen=True)
class FolderFile:
    """One candidate image: where it is, its class folder and split, and what keys the cache."""

    path: Path
    relative: str
    class_name: str
    split: str  # "train" or "test"
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FolderScan:
    """What a scan found: candidate files, class folders, and the files skipped without decoding."""

    root: Path
    files: tuple[FolderFile, ...]
    class_names: tuple[str, ...]  # sorted training class folder names (before dropping empty ones)
    has_test_split: bool
    skipped: tuple[tuple[str, str], ...]  # (relative path, reason)

    def content_key(self) -> str:
        """Changes when any file is added, removed, renamed, resized or touched."""
        digest = hashlib.sha256(f"acgan-folder-{CACHE_FORMAT}".encode())
        for file in self.files:
            digest.update(f"{file.relative}\0{file.size}\0{file.mtime_ns}\n".encode())
        return digest.hexdigest()[:20]


@dataclass(frozen=True)
class DecodedFolder:
    """A decoded folder: pixels (N, H, W, 3) uint8 (memory-mapped), and per image its class, split and greyness."""

    pixels: np.ndarray
    class_index: np.ndarray  # (N,) int64 into class_names
    is_test: np.ndarray  # (N,) bool
    class_names: tuple[str, ...]
    all_grey: bool
    skipped: tuple[tuple[str, str], ...]
    has_test_split: bool


HIDDEN_FOLDER = "hidden folder (not read)"


def _visible(entries: Iterator[os.DirEntry[str]], root: Path, skipped: list[tuple[str, str]]) -> list[os.DirEntry[str]]:
    """The entries whose names do not start with a dot, sorted; hidden ones are recorded as skipped (a hidden class
    folder must not vanish without a word)."""
    visible = []
    for entry in sorted(entries, key=lambda e: e.name):
        if not entry.name.startswith("."):
            visible.append(entry)
        elif entry.is_dir():
            skipped.append((os.path.relpath(entry.path, root) + "/", HIDDEN_FOLDER))
        else:
            skipped.append((os.path.relpath(entry.path, root), "hidden"))
    return visible


def same_after_normalisation(names: list[str]) -> tuple[str, str] | None:
    """Two class names that are different strings but the same name after Unicode NFC normalisation (e.g. 'été'
    composed and decomposed): neither could be asked for by name. None when there are none."""
    seen: dict[str, str] = {}
    for name in names:
        key = unicodedata.normalize("NFC", name)
        if key in seen:
            return seen[key], name
        seen[key] = name
    return None


def scan_folder(root: Path) -> FolderScan:
    """List a labelled image folder without decoding anything; DataError when its layout is unusable."""
    root = root.expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    split_roots = {"train": root / "train", "test": root / "test"}
    has_split_layout = split_roots["train"].is_dir()
    if not has_split_layout:
        split_roots = {"train": root}
    skipped: list[tuple[str, str]] = []
    files: list[FolderFile] = []
    class_names: list[str] = []
    for split, folder in split_roots.items():
        if not folder.is_dir():
            continue
        try:
            entries = _visible(os.scandir(folder), root, skipped)
        except OSError as exc:
            raise DataError(f"cannot read {folder}: {exc.strerror or exc}") from None
        for entry in entries:
            relative = os.path.relpath(entry.path, root)
            if entry.is_symlink() and entry.is_dir():  # its images would be copies of another folder's, or anyone's
                skipped.append((relative + "/", LINKED_FOLDER))
                continue
            if not entry.is_dir():
                if not (split == "train" and not has_split_layout and entry.name in ("test", "train")):
                    skipped.append((relative, "not in a class folder"))
                continue
            if split == "train":
                class_names.append(entry.name)
            elif entry.name not in class_names:
                skipped.append((relative + "/", "test class has no training folder"))
                continue
            files.extend(_scan_class(root, Path(entry.path), entry.name, split, skipped))
    if not class_names:
        raise DataError(
            f"{root} has no class folders: put each class's images in its own folder, ROOT/<class>/*.png "
            "(or ROOT/train/<class>/ and ROOT/test/<class>/)"
        )
    twins = same_after_normalisation(class_names)
    if twins:
        raise DataError(f"{root}: class folders {twins[0]!r} and {twins[1]!r} are the same name written two ways "
                        "(Unicode NFC normalisation makes them equal), so neither could be asked for by name: "
                        "rename or merge one")  # fmt: skip
    return FolderScan(root, tuple(files), tuple(class_names), "test" in split_roots and split_roots["test"].is_dir(),
                      tuple(skipped))  # fmt: skip


def _scan_class(root: Path, folder: Path, class_name: str, split: str,
                skipped: list[tuple[str, str]]) -> list[FolderFile]:  # fmt: skip
    """The candidate image files of one class folder (walked recursively), recording what is skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):  # os.walk does not follow links to folders: say so
        skipped.extend((os.path.relpath(Path(dirpath) / d, root) + "/", LINKED_FOLDER)
                       for d in dirnames if (Path(dirpath) / d).is_symlink())  # fmt: skip
        skipped.extend((os.path.relpath(Path(dirpath) / d, root) + "/", HIDDEN_FOLDER)
                       for d in dirnames if d.startswith(".") and not (Path(dirpath) / d).is_symlink())  # fmt: skip
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (Path(dirpath) / d).is_symlink())
        for name in sorted(filenames):
            path = Path(dirpath) / name
            relative = os.path.relpath(path, root)
            if name.startswith("."):
                skipped.append((relative, "hidden"))
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append((relative, "not an image file"))
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                skipped.append((relative, "vanished during the scan"))
                continue
            except OSError as exc:
                skipped.append((relative, f"unreadable ({exc.strerror})"))
                continue
            if stat.st_size == 0:
                skipped.append((relative, "empty (0 bytes)"))
                continue
            found.append(FolderFile(path, relative, class_name, split, stat.st_size, stat.st_mtime_ns))
    return found


def skipped_summary(skipped: tuple[tuple[str, str], ...], total: int) -> str | None:
    """One line: how many of `total` files were skipped, why, and the first few paths; None when none were."""
    if not skipped:
        return None
    why = ", ".join(f"{n} {reason}" for reason, n in Counter(reason for _, reason in skipped).most_common())
    folders = [path for path, _ in skipped if path.endswith("/")]  # every skipped folder is named: few, and a class
    files = [path for path, reason in skipped if reason != "hidden" and not path.endswith("/")]
    shown = folders + files[:EXAMPLES_SHOWN]
    more = " ..." if len(files) > EXAMPLES_SHOWN else ""
    listed = f": {', '.join(shown)}{more}" if shown else ""
    return f"skipped {len(skipped)} of {total} files ({why}){listed}"


def common_resolution(scan: FolderScan, show_progress: bool = True) -> int:
    """The images' side when every usable image is square and the same size, else FALLBACK_RESOLUTION."""
    sizes: set[tuple[int, int]] = set()
    for file in bar(scan.files, show=show_progress, desc="reading image sizes", unit="file", leave=False):
        try:
            sizes.add(image_size(file.path))
        except UnusableImage:
            continue
        if len(sizes) > 1:
            return FALLBACK_RESOLUTION
    if len(sizes) == 1:
        width, height = sizes.pop()
        if width == height:
            return width
    return FALLBACK_RESOLUTION


def decode_folder(scan: FolderScan, resolution: int, cache_dir: Path, show_progress: bool = True,
                  workers: int | None = None) -> DecodedFolder:  # fmt: skip
    """Decode every candidate file at `resolution` into the cache (once); return the memory-mapped result."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in scan.root.name)[:40] or "folder"
    target = cache_dir / f"{safe}-{scan.content_key()}-{resolution}px"
    if not (target / "index.json").is_file():
        try:
            _build_cache(scan, resolution, target, show_progress, workers)
        except OSError as exc:  # unwritable cache, disk full: nothing half-written stays (staging is removed)
            raise DataError(
                f"cannot write the decode cache under {cache_dir}: {exc.strerror or exc}; free some space or set "
                "ACGAN_CACHE_DIR to a writable folder"
            ) from None
    return _read_cache(target, resolution)


def _build_cache(scan: FolderScan, resolution: int, target: Path, show_progress: bool, workers: int | None) -> None:
    """Decode into a folder beside `target`, then rename it into place (atomic; concurrent-safe)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with written_aside(target, keep_existing=True) as staging:  # another process's complete cache is as good
        staging.mkdir()
        pixel_path = staging / "pixels.u8"
        kept: list[int] = []
        grey_flags: list[bool] = []
        skipped: list[tuple[str, str]] = []  # files that would not decode (the scan's own skips are not cached)
        image_bytes = resolution * resolution * 3
        workers = workers or min(8, os.cpu_count() or 1)

        def decode(file: FolderFile) -> tuple[np.ndarray, bool] | str:
            try:
                return decode_image(file.path, resolution)
            except UnusableImage as exc:
                return str(exc)

        with (
            open(pixel_path, "wb") as out,
            ThreadPoolExecutor(max_workers=workers) as pool,
            bar(total=len(scan.files), show=show_progress, desc=f"decoding {scan.root.name}", unit="img") as progress,
        ):
            for index, result in enumerate(_in_blocks(pool, decode, scan.files)):
                if isinstance(result, str):
                    skipped.append((scan.files[index].relative, result))
                else:
                    array, grey = result
                    assert array.nbytes == image_bytes
                    out.write(array.tobytes())
                    kept.append(index)
                    grey_flags.append(grey)
                progress.update(1)
        index_data = {
            "format": CACHE_FORMAT, "resolution": resolution, "count": len(kept),
            "files": [scan.files[i].relative for i in kept],
            "class_names": list(scan.class_names),
            "class_index": [scan.class_names.index(scan.files[i].class_name) for i in kept],
            "is_test": [scan.files[i].split == "test" for i in kept],
            "grey": grey_flags, "skipped": skipped, "has_test_split": scan.has_test_split,
        }  # fmt: skip
        (staging / "index.json").write_text(json.dumps(index_data))


def _in_blocks(pool: ThreadPoolExecutor, function: Any, items: tuple[Any, ...], block: int = 1024) -> Iterator[Any]:
    """`pool.map` a block at a time: never more than `block` pending results, however large the folder."""
    for start in range(0, len(items), block):
        yield from pool.map(function, items[start : start + block])


def _read_cache(target: Path, resolution: int) -> DecodedFolder:
    """The memory-mapped cache in `target`, checked for consistency; a damaged one is removed (DataError)."""
    try:
        index = json.loads((target / "index.json").read_text())
        count = int(index["count"])
        shape = (count, resolution, resolution, 3)
        class_names = tuple(str(name) for name in index["class_names"])
        class_index = np.asarray(index["class_index"], dtype=np.int64)
        is_test = np.asarray(index["is_test"], dtype=bool)
        grey = [bool(flag) for flag in index["grey"]]
        skipped = tuple((str(p), str(r)) for p, r in index["skipped"])
        has_test_split = bool(index["has_test_split"])
        if (count < 0 or int(index["resolution"]) != resolution or class_index.shape != (count,)
                or is_test.shape != (count,) or len(grey) != count
                or (count and not 0 <= class_index.min() <= class_index.max() < len(class_names))
                or (target / "pixels.u8").stat().st_size != count * resolution * resolution * 3):  # fmt: skip
            raise ValueError("its index does not match its pixels")
        pixels = (np.memmap(target / "pixels.u8", dtype=np.uint8, mode="r", shape=shape) if count
                  else np.zeros(shape, dtype=np.uint8))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError, OverflowError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise DataError(f"the decode cache {target} was damaged ({exc}) and has been removed; run again") from None
    return DecodedFolder(
        pixels=pixels,
        class_index=class_index,
        is_test=is_test,
        class_names=class_names,
        all_grey=bool(count) and all(grey),
        skipped=skipped,
        has_test_split=has_test_split,
    )


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int = SPLIT_SEED) -> np.ndarray:
    """A boolean mask of held-out images: `fraction` of each class (rounded, at least one from classes of 2+)."""
    held = np.zeros(labels.shape[0], dtype=bool)
    if fraction <= 0:
        return held
    rng = np.random.default_rng(seed)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(len(members) - 1, max(1, round(fraction * len(members)))) if len(members) >= 2 else 0
        held[rng.permutation(members)[:count]] = True
    return held
