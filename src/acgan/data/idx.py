"""Reader for the IDX format of MNIST and Fashion-MNIST (gzipped or plain), with content checks.

The format: a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the values. We only need unsigned bytes (type code 0x08).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from pathlib import Path

import numpy as np

from acgan.errors import DataError
from acgan.files import atomic_write_bytes

_UBYTE_TYPE_CODE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: Path) -> bytes:
    """Return the decompressed content of an IDX file (gzip is detected by its magic, not the name)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decompressed(raw, str(path))


def decompressed(raw: bytes, source: str) -> bytes:
    """`raw` itself, or its gzip-decompressed content when it starts with gzip's magic; DataError if damaged."""
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{source} is a damaged or truncated gzip file ({exc})") from None


def sha256_hex(data: bytes) -> str:
    """SHA-256 of `data` as lowercase hex."""
    return hashlib.sha256(data).hexdigest()


def parse_idx(data: bytes, source: Path | str = "<bytes>") -> np.ndarray:
    """Parse decompressed IDX bytes into a uint8 array of the declared shape.

    Raises DataError naming `source` for a wrong magic number, an unsupported type or a size that
    does not match the header (truncated or padded files).
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{source} is not an IDX file (wrong magic number)")
    type_code, ndim = data[2], data[3]
    if type_code != _UBYTE_TYPE_CODE:
        raise DataError(f"{source}: unsupported IDX element type 0x{type_code:02x} (expected unsigned bytes)")
    header_size = 4 + 4 * ndim
    if ndim == 0 or len(data) < header_size:
        raise DataError(f"{source}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header_size + math.prod(shape)  # exact: numpy's product of uint32 sizes can overflow
    if len(data) != expected:
        raise DataError(
            f"{source}: IDX size mismatch (header declares shape {shape} = {expected} bytes, file has "
            f"{len(data)}); the file is truncated or corrupted"
        )
    try:
        return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)
    except ValueError:  # an empty array whose other dimensions numpy cannot represent
        raise DataError(f"{source}: IDX header declares an impossible shape {shape}") from None


def read_idx(path: Path, expected_sha256: str | None = None) -> np.ndarray:
    """Read an IDX file; when `expected_sha256` is given, verify the decompressed content first."""
    data = read_bytes(path)
    if expected_sha256 is not None and sha256_hex(data) != expected_sha256:
        raise DataError(
            f"{path}: content checksum mismatch (the file is corrupted or not the expected data set file); "
            "delete it and provide the original"
        )
    return parse_idx(data, path)


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    """Write a uint8 array as an IDX file (used by tests and to export data)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UBYTE_TYPE_CODE, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + array.tobytes()
    atomic_write_bytes(path, gzip.compress(payload, mtime=0) if compress else payload)
