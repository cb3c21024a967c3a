"""Bad input and damaged files: one clear line and a non-zero exit, nothing lost, nothing replaced silently."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file, save_file

from acgan.checkpoint import TRAIN_STATE_FILE, resolve_checkpoint_dir
from acgan.config import MAX_SEED, TrainConfig
from acgan.errors import AcganError, CheckpointError
from acgan.files import TEMPORARY
from acgan.sampling import load_generator
from acgan.training import train
from tests.helpers import cli_output, make_folder


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step run on a generated colour folder (no downloaded data needed)."""
    root = tmp_path_factory.mktemp("reliability")
    run_dir = root / "run"
    config = TrainConfig(dataset=str(make_folder(root / "shapes")), batch_size=16, width=8, steps=2, epochs=None,
                         device="cpu", precision="fp32", tensorboard=False)  # fmt: skip
    train(config, run_dir, show_progress=False)
    return run_dir


def _metadata_of(path: Path) -> dict[str, str]:
    with open(path, "rb") as handle:
        return dict(json.loads(handle.read(int.from_bytes(handle.read(8), "little")))["__metadata__"])


def copy_checkpoint(run: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "checkpoint"
    shutil.copytree(resolve_checkpoint_dir(run), target)
    return target


def test_one_seed_range_everywhere(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for seed in ("-1", str(MAX_SEED + 1)):
        code, output = cli_output(["generate", "--checkpoint", str(run), "--seed", seed, "--output",
                                str(tmp_path / "x.png")], capsys)  # fmt: skip
        assert code == 2 and "--seed" in output
    code, output = cli_output(["generate", "--checkpoint", str(run), "--seed", str(MAX_SEED), "--num", "3",
                            "--output", str(tmp_path / "x.png")], capsys)  # fmt: skip
    assert code == 1 and "image i uses seed + i" in output and not (tmp_path / "x.png").exists()
    code, _ = cli_output(["generate", "--checkpoint", str(run), "--seed", str(MAX_SEED - 2), "--num", "3",
                       "--output", str(tmp_path / "top.npz")], capsys)  # fmt: skip
    assert code == 0
    with pytest.raises(AcganError, match="seed must be in"):
        TrainConfig(seed=-1)
    code, output = cli_output(["train", "--seed", str(2**64), "--steps", "1"], capsys)
    assert code == 2 and "--seed" in output

    from fastapi.testclient import TestClient

    from acgan.serving import ServeOptions, create_app

    with TestClient(create_app(load_generator(run), ServeOptions())) as client:
        assert client.get(f"/api/v1/generate?seed={2**40}&n=2&format=npz").status_code == 200  # once refused
        assert client.get(f"/api/v1/generate?seed={MAX_SEED}&n=2").status_code in (400, 422)
        assert client.get(f"/api/v1/generate?seed={MAX_SEED + 1}").status_code in (400, 422)


def test_generate_replaces_nothing_unless_forced_and_streams_folders(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "grid.png"
    target.write_bytes(b"precious")
    code, output = cli_output(["generate", "--checkpoint", str(run), "--num", "9", "--output", str(target)], capsys)
    assert code == 1 and "--force" in output and target.read_bytes() == b"precious"
    code, output = cli_output(
        ["generate", "--checkpoint", str(run), "--num", "9", "--output", str(target), "--force"], capsys
    )
    assert code == 0 and Image.open(target).size[0] > 0, output

    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep")
    code, output = cli_output(["generate", "--checkpoint", str(run), "--output", str(folder) + "/"], capsys)
    assert code == 1 and "not empty" in output and sorted(p.name for p in folder.iterdir()) == ["mine.txt"]

    # a folder is written chunk by chunk; the images are those of one call (image i uses seed + i)
    monkeypatch.setattr("acgan.outputs.GENERATE_CHUNK", 3)
    code, _ = cli_output(["generate", "--checkpoint", str(run), "--num", "7", "--label", "1", "--seed", "5", "--output",
                       str(tmp_path / "chunks") + "/"], capsys)  # fmt: skip
    assert code == 0
    code, _ = cli_output(["generate", "--checkpoint", str(run), "--num", "7", "--label", "1", "--seed", "5", "--output",
                       str(tmp_path / "all.npz")], capsys)  # fmt: skip
    assert code == 0
    arrays = np.load(tmp_path / "all.npz")
    files = sorted((tmp_path / "chunks").glob("*.png"))
    assert len(files) == 7
    for index, path in enumerate(files):
        assert np.array_equal(np.asarray(Image.open(path)), arrays["images"][index]), path.name

    code, output = cli_output(["generate", "--checkpoint", str(run), "--num", "20000", "--output",
                            str(tmp_path / "huge.png")], capsys)  # fmt: skip
    assert code == 1 and "too many for one PNG grid" in output


def test_flipped_bytes_and_hostile_metadata_are_refused(run: Path, tmp_path: Path) -> None:
    checkpoint = copy_checkpoint(run, tmp_path)
    weights = checkpoint / "generator.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # one byte of the last tensor
    flipped = tmp_path / "flipped.safetensors"
    flipped.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        load_generator(flipped)

    # a file written before the tensor table was checksummed (tensor bytes only) still loads, and is still checked
    import hashlib

    from safetensors.torch import save

    tensors = load_file(weights)
    legacy = save(tensors, metadata={**_metadata_of(weights), "weights_sha256": ""})
    header_len = int.from_bytes(legacy[:8], "little")
    metadata = {k: v for k, v in _metadata_of(weights).items() if k != "weights_sha256"}
    legacy = save(
        tensors, metadata={**metadata, "tensors_sha256": hashlib.sha256(legacy[8 + header_len :]).hexdigest()}
    )
    (tmp_path / "legacy.safetensors").write_bytes(legacy)
    assert load_generator(tmp_path / "legacy.safetensors").step == 2
    damaged = bytearray(legacy)
    damaged[-5] ^= 0xFF
    (tmp_path / "legacy-flipped.safetensors").write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match="damaged"):
        load_generator(tmp_path / "legacy-flipped.safetensors")

    with open(weights, "rb") as handle:
        header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
    metadata = header["__metadata__"]
    metadata.pop("weights_sha256")
    for field, change, message in (
        ("model_config", {"z_dim": 10**9}, "z_dim must be an integer in"),
        ("model_config", {"resolution": 10**6}, "resolution must be an integer in"),
        ("dataset_info", {"class_names": ["a", "b"]}, "inconsistent metadata"),
    ):
        hostile = {**metadata, field: json.dumps({**json.loads(metadata[field]), **change})}
        path = tmp_path / f"hostile-{field}.safetensors"
        save_file(tensors, path, metadata=hostile)
        with pytest.raises(CheckpointError, match=message):
            load_generator(path)


@pytest.mark.parametrize("content", [b"", b"\x93NUMPY random bytes \x00\xff" * 40])
def test_a_damaged_train_state_is_one_line_without_unsafe_advice(
    run: Path, tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (resolve_checkpoint_dir(copy) / TRAIN_STATE_FILE).write_bytes(content)
    code, output = cli_output(["train", "--resume", str(copy), "--steps", "4", "--no-progress"], capsys)
    assert code == 1 and "damaged" in output and "weights_only" not in output
    assert len([line for line in output.splitlines() if line.startswith("acgan:")]) == 1


def test_resuming_a_finished_run_says_there_is_nothing_to_do(run: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    code, output = cli_output(["train", "--resume", str(copy), "--no-progress"], capsys)
    assert code == 1 and "nothing to do" in output and "--steps" in output


@pytest.mark.slow
def test_evaluate_prints_its_results_before_a_failed_write(
    run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(report: object, folder: Path) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("acgan.evaluation.evaluate.write_report", refuse)
    code, output = cli_output(["evaluate", "--checkpoint", str(run), "--num", "60"], capsys)
    assert code == 1 and "conditional accuracy" in output and "could not save the results above" in output


def test_limits_on_sizes_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, output = cli_output(["summary", "--preset", "dcgan", "--resolution", "100000"], capsys)
    assert code == 2 and "--resolution" in output
    code, output = cli_output(["summary", "--preset", "dcgan", "--z-dim", "100000000"], capsys)
    assert code == 2 and "--z-dim" in output


@pytest.mark.slow
def test_serve_on_port_zero_prints_the_real_port(run: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "acgan", "serve", "--checkpoint", str(run), "--port", "0"],
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", line).group(1))  # type: ignore[union-attr]
        assert port != 0
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/info", timeout=5) as response:
                    assert json.loads(response.read())["num_classes"] == 3
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_export_refuses_a_wrong_suffix_and_replaces_nothing_unless_forced(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = cli_output(["export", "--checkpoint", str(run), "--output", str(tmp_path / "g.txt")], capsys)
    assert code == 1 and "ending in .onnx" in output and not (tmp_path / "g.txt").exists()
    target = tmp_path / "g.pt"
    target.write_bytes(b"precious")
    code, output = cli_output(["export", "--checkpoint", str(run), "--format", "torchscript", "--output", str(target)],
                           capsys)  # fmt: skip
    assert code == 1 and "--force" in output and target.read_bytes() == b"precious"
    code, _ = cli_output(["export", "--checkpoint", str(run), "--format", "torchscript", "--output", str(target),
                       "--force"], capsys)  # fmt: skip
    assert code == 0 and target.read_bytes() != b"precious"


def test_a_batch_beyond_memory_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_folder(tmp_path / "shapes", per_class=4, size=16)
    code, output = cli_output(["train", "--dataset", str(folder), "--batch-size", str(2 * 10**8), "--steps", "1",
                            "--run-dir", str(tmp_path / "run"), "--device", "cpu"], capsys)  # fmt: skip
    assert code == 1 and "use a smaller --batch-size" in output and "GiB of memory" in output
    assert not (tmp_path / "run").exists()


def test_a_failed_resave_of_the_same_step_puts_the_old_checkpoint_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from acgan.checkpoint import CheckpointContents, read_meta, save_checkpoint
    from acgan.models import build_discriminator, build_generator
    from tests.test_properties import TINY_INFO, TINY_MODEL

    def contents(step: int, tag: str) -> CheckpointContents:
        return CheckpointContents(step, 1, build_generator(TINY_MODEL), build_discriminator(TINY_MODEL), None,
                                  {"tag": tag}, {"tag": tag})  # fmt: skip

    first = save_checkpoint(tmp_path, contents(6, "first"), TINY_MODEL, TINY_INFO, keep=False)
    real_replace = os.replace

    def failing(src: object, dst: object) -> None:
        if TEMPORARY in Path(str(src)).name:  # the new folder's rename fails; moving the old one back works
            raise OSError(28, "No space left on device")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(tmp_path, contents(6, "second"), TINY_MODEL, TINY_INFO, keep=False)
    monkeypatch.setattr(os, "replace", real_replace)
    assert resolve_checkpoint_dir(tmp_path) == first and read_meta(first)["tag"] == "first"
    assert sorted(p.name for p in first.parent.iterdir()) == ["latest", "step_00000006"]  # nothing left over
    load_generator(tmp_path)
