"""Writing files and folders so that a crash or a full disk never leaves a torn one: write aside, fsync, rename.

`written_aside(path)` is the one place the pattern lives: every writer of acgan (checkpoints, pictures,
reports, caches, downloads, exports) writes under a temporary name beside its target, and only a complete,
fsynced result is renamed into place. Temporary names are `.NAME.tmp-PID` (`.NAME.trash-PID` for a folder
being replaced), so what an interrupted writer left is recognised (`is_temporary`) and removed.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NAME_MAX = 255  # bytes in one file name on the file systems we write to
TEMPORARY, TRASH = ".tmp-", ".trash-"


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_path(path: Path, mark: str = TEMPORARY) -> Path:
    """A hidden name beside `path` to write it under first: .NAME.tmp-PID, NAME cut so the whole stays a legal file
    name however long `path`'s name is."""
    suffix = f"{mark}{os.getpid()}"
    room = NAME_MAX - len(suffix) - 2
    name = path.name.encode()[:room].decode(errors="ignore")
    return path.with_name(f".{name}.{suffix.lstrip('.')}")


def is_temporary(name: str) -> bool:
    """Whether a file or folder name is one `written_aside` uses while writing (left behind by a crash)."""
    return name.startswith(".") and any(f"{mark}" in name for mark in (TEMPORARY, TRASH))


def temporary_pid(name: str) -> int | None:
    """The pid in a temporary name (.NAME.tmp-PID), or None."""
    tail = name.rpartition("-")[2]
    return int(tail) if is_temporary(name) and tail.isdigit() else None


def _fsync_tree(path: Path) -> None:
    """fsync a file, or every file of a folder and the folder itself."""
    if path.is_dir():
        for child in path.iterdir():
            _fsync_tree(child)
        fsync_dir(path)
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def written_aside(path: Path, keep_existing: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write (a file, or a folder the block creates); when the block
    succeeds, fsync what it wrote and rename it to `path`; when it fails, remove it.

    Readers see the old `path` or the new one, never a torn one. A folder that exists is moved aside first and
    put back if the rename fails. With `keep_existing`, a `path` that appeared meanwhile (another process
    wrote the same thing) is kept and ours dropped.
    """
    tmp = temporary_path(path)
    _remove(tmp)
    try:
        yield tmp
        _fsync_tree(tmp)
        if keep_existing and path.exists():
            return
        if path.is_dir() and not path.is_symlink():
            trash = temporary_path(path, TRASH)
            os.replace(path, trash)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(trash, path)
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        _remove(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through `written_aside`."""
    with written_aside(path) as tmp:
        tmp.write_bytes(data)


def picture_bytes(picture: Any, fmt: str = "PNG", **options: Any) -> bytes:
    """A Pillow image (or anything with Pillow's `save(file, format=...)`) encoded in memory."""
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()
