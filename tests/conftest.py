"""Shared fixtures: real data when present (skip otherwise), fake IDX data sets, an isolated cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from acgan.data.idx import sha256_hex, write_idx
from acgan.data.registry import MNIST, DatasetSpec, FileSpec

REPO_ROOT = Path(__file__).resolve().parents[1]

# Property tests: CI runs a fixed (derandomised) sample; HYPOTHESIS_PROFILE=explore searches much further.
settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config: pytest.Config) -> None:
    """`make test` runs one pytest worker per core (pytest-xdist): each worker, and every process a test starts
    from it, computes with one thread, since two workers with a thread per core each spin their OpenMP threads
    against each other and run several times slower than one."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def assert_same_weights(first_run: Path, second_run: Path) -> None:
    """The latest G, D and EMA weights of two run directories are bit-identical."""
    import torch
    from safetensors.torch import load_file

    from acgan.checkpoint import resolve_checkpoint_dir

    for filename in ("generator.safetensors", "discriminator.safetensors", "g_ema.safetensors"):
        a = load_file(resolve_checkpoint_dir(first_run) / filename)
        b = load_file(resolve_checkpoint_dir(second_run) / filename)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), filename


def real_data_root() -> Path | None:
    """`$ACGAN_DATA_DIR`, else ../shared/data beside the repository, if it holds MNIST."""
    for candidate in (os.environ.get("ACGAN_DATA_DIR"), REPO_ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "mnist" / "train-images-idx3-ubyte.gz").is_file():
            return Path(candidate)
    return None


def require_real_data() -> Path:
    """The real data root, or skip the calling test/fixture with the reason."""
    root = real_data_root()
    if root is None:
        pytest.skip("real MNIST data not found: set ACGAN_DATA_DIR or provide ../shared/data")
    return root


SYSTEM_DATASETS = Path("/usr/share/datasets")  # where Debian's dataset-fashion-mnist installs (make install)


def idx_data() -> tuple[str, Path] | None:
    """A real IDX data set to train on and its root: MNIST (../shared, $ACGAN_DATA_DIR), else Debian's Fashion-MNIST."""
    root = real_data_root()
    if root is not None:
        return "mnist", root
    if (SYSTEM_DATASETS / "fashion-mnist" / "train-images-idx3-ubyte.gz").is_file():
        return "fashion-mnist", SYSTEM_DATASETS
    return None


# The data set of tests that need real images but no particular one: on a fresh machine, Debian's Fashion-MNIST.
IDX_DATASET = (idx_data() or ("mnist", Path()))[0]


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The same isolation as `isolated_cache` for what module-scoped fixtures do (they are set up before any test's
    own fixtures): their runs never touch the user's cache either, and tests may share what they computed."""
    cache = tmp_path_factory.mktemp("session-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACGAN_CACHE_DIR", str(cache))
        patch.setenv("ACGAN_AUTO_PRECISION", "fp32")
        patch.setattr("acgan.data.locate.SYSTEM_DATA_ROOT", tmp_path_factory.mktemp("session-system"))
        yield cache


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never read or write the user's real cache, never see a system-wide data set by accident, and `auto`
    precision fixed to fp32."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(cache))
    # `auto` precision means fp32 in tests (no few-second measurement per run; the same arithmetic on every
    # machine); tests/test_precision.py unsets this to test the measurement itself.
    monkeypatch.setenv("ACGAN_AUTO_PRECISION", "fp32")
    monkeypatch.setattr("acgan.data.locate.SYSTEM_DATA_ROOT", tmp_path_factory.mktemp("system"))
    return cache


@pytest.fixture
def idx_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The root holding IDX_DATASET (through $ACGAN_DATA_DIR); skips when neither MNIST nor Debian's set exists."""
    found = idx_data()
    if found is None:
        pytest.skip("no real IDX data: provide ../shared/data or apt-get install dataset-fashion-mnist")
    monkeypatch.setenv("ACGAN_DATA_DIR", str(found[1]))
    return found[1]


def use_real_dataset(name: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point $ACGAN_DATA_DIR at a root holding data set `name` (../shared, or Debian's for Fashion-MNIST); else skip."""
    root = real_data_root()
    if root is None and name == "fashion-mnist" and (SYSTEM_DATASETS / name / "train-images-idx3-ubyte.gz").is_file():
        root = SYSTEM_DATASETS
    if root is None:
        pytest.skip(f"real {name} data not found: set ACGAN_DATA_DIR or provide ../shared/data")
    monkeypatch.setenv("ACGAN_DATA_DIR", str(root))
    return root


@pytest.fixture
def data_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real MNIST/Fashion-MNIST files (through $ACGAN_DATA_DIR); skips when they are absent."""
    root = require_real_data()
    monkeypatch.setenv("ACGAN_DATA_DIR", str(root))
    return root


def make_fake_files(folder: Path, num_train: int = 40, num_test: int = 20, seed: int = 0) -> DatasetSpec:
    """Write a small MNIST-shaped IDX data set into `folder` and return a spec with its checksums."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (num_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": (np.arange(num_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (num_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": (np.arange(num_test) % 10).astype(np.uint8),
    }
    checksums = {}
    for name, array in arrays.items():
        write_idx(folder / name, array)
        header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
        checksums[name] = sha256_hex(header + array.tobytes())

    def file(name: str) -> FileSpec:
        return FileSpec(name, checksums[name])

    return replace(
        MNIST,
        name="fake-mnist",
        images={"train": file("train-images-idx3-ubyte.gz"), "test": file("t10k-images-idx3-ubyte.gz")},
        labels={"train": file("train-labels-idx1-ubyte.gz"), "test": file("t10k-labels-idx1-ubyte.gz")},
        mirrors=(),
    )


@pytest.fixture
def fake_spec(tmp_path: Path) -> tuple[DatasetSpec, Path]:
    """A fake data set written under tmp_path/data/fake-mnist/; returns (spec, data root)."""
    root = tmp_path / "data"
    return make_fake_files(root / "fake-mnist"), root
