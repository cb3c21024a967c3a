"""Loading generators from every kind of checkpoint path, mismatch detection, deterministic sampling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from acgan.checkpoint import read_weights, resolve_checkpoint_dir
from acgan.config import TrainConfig
from acgan.data.registry import DATASETS
from acgan.errors import AcganError, CheckpointError
from acgan.labels import labels_for_request, resolve_label
from acgan.sampling import load_generator, make_latents, sample
from acgan.training import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-step run on real IDX data (MNIST, else Debian's Fashion-MNIST; skipped without either)."""
    from tests.conftest import idx_data

    found = idx_data()
    if found is None:
        pytest.skip("no real IDX data: provide ../shared/data or apt-get install dataset-fashion-mnist")
    dataset, root = found
    run = tmp_path_factory.mktemp("ckpt") / "run"
    config = TrainConfig(dataset=dataset, limit=64, batch_size=16, epochs=None, steps=4, ema_decay=0.5,
                         data_dir=str(root), device="cpu")  # fmt: skip
    train(config, run, show_progress=False)
    return run


def test_load_from_run_dir_checkpoint_dir_and_file_agree(run_dir: Path) -> None:
    checkpoint = resolve_checkpoint_dir(run_dir)
    from_run = load_generator(run_dir)
    from_dir = load_generator(checkpoint)
    from_file = load_generator(checkpoint / "g_ema.safetensors")
    raw = load_generator(run_dir, prefer_ema=False)
    assert from_run.source.name == "g_ema.safetensors" and raw.source.name == "generator.safetensors"
    assert from_run.info.class_names == DATASETS[from_run.info.name].class_names and from_run.step == 4
    a, b, c = (g.sample([3, 7], seed=5) for g in (from_run, from_dir, from_file))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(a, c, rtol=0, atol=0)
    assert not torch.equal(a, raw.sample([3, 7], seed=5))


def test_sampling_is_deterministic_and_in_range(run_dir: Path) -> None:
    g = load_generator(run_dir)
    first = g.sample(["7"] * 4 + ["2"] * 4, seed=11)
    again = g.sample([7] * 4 + [2] * 4, seed=11)
    other = g.sample([7] * 4 + [2] * 4, seed=12)
    assert first.shape == (8, 1, 28, 28)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert float(first.min()) >= -1 and float(first.max()) <= 1
    z = make_latents(2, 100, seed=11)
    torch.testing.assert_close(sample(g.generator, [7, 7], z=z), first[:2], rtol=0, atol=1e-6)
    # image i of seed s is image 0 of seed s + i, whatever else is in the batch
    torch.testing.assert_close(g.sample([2], seed=15), first[4:5], rtol=0, atol=1e-6)
    assert g.generator.training is False


def test_labels_by_index_name_and_all(run_dir: Path) -> None:
    info = load_generator(run_dir).info
    assert resolve_label("7", info) == 7 and resolve_label(3, info) == 3
    assert labels_for_request("all", 20, info) == [k for k in range(10) for _ in range(2)]
    with pytest.raises(AcganError, match="out of range"):
        resolve_label("10", info)
    with pytest.raises(AcganError, match="unknown class 'Zebra'"):
        resolve_label("Zebra", info)
    with pytest.raises(AcganError, match="must be > 0"):
        labels_for_request("1", 0, info)
    with pytest.raises(AcganError, match="multiple of 10"):
        labels_for_request("all", 15, info)


def test_fashion_class_names_resolve_case_insensitively() -> None:
    from acgan.data.dataset import DatasetInfo
    from acgan.data.registry import FASHION_MNIST

    info = DatasetInfo("fashion-mnist", 10, 1, 28, FASHION_MNIST.class_names)
    assert resolve_label("sneaker", info) == 7 and resolve_label("Ankle boot", info) == 9


def test_weights_that_do_not_match_their_config_are_rejected(run_dir: Path, tmp_path: Path) -> None:
    source = resolve_checkpoint_dir(run_dir) / "generator.safetensors"
    weights = read_weights(source)
    config = {**weights.model_config.to_dict(), "preset": "brownlee", "width": 0}
    metadata = {"format_version": "1", "model_config": json.dumps(config),
                "dataset_info": json.dumps(weights.info.to_dict()), "step": "4"}  # fmt: skip
    save_file(load_file(source), tmp_path / "liar.safetensors", metadata=metadata)
    with pytest.raises(CheckpointError, match="do not match"):
        load_generator(tmp_path / "liar.safetensors")
    impossible = {**metadata, "model_config": json.dumps({**config, "width": 64})}  # brownlee has no width
    save_file(load_file(source), tmp_path / "impossible.safetensors", metadata=impossible)
    with pytest.raises(CheckpointError, match=r"impossible\.safetensors: its model configuration cannot be built"):
        load_generator(tmp_path / "impossible.safetensors")


def test_damaged_and_foreign_files_are_rejected(run_dir: Path, tmp_path: Path) -> None:
    source = resolve_checkpoint_dir(run_dir) / "generator.safetensors"
    (tmp_path / "cut.safetensors").write_bytes(source.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_generator(tmp_path / "cut.safetensors")
    save_file({"w": torch.zeros(2)}, tmp_path / "foreign.safetensors")
    with pytest.raises(CheckpointError, match="lacks acgan metadata"):
        load_generator(tmp_path / "foreign.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        load_generator(tmp_path / "empty")


def test_train_state_loads_without_pickle(run_dir: Path) -> None:
    state = torch.load(resolve_checkpoint_dir(run_dir) / "train_state.pt", weights_only=True)
    assert set(state) == {"opt_g", "opt_d", "step", "wall_seconds", "rng", "world_size"}
