"""Classes of misuse a new user runs into (issue 19): each ends in one clear line, never in lost or mixed-up data.

Pointers that leave the run directory, a data set changed under a run, labels that are digits or Unicode,
links and odd image sizes in folders, floats beyond float32, files of the wrong kind, long class names,
interrupted folders, evaluations of different sizes, and logs that are not terminals.
"""

from __future__ import annotations

import io
import json
import shutil
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acgan.checkpoint import CHECKPOINTS_DIR, LATEST, resolve_checkpoint_dir
from acgan.config import FLOAT_RANGES, TrainConfig
from acgan.data.dataset import DatasetInfo, load_dataset
from acgan.errors import AcganError, CheckpointError
from acgan.evaluation.evaluate import better_founded, json_safe, write_report
from acgan.files import NAME_MAX, atomic_write_bytes, temporary_path
from acgan.labels import label_note, labels_for_request, resolve_label
from acgan.outputs import image_name
from acgan.progress import TrainingProgress
from acgan.sampling import load_generator
from acgan.training import train
from tests.helpers import assert_one_line_error, make_folder, run_cli

TINY = {"batch_size": 8, "width": 4, "device": "cpu", "precision": "fp32", "tensorboard": False}


@pytest.fixture(scope="module")
def digit_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step run on a folder whose classes are named "1", "2", "3"."""
    root = tmp_path_factory.mktemp("digits")
    folder = make_folder(root / "digits", classes=("1", "2", "3"), per_class=8, size=16)
    run = root / "run"
    train(TrainConfig(dataset=str(folder), steps=2, epochs=None, **TINY), run, show_progress=False)
    return run


# ---- pointers inside a run directory -------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["../other/checkpoints/step_00000002", "/tmp", "step_00000002/..", "..",
                                     "x" * 100_000, "step_2", ""])  # fmt: skip
def test_latest_names_a_folder_inside_checkpoints_or_is_damaged(digit_run: Path, tmp_path: Path, content: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    run = tmp_path / "run"
    shutil.copytree(digit_run, run)
    (run / CHECKPOINTS_DIR / LATEST).write_text(content)
    with pytest.raises(CheckpointError, match="is damaged"):
        resolve_checkpoint_dir(run)
    for args in (["info", "--checkpoint", str(run)], ["evaluate", "--checkpoint", str(run), "--num", "30"],
                 ["train", "--resume", str(run), "--steps", "4"]):  # fmt: skip
        code, _, err = run_cli(args, capsys)
        assert_one_line_error(code, err, "damaged")
        assert len(err) < 500  # a huge pointer file is not echoed
    assert not (run / "eval.json").exists()


def test_a_damaged_best_pointer_prunes_nothing(digit_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(digit_run, run)
    (run / CHECKPOINTS_DIR / "best").write_text("../../elsewhere")
    train(TrainConfig(dataset=str(digit_run.parent / "digits"), steps=6, epochs=None, checkpoint_every=1, **TINY),
          run, resume=True, show_progress=False)  # fmt: skip
    kept = sorted(p.name for p in (run / CHECKPOINTS_DIR).glob("step_*"))
    assert kept == [f"step_{k:08d}" for k in range(2, 7)]


# ---- the data set changed under a run --------------------------------------------------------------------------


def test_resuming_on_changed_classes_is_refused_and_changed_images_are_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_folder(tmp_path / "shapes", per_class=8, size=16)
    run = tmp_path / "run"
    code, _, _ = run_cli(["train", "--dataset", str(folder), "--run-dir", str(run), "--steps", "2", "--batch-size",
                          "8", "--width", "4", "--device", "cpu", "--no-progress"], capsys)  # fmt: skip
    assert code == 0
    resume = ["train", "--resume", str(run), "--steps", "4", "--no-progress"]
    (folder / "square").rename(folder / "squares")
    code, _, err = run_cli(resume, capsys)
    assert_one_line_error(code, err, "renamed", "'square'", "'squares'", "circle, square, triangle")
    (folder / "squares").rename(folder / "square")
    shutil.copytree(folder / "circle", folder / "disc")
    code, _, err = run_cli(resume, capsys)
    assert_one_line_error(code, err, "added 'disc'")
    shutil.rmtree(folder / "disc")
    shutil.rmtree(folder / "triangle")
    code, _, err = run_cli(resume, capsys)
    assert_one_line_error(code, err, "removed 'triangle'")
    assert resolve_checkpoint_dir(run).name == "step_00000002"  # nothing trained, nothing pruned
    make_folder(tmp_path / "again", per_class=8, size=16)
    shutil.copytree(tmp_path / "again" / "triangle", folder / "triangle")
    (folder / "circle" / "000.png").unlink()  # the same classes, one image fewer: allowed, and said
    code, _, err = run_cli(resume, capsys)
    assert code == 0 and "the training images changed since step 2 (21 -> 20 images" in err
    warnings = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("training images changed" in r.get("message", "") for r in warnings)


# ---- labels --------------------------------------------------------------------------------------------------

DIGITS = DatasetInfo("digits", 3, 1, 8, ("1", "2", "3"))
CAFE = DatasetInfo("menu", 3, 1, 8, (unicodedata.normalize("NFD", "Café"), "TEA", "7"))


def test_a_class_name_wins_over_an_index_and_either_can_be_forced() -> None:
    assert resolve_label("1", DIGITS) == 0  # the class named "1", not index 1
    assert resolve_label(" 3 ", DIGITS) == 2
    assert resolve_label("index:1", DIGITS) == 1 and resolve_label("name:1", DIGITS) == 0
    assert resolve_label(1, DIGITS) == 1  # a Python int is an index
    assert resolve_label("0", DIGITS) == 0  # no class named "0": the index
    with pytest.raises(AcganError, match="out of range"):
        resolve_label("index:3", DIGITS)
    with pytest.raises(AcganError, match="unknown class '0'"):
        resolve_label("name:0", DIGITS)
    with pytest.raises(AcganError, match="whole number"):
        resolve_label("index:two", DIGITS)
    assert (
        label_note("1", DIGITS) == "label '1' is the class named '1' (index 0); write index:1 for the class at index 1"
    )
    assert label_note("index:1", DIGITS) is None and label_note("0", DIGITS) is None


def test_names_compare_after_nfc_and_case_folding() -> None:
    assert resolve_label(unicodedata.normalize("NFC", "café"), CAFE) == 0  # NFC against a folder's NFD, any case
    assert resolve_label("tea", CAFE) == 1 and resolve_label("CAFÉ", CAFE) == 0
    assert resolve_label("7", CAFE) == 2 and resolve_label("index:2", CAFE) == 2
    twins = DatasetInfo("twins", 2, 1, 8, ("Cat", "cat"))
    assert resolve_label("cat", twins) == 1 and resolve_label("Cat", twins) == 0  # exact first
    with pytest.raises(AcganError, match="matches 2 classes"):
        resolve_label("CAT", twins)
    assert labels_for_request("name:1", 2, DIGITS) == [0, 0] and labels_for_request("all", 3, DIGITS) == [0, 1, 2]


def test_the_cli_and_the_api_follow_the_same_label_rule(digit_run: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from fastapi.testclient import TestClient

    from acgan.serving import create_app

    for label, expected in (("1", 0), ("index:1", 1), ("name:3", 2), ("2", 1)):
        output = tmp_path / f"{label.replace(':', '-')}.npz"
        code, _, err = run_cli(["generate", "--checkpoint", str(digit_run), "--label", label, "--num", "2", "--output",
                                str(output)], capsys)  # fmt: skip
        assert code == 0, err
        assert np.load(output)["labels"].tolist() == [expected, expected]
        assert ("note: label '1' is the class named '1'" in err) == (label == "1")
    trained = load_generator(digit_run)
    assert trained.sample(["1", "index:1", 2], seed=0).shape[0] == 3
    with TestClient(create_app(trained)) as client:
        for label, expected in (("1", 0), ("index:1", 1), ("name:3", 2)):
            answer = client.get(f"/api/v1/generate?label={label}&n=1&format=npz")
            assert np.load(io.BytesIO(answer.content))["labels"].tolist() == [expected]


# ---- folders -------------------------------------------------------------------------------------------------


def test_links_to_folders_are_not_followed_and_said(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "shapes", per_class=6, size=16)
    (folder / "copies").symlink_to(folder / "circle", target_is_directory=True)
    (folder / "square" / "nested").symlink_to(folder / "triangle", target_is_directory=True)
    data = load_dataset(str(folder))
    assert data.info.class_names == ("circle", "square", "triangle") and len(data) == 15  # 18 less 1 per class held out
    assert any("2 a link to a folder (not followed)" in note and "copies/" in note for note in data.notes)


@pytest.mark.parametrize("size", [2, 1100])
def test_images_of_an_unsupported_size_ask_for_a_resolution(tmp_path: Path, size: int,
                                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    for name in ("a", "b"):
        (tmp_path / "odd" / name).mkdir(parents=True)
        for index in range(2):
            Image.new("RGB", (size, size), (index * 90, 20, 20)).save(tmp_path / "odd" / name / f"{index}.png")
    code, _, err = run_cli(["train", "--dataset", str(tmp_path / "odd"), "--run-dir", str(tmp_path / "run"),
                            "--steps", "1", "--batch-size", "4", "--device", "cpu"], capsys)  # fmt: skip
    assert_one_line_error(code, err, f"{size}x{size} pixels", "--resolution")
    assert not (tmp_path / "run").exists()


# ---- numbers -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FLOAT_RANGES))
def test_every_float_field_refuses_values_beyond_its_range(name: str) -> None:
    for value in (1e300, -1e300, float("nan"), float("inf")):
        with pytest.raises(AcganError, match=name):
            TrainConfig(**{name: value})


# ---- files of the wrong kind, long names, interrupted folders ---------------------------------------------------


def test_discriminator_weights_and_pytorch_files_are_named_for_what_they_are(
    digit_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    checkpoint = resolve_checkpoint_dir(digit_run)
    scripted = tmp_path / "g.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(scripted))
    for path, fragment in ((checkpoint / "discriminator.safetensors", "discriminator's weights"),
                           (checkpoint / "train_state.pt", "PyTorch file"), (scripted, "TorchScript")):  # fmt: skip
        code, _, err = run_cli(["generate", "--checkpoint", str(path), "--num", "2", "--output",
                                str(tmp_path / "x.png")], capsys)  # fmt: skip
        assert_one_line_error(code, err, fragment)


def test_long_class_names_fit_the_file_name_limit(tmp_path: Path) -> None:
    long = "ü" * 200  # 400 bytes
    name = image_name(12, 3, long, digits=5)
    assert name.startswith("00012_3_ü") and len(name) < 90
    path = tmp_path / ("x" * 250)
    assert len(temporary_path(path).name.encode()) <= NAME_MAX
    atomic_write_bytes(path, b"fits")
    assert path.read_bytes() == b"fits" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_an_interrupted_folder_says_what_it_holds_and_the_same_command_continues_it(
    digit_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from acgan.outputs import ImageFolder

    out = tmp_path / "images"
    args = ["generate", "--checkpoint", str(digit_run), "--label", "all", "--num", "12", "--output", f"{out}/"]
    real_write, calls = ImageFolder.write, []

    def interrupted(self: ImageFolder, images: np.ndarray, labels: np.ndarray, first_index: int) -> None:
        calls.append(first_index)
        real_write(self, images[:5], labels[:5], first_index)
        raise KeyboardInterrupt

    monkeypatch.setattr("acgan.outputs.ImageFolder.write", interrupted)
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, "interrupted: 5 of 12 images", "run the same command again")
    assert json.loads((out / "class_names.json").read_text()) == ["1", "2", "3"]
    monkeypatch.setattr("acgan.outputs.ImageFolder.write", real_write)
    code, _, err = run_cli(args, capsys)
    assert code == 0 and "continuing" in err and "5 of 12 images are already there" in err
    continued = sorted(p.name for p in out.glob("*.png"))
    shutil.rmtree(out)
    assert run_cli(args, capsys)[0] == 0
    assert sorted(p.name for p in out.glob("*.png")) == continued and len(continued) == 12
    other = [*args[:-1], f"{out}/"]
    other[other.index("12")] = "6"
    code, _, err = run_cli(other, capsys)  # another request into the same folder: refused without --force
    assert_one_line_error(code, err, "not empty", "--force")


# ---- evaluations of different sizes ----------------------------------------------------------------------------


def test_a_smaller_evaluation_keeps_the_better_founded_one_and_json_has_no_nan(tmp_path: Path) -> None:
    report = {"checkpoint": str(tmp_path / "ck" / "g_ema.safetensors"), "step": 5, "num_samples": 10_000,
              "metrics": {"fd": {"generated": 1.0, "real": float("nan")},
                          "conditional_accuracy": {"generated": 0.5, "real": 0.9}}, "confusion": [[1]],
              "per_class": [{"class": "a"}]}  # fmt: skip
    (tmp_path / "ck").mkdir()
    write_report(report, tmp_path)
    small = {**report, "num_samples": 20}
    assert better_founded(report, small) and not better_founded(small, report)
    done = write_report(small, tmp_path)
    assert any("kept" in line and "10000 samples" in line for line in done)
    assert json.loads((tmp_path / "eval.json").read_text())["num_samples"] == 10_000
    assert json.loads((tmp_path / "eval-n20.json").read_text())["metrics"]["fd"]["real"] is None
    assert json.loads((tmp_path / "ck" / "eval.json").read_text())["num_samples"] == 10_000
    later = {**small, "step": 9}
    done = write_report(later, tmp_path)
    assert any(line.startswith("replaced") and "step 5, 10000 samples" in line for line in done)
    assert json_safe([float("inf"), {"x": float("-inf")}, 1.5]) == [None, {"x": None}, 1.5]


# ---- logs that are not terminals ---------------------------------------------------------------------------------


def test_progress_to_a_file_is_plain_lines() -> None:
    log = io.StringIO()  # not a terminal
    with TrainingProgress(total=100, initial=0, show=True, every_s=0.0, stream=log) as progress:
        for step in range(1, 101):
            progress.statistics = {"d_real_source": 0.5}
            progress.update(step)
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) == 101 and lines[-1].startswith("step 100/100 (100%)") and "d_real_source 0.500" in lines[-1]
    quiet = io.StringIO()
    with TrainingProgress(total=10, initial=0, show=True, every_s=3600.0, stream=quiet) as progress:
        progress.update(10)
    assert quiet.getvalue().count("\n") == 1  # only the closing line within the hour


@pytest.mark.slow
def test_training_redirected_to_a_file_writes_no_carriage_returns(tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = make_folder(tmp_path / "shapes", per_class=6, size=16)
    log = tmp_path / "train.log"
    with open(log, "w") as handle:
        subprocess.run([sys.executable, "-m", "acgan", "train", "--dataset", str(folder), "--run-dir",
                        str(tmp_path / "run"), "--steps", "3", "--batch-size", "8", "--width", "4", "--device", "cpu",
                        "--precision", "fp32"], stdout=handle, stderr=subprocess.STDOUT, check=True, timeout=300)  # fmt: skip
    text = log.read_text()
    assert "\r" not in text and "step 3/3 (100%)" in text and "done: 3 steps" in text


def test_resuming_clears_what_interrupted_writes_left_in_the_checkpoints_folder(
    digit_run: Path, tmp_path: Path
) -> None:
    """A kill while `latest` or a checkpoint folder was being written leaves .NAME.tmp-PID behind (benchmarks/crash.py
    found the first); the resumed run removes them, and leaves those of a live process alone."""
    import os

    run = tmp_path / "run"
    shutil.copytree(digit_run, run)
    dead = 2**22 + 12345  # above the kernel's pid_max default: no such process
    torn = [run / "checkpoints" / f".latest.tmp-{dead}", run / f".metrics.jsonl.tmp-{dead}"]
    for path in torn:
        path.write_text("half")
    (run / "checkpoints" / f".step_00000003.tmp-{dead}").mkdir()
    live = run / f".eval.json.tmp-{os.getppid()}"  # a reader writing beside the run (our parent is alive)
    live.write_text("being written")
    train(TrainConfig(dataset=str(digit_run.parent / "digits"), steps=3, epochs=None, **TINY), run, resume=True,
          show_progress=False)  # fmt: skip
    assert not any(path.exists() for path in torn) and not (run / "checkpoints" / f".step_00000003.tmp-{dead}").exists()
    assert live.exists()
