"""IDX reading and verification, data set search order, downloads from a loopback mirror, real data."""

from __future__ import annotations

import gzip
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from acgan.data import load_dataset
from acgan.data.idx import parse_idx, read_idx, write_idx
from acgan.data.locate import locate_files, search_places
from acgan.data.registry import DatasetSpec
from acgan.errors import DataError
from tests.conftest import use_real_dataset


def test_idx_round_trip_gzip_and_plain(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "a", array, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), array)


def test_truncated_file_is_rejected_with_its_name(tmp_path: Path) -> None:
    array = np.zeros((5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "images", array, compress=False)
    data = (tmp_path / "images").read_bytes()
    (tmp_path / "images").write_bytes(data[:-100])
    with pytest.raises(DataError, match=r"images.*truncated"):
        read_idx(tmp_path / "images")


def test_truncated_gzip_is_rejected(tmp_path: Path) -> None:
    write_idx(tmp_path / "x.gz", np.ones((50, 28, 28), dtype=np.uint8) * 7)
    raw = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "x.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"x\.gz.*(damaged|truncated)"):
        read_idx(tmp_path / "x.gz")


def test_corrupted_gzip_is_rejected(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "x.gz", rng.integers(0, 255, (50, 28, 28), dtype=np.uint8))
    raw = bytearray((tmp_path / "x.gz").read_bytes())
    for i in range(40, 60):
        raw[i] ^= 0xFF
    (tmp_path / "x.gz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"x\.gz"):
        read_idx(tmp_path / "x.gz")


def test_wrong_magic_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(DataError, match="wrong magic"):
        read_idx(tmp_path / "bad")
    with pytest.raises(DataError, match="unsupported IDX element type"):
        parse_idx(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + bytes(4), "float-file")


def test_checksum_mismatch_names_the_file(fake_spec: tuple[DatasetSpec, Path]) -> None:
    spec, root = fake_spec
    path = root / spec.name / "train-images-idx3-ubyte.gz"
    images = read_idx(path).copy()
    images[0, 0, 0] ^= 1  # still a well-formed IDX file, but not the expected content
    write_idx(path, images)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*checksum mismatch"):
        load_dataset(spec.name, data_dir=root, spec=spec, download=False)


def test_recompressed_and_plain_copies_pass(fake_spec: tuple[DatasetSpec, Path]) -> None:
    spec, root = fake_spec
    folder = root / spec.name
    raw = gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes())
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw, compresslevel=1))
    labels = folder / "train-labels-idx1-ubyte.gz"
    (folder / "train-labels-idx1-ubyte").write_bytes(gzip.decompress(labels.read_bytes()))
    labels.unlink()
    dataset = load_dataset(spec.name, data_dir=root, spec=spec, download=False)
    assert dataset.images.shape == (40, 1, 28, 28)
    assert dataset.labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_images_are_scaled_to_minus_one_one(fake_spec: tuple[DatasetSpec, Path]) -> None:
    spec, root = fake_spec
    dataset = load_dataset(spec.name, data_dir=root, spec=spec, download=False)
    raw = torch.from_numpy(read_idx(root / spec.name / "train-images-idx3-ubyte.gz").astype(np.float32))
    torch.testing.assert_close(dataset.images[:, 0], raw / 127.5 - 1.0)
    assert dataset.images.dtype == torch.float32
    assert dataset.info.num_classes == 10 and dataset.info.resolution == 28 and dataset.info.channels == 1


