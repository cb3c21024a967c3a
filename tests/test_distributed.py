"""Data-parallel training: 2 gloo processes on the CPU through `acgan train --nproc 2` (torchrun underneath)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from acgan.data.batches import step_indices
from acgan.launch import strip_nproc
from acgan.training.distributed import rank_seed
from acgan.training.signals import GracefulStop
from tests.conftest import assert_same_weights
from tests.helpers import make_folder

# one schedule length for a run and its split twin (the colour default decays its learning rates over its bound)
FLAGS = ["--batch-size", "16", "--width", "8", "--device", "cpu", "--precision", "fp32", "--no-progress",
         "--nproc", "2", "--schedule-steps", "1000"]  # fmt: skip

pytestmark = pytest.mark.slow  # multi-process, subprocess or long: `make test-fast` leaves it out


def acgan(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run `python -m acgan ARGS` in a fresh process (the launcher starts its own worker processes)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "acgan", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)  # fmt: skip


def metrics(run: Path) -> list[dict[str, float]]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if "kind" not in record]


def test_two_processes_train_resume_exactly_and_save_a_usable_generator(tmp_path: Path) -> None:
    data = str(make_folder(tmp_path / "shapes", per_class=24))
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ["train", "--dataset", data, "--checkpoint-every", "5", *FLAGS]
    done = acgan(*common, "--steps", "10", "--run-dir", str(straight))
    assert done.returncode == 0, done.stderr
    assert "2 processes, global batch 32" in done.stdout
    first = acgan(*common, "--steps", "5", "--run-dir", str(split))
    assert first.returncode == 0, first.stderr
    resumed = acgan("train", "--resume", str(split), "--steps", "10", "--nproc", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(straight, split)

    config = json.loads((split / "config.json").read_text())
    assert config["runtime"]["world_size"] == 2 and config["runtime"]["global_batch_size"] == 32
    records = metrics(split)
    steps = [int(record["step"]) for record in records]
    assert steps == sorted(set(steps)) and steps[-1] == 10  # one writer, no duplicates after resuming
    assert all(record["images_seen"] == record["step"] * 32 for record in records)

    # another number of processes cannot continue the random streams: one clear line, nothing written
    other = acgan("train", "--resume", str(split), "--steps", "12", "--no-progress")
    assert other.returncode == 1 and "2-process run" in other.stderr and "--nproc 2" in other.stderr
    assert "Traceback" not in other.stderr

    from acgan.sampling import load_generator

    trained = load_generator(split)
    images = trained.sample(torch.tensor([0, 1, 2]), seed=1)
    assert images.shape == (3, 3, 32, 32) and trained.step == 10


def _worker_pids(launcher: int) -> dict[int, int]:
    """{local rank: pid} of the workers torchrun started under `launcher` (read from /proc)."""
    workers: dict[int, int] = {}
    for task in Path(f"/proc/{launcher}/task").iterdir():
        for pid in (task / "children").read_text().split():
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            ranks = [entry.split(b"=", 1)[1] for entry in environ if entry.startswith(b"LOCAL_RANK=")]
            if ranks:
                workers[int(ranks[0])] = int(pid)
    return workers


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads worker pids from Linux /proc")
def test_a_signal_to_one_rank_stops_every_rank_with_a_checkpoint_that_resumes_exactly(tmp_path: Path) -> None:
    data = str(make_folder(tmp_path / "shapes", per_class=24))
    run, straight = tmp_path / "run", tmp_path / "straight"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "acgan", "train", "--dataset", data, "--steps", "100000",
                                "--run-dir", str(run), "--checkpoint-every", "5", *FLAGS],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoints" / "latest").is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = _worker_pids(process.pid)
        assert sorted(workers) == [0, 1], workers
        os.kill(workers[1], signal.SIGTERM)  # rank 1 alone: every rank must agree to stop
        _out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "--nproc 2" in err and "Traceback" not in err
    from acgan.checkpoint import read_meta, resolve_checkpoint_dir

    step = int(read_meta(resolve_checkpoint_dir(run))["step"])
    assert step >= 2  # epochs of 2 steps: a checkpoint at each epoch end, and one when stopping
    resumed = acgan("train", "--resume", str(run), "--steps", str(step + 2), "--nproc", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    done = acgan("train", "--dataset", data, "--steps", str(step + 2), "--run-dir", str(straight),
                 "--checkpoint-every", "5", *FLAGS)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert_same_weights(straight, run)


def test_ranks_draw_different_batches_and_rank_zero_keeps_a_single_process_stream() -> None:
    assert rank_seed(7, 0) == 7
    assert len({rank_seed(7, rank) for rank in range(8)}) == 8 and all(0 <= rank_seed(7, r) < 2**63 for r in range(8))
    assert np.array_equal(step_indices(1000, 16, 3, 5), step_indices(1000, 16, 3, 5, rank=0))
    assert not np.array_equal(step_indices(1000, 16, 3, 5, rank=0), step_indices(1000, 16, 3, 5, rank=1))


def test_strip_nproc_removes_both_spellings() -> None:
    assert strip_nproc(["train", "--nproc", "2", "--steps", "3"]) == ["train", "--steps", "3"]
    assert strip_nproc(["train", "--nproc=4", "--nproc-foo"]) == ["train", "--nproc-foo"]


def test_a_second_signal_waits_for_a_shielded_save() -> None:
    finished = []
    with GracefulStop() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested
        with pytest.raises(KeyboardInterrupt), stop.shielded():
            os.kill(os.getpid(), signal.SIGINT)  # arrives mid-save
            finished.append("saved")
    assert finished == ["saved"]
    with GracefulStop(repeat_interrupts=False) as stop:  # a torchrun worker: repeats are only noted
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested


def test_fp16_scales_its_losses_and_resumes_exactly(tmp_path: Path) -> None:
    """fp16 autocast with a gradient scaler per network (meant for GPUs without bf16; runs on the CPU too)."""
    from acgan.config import TrainConfig
    from acgan.training import train

    options = {"dataset": str(make_folder(tmp_path / "shapes")), "batch_size": 16, "width": 8, "device": "cpu",
               "precision": "fp16", "metrics_every": 1, "schedule_steps": 100}  # fmt: skip
    train(TrainConfig(steps=6, **options), tmp_path / "straight", show_progress=False)
    train(TrainConfig(steps=3, **options), tmp_path / "split", show_progress=False)
    train(TrainConfig(steps=6, **options), tmp_path / "split", resume=True, show_progress=False)
    assert_same_weights(tmp_path / "straight", tmp_path / "split")
    from acgan.checkpoint import resolve_checkpoint_dir

    state = torch.load(resolve_checkpoint_dir(tmp_path / "split") / "train_state.pt", weights_only=True)
    assert set(state["scalers"]) == {"d", "g"} and state["scalers"]["g"]["scale"] > 0
    assert all(math.isfinite(record["g_source"]) for record in metrics(tmp_path / "split"))


def test_penalties_ada_and_a_paired_loss_train_and_resume_exactly_in_two_processes(tmp_path: Path) -> None:
    """R1 calls D outside DDP (gradients averaged by hand), ADA averages D's confidence over the processes, the
    paired loss updates D on both halves at once: a 2-process run and its split-and-resumed twin end bit-identical."""
    data = str(make_folder(tmp_path / "shapes", per_class=24))
    options = ["--dataset", data, "--objective", "rpgan+adc", "--r1", "1", "--reg-every", "2", "--ada", "--mbstd",
               "--ada-kimg", "0.05", *FLAGS]  # fmt: skip
    assert acgan("train", *options, "--steps", "6", "--run-dir", str(tmp_path / "straight")).returncode == 0
    first = acgan("train", *options, "--steps", "3", "--run-dir", str(tmp_path / "split"))
    assert first.returncode == 0, first.stderr
    resumed = acgan("train", "--resume", str(tmp_path / "split"), "--steps", "6", "--nproc", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_weights(tmp_path / "straight", tmp_path / "split")
    train_config = json.loads((tmp_path / "split" / "config.json").read_text())["train"]
    assert (train_config["r1"], train_config["ada"], train_config["d_updates"]) == (1.0, True, "joint")
