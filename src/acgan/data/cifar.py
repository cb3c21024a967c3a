"""CIFAR-10 from its official *binary* release, verified; never the pickled Python release.

The binary files hold records of one label byte and 3,072 pixel bytes (the R, G and B planes of a 32x32
image). They are read from `cifar-10-batches-bin/` (or the `*.bin` files directly in the folder), or
straight out of `cifar-10-binary.tar.gz` without extracting it. Each file is checked against the official
release's checksums; files in the same format that are not the official ones (a subset, your own data)
are refused unless the caller says so (`verify_checksums=False`, the CLI's `--skip-checksums`).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acgan.errors import DataError

NAME = "cifar10"
ARCHIVE = "cifar-10-binary.tar.gz"
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
MEMBER_DIR = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)
META_FILE = "batches.meta.txt"
RECORD_BYTES = 1 + 3 * 32 * 32
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# The archive's MD5 is the one published on the CIFAR page (https://www.cs.toronto.edu/~kriz/cifar.html);
# its SHA-256 and the members' checksums are those other projects record for that archive (SHA-256 from
# ruby-torch's torchvision port, MD5 from a Go data set registry). A file passes when either matches.
ARCHIVE_CHECKSUMS = ("c32a1d4ab5d03f1284b67883e8d87530",
                     "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd")  # fmt: skip
MEMBER_CHECKSUMS: dict[str, tuple[str, str]] = {  # name -> (md5, sha256)
    "data_batch_1.bin": ("5dd7e06a14cb22eb9f671a540d1b7c25",
                         "cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5"),
    "data_batch_2.bin": ("5ea93a67294ea407fff1d09f752e9692",
                         "a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed"),
    "data_batch_3.bin": ("942cd6a4bcdd0dd3c604fbe906cb4421",
                         "bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67"),
    "data_batch_4.bin": ("ae636b3ba5c66a11e91e8cb52e771fcb",
                         "014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48"),
    "data_batch_5.bin": ("53f37980c15c3d472c316c40844f3f0d",
                         "755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add"),
    "test_batch.bin": ("803d5f7f4d78ea53de84dbe85f74fb6d",
                       "8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b"),
}  # fmt: skip


@dataclass(frozen=True)
class CifarSplit:
    """pixels: (N, 32, 32, 3) uint8 RGB; labels: (N,) int64 in [0, 10)."""

    pixels: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]


def find_cifar_files(folder: Path) -> Path | None:
    """The folder or archive holding the binary files inside `folder`, or None."""
    for candidate in (folder, folder / MEMBER_DIR):
        if (candidate / TRAIN_FILES[0]).is_file():
            return candidate
    if (folder / ARCHIVE).is_file():
        return folder / ARCHIVE
    if folder.name == ARCHIVE and folder.is_file():
        return folder
    return None


def matches_official(content: bytes, expected: tuple[str, ...]) -> bool:
    """True when the MD5 or the SHA-256 of `content` is one of `expected`."""
    return hashlib.md5(content).hexdigest() in expected or hashlib.sha256(content).hexdigest() in expected


def read_cifar_split(source: Path, split: str, verify_checksums: bool = True) -> CifarSplit:
    """Read the train or test split from a folder of `.bin` files or from the official archive.

    DataError for a missing or malformed file, or (when verifying) for files that are not the official
    release, naming the option that accepts them.
    """
    names = TRAIN_FILES if split == "train" else TEST_FILES
    if source.is_file():
        contents, meta = _read_archive(source, names, verify_checksums)
    else:
        contents = {}
        for name in names:
            path = source / name
            try:
                contents[name] = path.read_bytes()
            except OSError as exc:
                raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
            if verify_checksums and not matches_official(contents[name], MEMBER_CHECKSUMS[name]):
                raise DataError(_not_official(path))
        meta_path = source / META_FILE
        meta = meta_path.read_text(errors="replace") if meta_path.is_file() else None
    arrays = [_parse_records(content, f"{source}:{name}") for name, content in contents.items()]
    records = np.concatenate(arrays) if arrays else np.zeros((0, RECORD_BYTES), np.uint8)
    labels = records[:, 0].astype(np.int64)
    class_names = _class_names(meta)
    if labels.size and int(labels.max()) >= len(class_names):
        raise DataError(f"{source}: label {int(labels.max())} out of range for {len(class_names)} classes")
    pixels = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, 32, 32, 3)
    return CifarSplit(np.ascontiguousarray(pixels), labels, class_names)


def _read_archive(archive: Path, names: tuple[str, ...], verify: bool) -> tuple[dict[str, bytes], str | None]:
    """Read the named members (and the class names) out of the tar.gz, never extracting anything to disk."""
    try:
        raw = archive.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {archive}: {exc.strerror or exc}") from None
    if verify and not matches_official(raw, ARCHIVE_CHECKSUMS):
        raise DataError(_not_official(archive))
    contents: dict[str, bytes] = {}
    meta = None
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:  # the bytes already read and checked
            for member in tar.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                if not member.isfile() or (base not in names and base != META_FILE):
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                data = handle.read()
                if base == META_FILE:
                    meta = data.decode(errors="replace")
                else:
                    contents[base] = data
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{archive} is a damaged or truncated archive ({exc})") from None
    missing = [name for name in names if name not in contents]
    if missing:
        raise DataError(f"{archive} lacks {', '.join(missing)}: not the CIFAR-10 binary release")
    return contents, meta


def _parse_records(content: bytes, source: str) -> np.ndarray:
    if len(content) == 0 or len(content) % RECORD_BYTES:
        raise DataError(
            f"{source}: {len(content)} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 records; "
            "the file is truncated or not CIFAR-10 binary data"
        )
    return np.frombuffer(content, dtype=np.uint8).reshape(-1, RECORD_BYTES)


def _class_names(meta: str | None) -> tuple[str, ...]:
    names = tuple(line.strip() for line in (meta or "").splitlines() if line.strip())
    return names if len(names) >= 2 else CLASS_NAMES


def _not_official(path: Path) -> str:
    return (
        f"{path} is not the official CIFAR-10 binary release (its checksum differs). If these are a subset or "
        "your own images in the CIFAR-10 binary format, pass --skip-checksums (verify_checksums=False) to read them"
    )