def test_search_order_prefers_data_dir_then_cache_then_system(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACGAN_DATA_DIR", str(tmp_path / "env"))
    places = search_places("mnist")
    assert [p.origin for p in places] == ["$ACGAN_DATA_DIR", "user cache", "system data sets"]
    assert places[0].folder == tmp_path / "env" / "mnist"
    assert places[1].folder == isolated_cache / "mnist"
    assert search_places("mnist", data_dir=tmp_path / "flag")[0].folder == tmp_path / "flag" / "mnist"


def test_files_found_in_cache_and_system_folders(
    tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import make_fake_files

    system = tmp_path / "usr-share-datasets"
    monkeypatch.setattr("acgan.data.locate.SYSTEM_DATA_ROOT", system)
    spec = make_fake_files(system / "fake-mnist")
    paths = locate_files(spec, download=False)
    assert all(path.parent == system / "fake-mnist" for path in paths.values())
    make_fake_files(isolated_cache / "fake-mnist")  # the cache comes before the system folder
    paths = locate_files(spec, download=False)
    assert all(path.parent == isolated_cache / "fake-mnist" for path in paths.values())


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on loopback serving tmp_path/mirror/; yields (base URL, folder)."""
    folder = tmp_path / "mirror"
    folder.mkdir()

    def handler(*args: object, **kwargs: object) -> _QuietHandler:
        return _QuietHandler(*args, directory=str(folder), **kwargs)  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    finally:
        server.shutdown()
        server.server_close()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_from_mirror_into_cache(tmp_path: Path, isolated_cache: Path, mirror: tuple[str, Path]) -> None:
    from dataclasses import replace

    from tests.conftest import make_fake_files

    url, folder = mirror
    spec = make_fake_files(tmp_path / "source")
    for file in spec.files():
        shutil.copy(tmp_path / "source" / file.filename, folder / file.filename)
    spec = replace(spec, mirrors=(_closed_port_url(), url))  # the first mirror is down: fall through
    dataset = load_dataset(spec.name, spec=spec, data_dir=tmp_path / "empty")
    assert len(dataset) == 40
    cached = sorted(p.name for p in (isolated_cache / spec.name).iterdir())
    assert cached == sorted(f.filename for f in spec.files())
    for file in spec.files():  # mirror gone: the cache now serves
        (folder / file.filename).unlink()
    assert len(load_dataset(spec.name, spec=spec, split="test")) == 20


def test_download_rejects_corrupted_mirror_file(tmp_path: Path, isolated_cache: Path, mirror: tuple[str, Path]) -> None:
    from dataclasses import replace

    from tests.conftest import make_fake_files

    url, folder = mirror
    spec = make_fake_files(tmp_path / "source")
    for file in spec.files():
        shutil.copy(tmp_path / "source" / file.filename, folder / file.filename)
    write_idx(folder / "train-images-idx3-ubyte.gz", np.zeros((40, 28, 28), dtype=np.uint8))  # wrong content
    spec = replace(spec, mirrors=(url,))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset(spec.name, spec=spec)
    assert not (isolated_cache / spec.name / "train-images-idx3-ubyte.gz").exists()
    assert not [p for p in (isolated_cache / spec.name).iterdir() if p.name.endswith(".part")]


def test_offline_error_names_every_place_and_the_remedy(tmp_path: Path, isolated_cache: Path) -> None:
    from dataclasses import replace

    from acgan.data.registry import FASHION_MNIST

    spec = replace(FASHION_MNIST, mirrors=(_closed_port_url(),))
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", spec=spec, data_dir=tmp_path / "nowhere")
    message = str(info.value)
    assert "\n" not in message
    for expected in (str(tmp_path / "nowhere" / "fashion-mnist"), str(isolated_cache / "fashion-mnist"),
                     "system data sets", "Download failed", "--data-dir", "apt-get install dataset-fashion-mnist"):  # fmt: skip
        assert expected in message


def test_unknown_dataset_and_split() -> None:
    with pytest.raises(DataError, match="unknown data set 'cifar100'"):
        load_dataset("cifar100")
    with pytest.raises(DataError, match="unknown split"):
        load_dataset("mnist", split="validation")


@pytest.mark.slow
def test_real_mnist_matches_published_statistics(data_root: Path) -> None:
    train = load_dataset("mnist", "train")
    assert train.images.shape == (60000, 1, 28, 28)
    raw_mean = float(((train.images + 1) * 127.5).mean())
    assert raw_mean == pytest.approx(33.32, abs=0.01)
    assert float(train.images.min()) == -1.0 and float(train.images.max()) == 1.0
    test = load_dataset("mnist", "test")
    assert len(test) == 10000
    assert train.info.class_names == tuple("0123456789")


def test_real_fashion_mnist_has_6000_per_class(monkeypatch: pytest.MonkeyPatch) -> None:
    use_real_dataset("fashion-mnist", monkeypatch)
    train = load_dataset("fashion-mnist", "train")
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert train.info.class_names[0] == "T-shirt/top" and train.info.class_names[9] == "Ankle boot"
