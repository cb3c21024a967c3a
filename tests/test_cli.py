"""The command line end to end: train, resume, generate in every format, summary, and every bad input."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acgan.cli import main
from acgan.data.registry import DATASETS
from tests.conftest import IDX_DATASET
from tests.helpers import assert_one_line_error, run_cli
from tests.test_models import KERAS_COUNTS

TINY = ["--dataset", IDX_DATASET, "--limit", "64", "--batch-size", "16", "--device", "cpu", "--no-progress"]


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import idx_data

    found = idx_data()
    if found is None:
        pytest.skip("no real IDX data: provide ../shared/data or apt-get install dataset-fashion-mnist")
    root = found[1]
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", *TINY, "--data-dir", str(root), "--run-dir", str(run), "--epochs", "1"]) == 0
    return run


def test_summary_prints_keras_counts_for_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    for preset, (g_count, d_count) in KERAS_COUNTS.items():
        code, out, _ = run_cli(["summary", "--preset", preset], capsys)
        assert code == 0
        assert f"generator params: {g_count:,}" in out and f"discriminator params: {d_count:,}" in out
        assert "Output Shape" in out and "(None, 1, 28, 28)" in out


def test_train_dry_run_prints_the_resolved_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run_cli(["train", "--dataset", "mnist", "--steps", "5", "--seed", "3",
                           "--run-dir", str(tmp_path / "r"), "--dry-run"], capsys)  # fmt: skip
    assert code == 0
    resolved = json.loads(out)["train"]
    assert resolved["steps"] == 5 and resolved["epochs"] is None and resolved["seed"] == 3
    assert resolved["preset"] == "dcgan" and resolved["beta1"] == 0.5
    training = ("lr_g", "lr_d", "ema_decay", "precision")
    assert [resolved[k] for k in training] == [1e-3, 1e-3, 0.999, "auto"]
    code, out, _ = run_cli(
        ["train", "--preset", "brownlee", "--lr-d", "1e-4", "--run-dir", str(tmp_path / "b"), "--dry-run"], capsys
    )
    resolved = json.loads(out)["train"]
    assert [resolved[k] for k in training] == [2e-4, 1e-4, 0.0, "fp32"]
    assert not (tmp_path / "r").exists()


def test_train_prints_the_seed_log_line(capsys: pytest.CaptureFixture[str], idx_root: Path, tmp_path: Path) -> None:
    code, out, _ = run_cli(
        ["train", *TINY, "--run-dir", str(tmp_path / "r"), "--steps", "4", "--log-every", "2"], capsys
    )
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith(">")]
    assert [line.split(",")[0] for line in lines] == [">2", ">4"]
    assert lines[0].count("dr[") == 1 and "df[" in lines[0] and "g[" in lines[0]


def test_resume_continues_and_rejects_architecture_changes(
    capsys: pytest.CaptureFixture[str], trained_run: Path, tmp_path: Path
) -> None:
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    code, out, _ = run_cli(["train", "--resume", str(run), "--epochs", "2", "--no-progress"], capsys)
    assert code == 0 and "8 steps (2.00 epochs" in out
    code, _, err = run_cli(["train", "--resume", str(run), "--preset", "brownlee"], capsys)
    assert_one_line_error(code, err, "--preset cannot change when resuming")


def test_generate_png_npz_and_folder(capsys: pytest.CaptureFixture[str], trained_run: Path, tmp_path: Path) -> None:
    code, _, _ = run_cli(["generate", "--checkpoint", str(trained_run), "--label", "7", "--num", "16",
                         "--seed", "1", "--output", str(tmp_path / "sevens.png")], capsys)  # fmt: skip
    assert code == 0
    assert Image.open(tmp_path / "sevens.png").size == (4 * 58 + 2, 4 * 58 + 2)  # 4 x 4 at 2x, 2 px padding
    code, _, _ = run_cli(["generate", "--checkpoint", str(trained_run), "--label", "all", "--num", "30",
                         "--output", str(tmp_path / "all.npz")], capsys)  # fmt: skip
    assert code == 0
    arrays = np.load(tmp_path / "all.npz")
    assert arrays["images"].shape == (30, 28, 28, 1) and arrays["images"].dtype == np.uint8
    assert arrays["labels"].dtype == np.int64 and np.bincount(arrays["labels"]).tolist() == [3] * 10
    code, _, _ = run_cli(["generate", "--checkpoint", str(trained_run), "--label", "3", "--num", "5",
                         "--output", str(tmp_path / "pngs") + "/"], capsys)  # fmt: skip
    assert code == 0
    files = sorted((tmp_path / "pngs").glob("*.png"))
    names = list(DATASETS[IDX_DATASET].class_names)
    slug = {"mnist": "3", "fashion-mnist": "dress"}[IDX_DATASET]  # the file names carry class 3's name
    assert [f.name for f in files][:2] == [f"00000_3_{slug}.png", f"00001_3_{slug}.png"] and len(files) == 5
    assert json.loads((tmp_path / "pngs" / "class_names.json").read_text()) == names
    assert Image.open(files[0]).size == (28, 28)
    code, _, _ = run_cli(["generate", "--checkpoint", str(trained_run), "--label", "all", "--num", "20",
                         "--output", str(tmp_path / "rows.png")], capsys)  # fmt: skip
    assert code == 0 and Image.open(tmp_path / "rows.png").height > 10 * 56


def test_generate_is_reproducible(capsys: pytest.CaptureFixture[str], trained_run: Path, tmp_path: Path) -> None:
    for name in ("a.npz", "b.npz"):
        assert main(["generate", "--checkpoint", str(trained_run), "--label", "5", "--num", "4", "--seed", "9",
                     "--output", str(tmp_path / name)]) == 0  # fmt: skip
    np.testing.assert_array_equal(np.load(tmp_path / "a.npz")["images"], np.load(tmp_path / "b.npz")["images"])


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["train", "--dataset", "cifar100"], ["unknown data set 'cifar100'", "not a registered name"]),
        (["train", "--preset", "biggan"], ["'biggan' is not one of"]),
        (["train", "--epochs", "0"], ["--epochs"]),
        (["summary", "--preset", "nope"], ["'nope' is not one of"]),
        (["generate", "--checkpoint", "/nonexistent/run", "--output", "x.png"], ["checkpoint not found"]),
    ],
)
def test_bad_arguments_get_one_line(capsys: pytest.CaptureFixture[str], args: list[str], fragments: list[str]) -> None:
    code, _, err = run_cli([*args], capsys)
    assert_one_line_error(code, err, *fragments)


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--label", "12"], ["label 12 out of range"]),
        (
            ["--label", "Zebra"],
            ["unknown class 'Zebra'", "classes: " + ", ".join(DATASETS[IDX_DATASET].class_names[:2])],
        ),
        (["--num", "0"], ["--num", "0 is not in the range"]),
        (["--num", "-3"], ["--num", "-3 is not in the range"]),
        (["--output", "/proc/forbidden/x.png"], ["cannot write to /proc/forbidden"]),
        (["--output", "images.jpg"], ["unsupported output"]),
    ],
)
def test_bad_generate_input_gets_one_line_and_leaves_checkpoints_alone(
    capsys: pytest.CaptureFixture[str], trained_run: Path, extra: list[str], fragments: list[str]
) -> None:
    before = tree_digest(trained_run / "checkpoints")
    base = {"--label": "1", "--num": "4", "--output": str(trained_run.parent / "ok.png")}
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        base[flag] = value
    args = ["generate", "--checkpoint", str(trained_run)] + [x for kv in base.items() for x in kv]
    code, _, err = run_cli([*args], capsys)
    assert_one_line_error(code, err, *fragments)
    assert tree_digest(trained_run / "checkpoints") == before


def test_unreadable_and_mismatched_checkpoints(
    capsys: pytest.CaptureFixture[str], trained_run: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    code, _, err = run_cli(["generate", "--checkpoint", str(garbage), "--output", str(tmp_path / "x.png")], capsys)
    assert_one_line_error(code, err, "garbage.safetensors")
    broken = tmp_path / "broken"
    (broken / "checkpoints").mkdir(parents=True)
    (broken / "checkpoints" / "latest").write_text("step_00000099")
    code, _, err = run_cli(["generate", "--checkpoint", str(broken), "--output", str(tmp_path / "x.png")], capsys)
    assert_one_line_error(code, err, "missing or incomplete")


def test_missing_data_is_one_clear_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from dataclasses import replace

    from acgan.data.registry import DATASETS, MNIST
    from tests.test_data import _closed_port_url

    monkeypatch.setitem(DATASETS, "mnist", replace(MNIST, mirrors=(_closed_port_url(),)))
    (tmp_path / "none").mkdir()  # an existing folder without the data set (a missing --data-dir is a usage error)
    code, _, err = run_cli(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "none"),
                           "--run-dir", str(tmp_path / "run"), "--no-progress"], capsys)  # fmt: skip
    assert_one_line_error(code, err, "data set 'mnist': missing", str(tmp_path / "none" / "mnist"), "Download failed")


@pytest.mark.slow
def test_console_script_interrupt_exits_130_and_keeps_a_good_checkpoint(idx_root: Path, tmp_path: Path) -> None:
    """A real process: SIGINT after the first checkpoint -> one message, exit 130, loadable checkpoint."""
    run = tmp_path / "run"
    env = {**os.environ, "ACGAN_DATA_DIR": str(idx_root), "ACGAN_CACHE_DIR": str(tmp_path / "cache")}
    process = subprocess.Popen(
        [sys.executable, "-m", "acgan", "train", *TINY, "--run-dir", str(run), "--epochs", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "latest").exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted at step" in err and "--resume" in err
    from acgan.sampling import load_generator

    assert load_generator(run).step >= 4
