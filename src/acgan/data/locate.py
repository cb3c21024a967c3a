"""Find a data set's files on disk, or download them into the user cache.

Search order for `<name>`: `data_dir` (the `--data-dir` flag, else `$ACGAN_DATA_DIR`) as `<dir>/<name>/`,
the user cache `~/.cache/acgan/<name>/` (or `$ACGAN_CACHE_DIR/<name>/`), then `/usr/share/datasets/<name>/`
(where Debian's dataset packages install). Missing files are downloaded from the spec's mirrors into the
cache, verified, and moved into place atomically.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from acgan.data.idx import decompressed, parse_idx, read_bytes, sha256_hex
from acgan.data.registry import DatasetSpec, FileSpec
from acgan.errors import DataError
from acgan.files import atomic_write_bytes

SYSTEM_DATA_ROOT = Path("/usr/share/datasets")
DOWNLOAD_TIMEOUT_S = 30.0


def cache_root() -> Path:
    """The per-user cache root for data sets and derived files."""
    override = os.environ.get("ACGAN_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "acgan"


@dataclass(frozen=True)
class SearchPlace:
    """A folder searched for a data set, with a label that says where the folder came from."""

    folder: Path
    origin: str

    def describe(self) -> str:
        return f"{self.folder} ({self.origin})"


def search_places(name: str, data_dir: Path | str | None = None) -> list[SearchPlace]:
    """The folders searched for data set `name`, in order."""
    places = []
    if data_dir is not None:
        places.append(SearchPlace(Path(data_dir).expanduser() / name, "--data-dir"))
    elif os.environ.get("ACGAN_DATA_DIR"):
        places.append(SearchPlace(Path(os.environ["ACGAN_DATA_DIR"]).expanduser() / name, "$ACGAN_DATA_DIR"))
    places.append(SearchPlace(cache_root() / name, "user cache"))
    places.append(SearchPlace(SYSTEM_DATA_ROOT / name, "system data sets"))
    return places


def _candidates(folder: Path, file: FileSpec) -> list[Path]:
    plain = file.filename.removesuffix(".gz")
    return [folder / file.filename, folder / plain]


def _find_file(file: FileSpec, places: list[SearchPlace]) -> Path | None:
    for place in places:
        for candidate in _candidates(place.folder, file):
            if candidate.is_file():
                return candidate
    return None


def download_file(url: str, target: Path, problem: Callable[[bytes], str | None]) -> str | None:
    """Download `url` to `target` (written aside, fsynced, renamed) unless `problem(payload)` names one; None on
    success, else the reason it failed."""
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{url}: {getattr(exc, 'reason', exc)}"
    reason = problem(payload)
    if reason is not None:
        return f"{url}: {reason}"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, payload)
    return None


def idx_problem(payload: bytes, file: FileSpec) -> str | None:
    """Why a downloaded IDX file is not `file` (damaged gzip, another checksum), or None."""
    try:
        content = decompressed(payload, file.filename)
    except DataError as exc:
        return str(exc)
    return None if sha256_hex(content) == file.sha256 else "checksum mismatch"


def _download(file: FileSpec, mirrors: tuple[str, ...], target_dir: Path) -> tuple[Path | None, list[str]]:
    """Try each mirror in turn; return the verified file's path (or None) and one reason per failure."""
    failures: list[str] = []
    for mirror in mirrors:
        failure = download_file(f"{mirror.rstrip('/')}/{file.filename}", target_dir / file.filename,
                                lambda payload: idx_problem(payload, file))  # fmt: skip
        if failure is None:
            return target_dir / file.filename, failures
        failures.append(failure)
    return None, failures


def locate_files(
    spec: DatasetSpec,
    data_dir: Path | str | None = None,
    download: bool = True,
    mirrors: tuple[str, ...] | None = None,
) -> dict[str, Path]:
    """Return a path for every file of `spec` (keyed by file name), downloading missing ones.

    Raises DataError naming every place searched, and how to provide the files, when some file can be
    neither found nor downloaded.
    """
    places = search_places(spec.name, data_dir)
    found: dict[str, Path] = {}
    missing: list[FileSpec] = []
    for file in spec.files():
        path = _find_file(file, places)
        if path is None:
            missing.append(file)
        else:
            found[file.filename] = path
    if not missing:
        return found
    cache_dir = cache_root() / spec.name
    failures: list[str] = []
    if download:
        for file in list(missing):
            path, reasons = _download(file, mirrors if mirrors is not None else spec.mirrors, cache_dir)
            failures.extend(reasons)
            if path is not None:
                found[file.filename] = path
                missing.remove(file)
    if not missing:
        return found
    searched = "; ".join(place.describe() for place in places)
    names = ", ".join(file.filename for file in missing)
    if failures:
        more = "" if len(failures) == 1 else f" and {len(failures) - 1} more"
        download_note = f" Download failed ({failures[0]}{more})."
    else:
        download_note = " Download disabled." if not download else " No download mirror is known."
    raise DataError(
        f"data set '{spec.name}': missing {names}. Searched: {searched}.{download_note} "
        f"Put the IDX files (gzipped or plain) in DIR/{spec.name}/ and point data_dir (--data-dir) at DIR "
        f"(or set ACGAN_DATA_DIR=DIR), or copy them to {cache_dir}"
        + (" (Debian: apt-get install dataset-fashion-mnist)" if spec.name == "fashion-mnist" else "")
    )


def verify_file(path: Path, file: FileSpec, verify: bool = True) -> bytes:
    """Read `path` and (unless `verify` is False) check its decompressed content against `file.sha256`."""
    content = read_bytes(path)
    if verify and sha256_hex(content) != file.sha256:
        # Parse first: a truncated or wrong-magic file gets the more specific message.
        parse_idx(content, path)
        raise DataError(
            f"{path}: content checksum mismatch for {file.filename} (corrupted or a different file); "
            "replace it with the original, or pass --skip-checksums (verify_checksums=False) to read files that "
            "are not the official release"
        )
    return content
