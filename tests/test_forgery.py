"""Forged, edited and odd inputs that used to be trusted or dropped silently: each gets one line or a correct,
recorded result (foreign ONNX graphs with copied metadata, a config.json with a field removed, hidden class folders,
class names equal after Unicode normalisation, a public --host, a step folder given to --resume)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from acgan.config import TrainConfig
from acgan.data.dataset import load_dataset
from acgan.errors import AcganError, CheckpointError, DataError
from acgan.sampling import load_generator
from acgan.training import train
from tests.helpers import assert_one_line_error, forged_onnx, make_folder, make_image, run_cli, write_checkpoint

TINY = {"batch_size": 8, "width": 4, "device": "cpu", "tensorboard": False, "epochs": None}


@pytest.mark.parametrize(("kind", "reason"), [("inputs", "its inputs are labels"), ("shape", "not an image of shape"),
                                              ("range", "not in [-1, 1]")])  # fmt: skip
def test_a_foreign_onnx_graph_with_copied_metadata_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, reason: str
) -> None:
    forged = forged_onnx(tmp_path / "g.onnx", load_generator(write_checkpoint(tmp_path)), kind)
    with pytest.raises(CheckpointError, match=f"not an acgan generator export: .*{re.escape(reason)}"):
        load_generator(forged)
    for command in (["generate", "--checkpoint", str(forged), "--num", "10", "--output", str(tmp_path / "x.png")],
                    ["info", "--checkpoint", str(forged)],
                    ["serve", "--checkpoint", str(forged), "--port", "0"]):  # fmt: skip
        code, _, err = run_cli(command, capsys)
        assert_one_line_error(code, err, "not an acgan generator export")  # serve refuses to start


def test_a_field_removed_from_config_json_is_taken_from_the_checkpoint_never_a_default(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "data", per_class=8, size=16)
    run = tmp_path / "run"
    train(TrainConfig(dataset=str(folder), steps=2, lr_g=5e-4, r1=0.5, **TINY), run, show_progress=False)
    record = json.loads((run / "config.json").read_text())
    del record["train"]["lr_g"], record["train"]["r1"]  # an edited file: r1 has a legacy value, lr_g none
    (run / "config.json").write_text(json.dumps(record))
    from acgan.training.run_writer import read_run_config

    config = read_run_config(run)
    assert (config.lr_g, config.r1) == (5e-4, 0.5)  # what training used, from the checkpoint's record
    train(config.replace(steps=3), run, resume=True, show_progress=False)
    assert json.loads((run / "config.json").read_text())["train"]["lr_g"] == 5e-4  # the record is right again


def test_a_field_removed_before_any_checkpoint_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    saved = {k: v for k, v in TrainConfig(dataset="x", **TINY, steps=2).to_dict().items() if k != "lr_d"}
    (run / "config.json").write_text(json.dumps({"train": saved}))
    code, _, err = run_cli(["train", "--resume", str(run)], capsys)
    assert_one_line_error(code, err, "lacks lr_d and no checkpoint records")


def test_hidden_class_folders_are_named_on_the_terminal_and_in_the_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_folder(tmp_path / "shapes", per_class=8, size=16)
    for name in ("...", "..x", ".cache"):
        (root / name).mkdir()
        make_image(0, 0, 16).save(root / name / "a.png")
    (root / "circle" / ".thumbnails").mkdir()
    make_image(0, 0, 16).save(root / "circle" / ".thumbnails" / "t.png")
    data = load_dataset(str(root), "train", holdout=0.0, show_progress=False)
    assert data.info.num_classes == 3
    note = " ".join(data.notes)
    for shown in (".../", "..x/", ".cache/", "circle/.thumbnails/"):
        assert shown in note, note
    run = tmp_path / "run"
    train(TrainConfig(dataset=str(root), steps=1, **TINY), run, show_progress=False)
    assert ".../" in capsys.readouterr().err
    warnings = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("hidden folder" in w.get("message", "") and "..x/" in w["message"] for w in warnings)


def test_class_names_equal_after_unicode_normalisation_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "accents"
    composed, decomposed = unicodedata.normalize("NFC", "été"), unicodedata.normalize("NFD", "été")
    for index, name in enumerate((composed, decomposed, "hiver")):
        (root / name).mkdir(parents=True)
        for k in range(4):
            make_image(index, k, 16).save(root / name / f"{k}.png")
    if len(os.listdir(root)) < 3:
        pytest.skip("this file system normalises names itself")
    with pytest.raises(DataError, match="same name written two ways"):
        load_dataset(str(root), "train", show_progress=False)
    code, _, err = run_cli(["train", "--dataset", str(root), "--steps", "1", "--run-dir", str(tmp_path / "r")], capsys)
    assert_one_line_error(code, err, "same name written two ways")


def test_resume_given_a_step_folder_says_to_pass_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_folder(tmp_path / "data", per_class=8, size=16)
    run = tmp_path / "run"
    train(TrainConfig(dataset=str(folder), steps=1, **TINY), run, show_progress=False)
    step = run / "checkpoints" / "step_00000001"
    code, _, err = run_cli(["train", "--resume", str(step), "--steps", "2"], capsys)
    assert_one_line_error(code, err, "is a checkpoint folder, not a run", f"acgan train --resume {run}")
    with pytest.raises(AcganError, match="checkpoint folder"):
        train(TrainConfig(dataset=str(folder), steps=2, **TINY), step, resume=True, show_progress=False)


@pytest.mark.slow
def test_serving_on_every_interface_says_it_is_reachable_and_unauthenticated(tmp_path: Path) -> None:
    weights = write_checkpoint(tmp_path)
    server = subprocess.Popen([sys.executable, "-m", "acgan", "serve", "--checkpoint", str(weights), "--host", "0.0.0.0",
                               "--port", "0"], stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("serving" in line for line in lines):
            lines.append(server.stderr.readline())  # type: ignore[union-attr]
        warning = [line for line in lines if line.startswith("warning:")]
        assert warning and "reachable from other machines" in warning[0] and "no authentication" in warning[0]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_loopback_hosts_get_no_warning() -> None:
    from acgan.cli import _loopback

    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("localhost") and _loopback("127.8.0.1")
    assert not _loopback("0.0.0.0") and not _loopback("::") and not _loopback("192.168.1.5")
