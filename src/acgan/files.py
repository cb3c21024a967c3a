"""Writing files so that a crash or a full disk never leaves a torn one: write aside, fsync, rename."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


NAME_MAX = 255  # bytes in one file name on the file systems we write to


def temporary_path(path: Path) -> Path:
    """A hidden name beside `path` to write it under first: .NAME.tmp-PID, NAME cut so the whole stays a legal file
    name however long `path`'s name is (the `.tmp-PID` pattern lets an interrupted write be found and removed)."""
    suffix = f".tmp-{os.getpid()}"
    room = NAME_MAX - len(suffix) - 1
    name = path.name.encode()[:room].decode(errors="ignore")
    return path.with_name(f".{name}{suffix}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file, fsync and rename: readers see the old or the new file, and a
    failed write (a full disk) leaves neither a torn file nor the temporary one."""
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def picture_bytes(picture: Any, fmt: str = "PNG", **options: Any) -> bytes:
    """A Pillow image (or anything with Pillow's `save(file, format=...)`) encoded in memory."""
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()
