"""Several processes on one run directory: one writer at a time (RUN/.lock), readers at any time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from acgan.checkpoint import resolve_checkpoint_dir
from tests.helpers import make_folder

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def one_thread_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every acgan process here runs beside a training one: one thread each, or on a 2-core machine their OpenMP
    threads spin against each other and a 15-second evaluation takes minutes."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def acgan(*args: str) -> list[str]:
    return [sys.executable, "-m", "acgan", *args]


def train_args(folder: Path, run: Path, steps: int) -> list[str]:
    return acgan("train", "--dataset", str(folder), "--run-dir", str(run), "--steps", str(steps), "--batch-size", "8",
                 "--width", "4", "--device", "cpu", "--precision", "fp32", "--sample-every", "1000", "--keep-every",
                 "1000", "--checkpoint-every", "5", "--no-progress")  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "shapes", per_class=40, size=16)


@pytest.fixture
def trainer(folder: Path, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A long training of tmp_path/run in the background, once it has written its first checkpoint."""
    run = tmp_path / "run"
    process = subprocess.Popen(train_args(folder, run, 100_000), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "latest").is_file():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
        time.sleep(0.2)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def metrics_steps(run: Path) -> list[int]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [record["step"] for record in lines if "kind" not in record]


def test_two_writers_started_together_one_is_refused_naming_the_other(folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = subprocess.Popen(train_args(folder, run, 40), stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(train_args(folder, run, 40), stderr=subprocess.PIPE, text=True)
    errors = {process.pid: process.communicate(timeout=300)[1] for process in (first, second)}
    codes = sorted((first.returncode, second.returncode))
    assert codes == [0, 1], errors
    loser, winner = (first, second) if first.returncode else (second, first)
    assert f"is in use by another acgan process (pid {winner.pid})" in errors[loser.pid]
    steps = metrics_steps(run)
    assert steps == sorted(set(steps)) and steps[-1] == 40  # one writer's lines, each once
    assert len(list((run / "tensorboard").glob("events.*"))) == 1


def test_resume_while_training_is_refused_and_readers_keep_working(
    trainer: subprocess.Popen[str], folder: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    refused = subprocess.run(acgan("train", "--resume", str(run), "--steps", "100000"), capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    assert refused.returncode == 1 and f"(pid {trainer.pid})" in refused.stderr, refused.stderr
    for reader in (["info", "--checkpoint", str(run)],
                   ["generate", "--checkpoint", str(run), "--num", "3", "--output", str(tmp_path / "x.png")],
                   ["evaluate", "--checkpoint", str(run), "--num", "30"],
                   ["export", "--checkpoint", str(run), "--format", "torchscript", "--output", str(tmp_path / "g.pt")]):  # fmt: skip
        done = subprocess.run(acgan(*reader), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (reader, done.stderr[-500:])
    assert trainer.poll() is None  # still training, undisturbed
    os.kill(trainer.pid, signal.SIGINT)
    output = trainer.communicate(timeout=120)[0]
    assert trainer.returncode == 130, output
    stopped_at = int(resolve_checkpoint_dir(run).name.removeprefix("step_"))
    steps = metrics_steps(run)
    assert steps == sorted(set(steps))  # nobody else wrote lines into the run
    resumed = subprocess.run(acgan("train", "--resume", str(run), "--steps", str(stopped_at + 5), "--no-progress"),
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr  # the lock went with the process
    assert resolve_checkpoint_dir(run).name == f"step_{stopped_at + 5:08d}"


def test_a_killed_writer_leaves_no_stale_lock(trainer: subprocess.Popen[str], tmp_path: Path) -> None:
    trainer.kill()  # kill -9: no handler runs, the operating system drops the lock
    trainer.wait()
    run = tmp_path / "run"
    stopped_at = int(resolve_checkpoint_dir(run).name.removeprefix("step_"))
    resumed = subprocess.run(acgan("train", "--resume", str(run), "--steps", str(stopped_at + 5), "--no-progress"),
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
