"""TensorBoard event files: every statistic, evaluation, grid and the config; resume continues without duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from acgan.config import TrainConfig
from acgan.training import train
from tests.helpers import make_folder
from tests.test_folders import TINY


def read_events(run: Path) -> EventAccumulator:
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def test_runs_write_tensorboard_logs_and_resume_without_duplicates(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "shapes")
    options = {"dataset": str(root), "schedule_steps": 100, **TINY}  # one schedule for both (the colour default's)
    train(TrainConfig(epochs=2, **options), tmp_path / "straight", show_progress=False)
    train(TrainConfig(epochs=1, **options), tmp_path / "split", show_progress=False)
    train(TrainConfig(epochs=2, **options), tmp_path / "split", resume=True, show_progress=False)
    straight, split = read_events(tmp_path / "straight"), read_events(tmp_path / "split")
    tags = straight.Tags()
    assert {"train/d_real_source", "train/d_fake_source", "train/g_source", "train/d_real_acc"} <= set(tags["scalars"])
    assert "samples" in tags["images"] and "config/text_summary" in tags["tensors"]
    for tag in ("train/g_source", "train/d_real_source"):
        steps = [event.step for event in split.Scalars(tag)]
        assert steps == sorted(set(steps)), "resume must not log a step twice"
        assert steps == [event.step for event in straight.Scalars(tag)]
        assert [e.value for e in split.Scalars(tag)] == [e.value for e in straight.Scalars(tag)]  # exact resume
    assert [image.step for image in split.Images("samples")] == [image.step for image in straight.Images("samples")]


def test_no_tensorboard_writes_no_event_files(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "shapes", per_class=8)
    train(TrainConfig(dataset=str(root), steps=2, epochs=None, tensorboard=False, **TINY), tmp_path / "r",
          show_progress=False)  # fmt: skip
    assert not (tmp_path / "r" / "tensorboard").exists() and (tmp_path / "r" / "metrics.jsonl").is_file()


def test_evaluations_are_logged_by_the_metric_registry_beside_real_data(tmp_path: Path) -> None:
    from acgan.evaluation.registry import METRICS
    from acgan.training.tensorboard import TensorBoardLog

    log = TensorBoardLog(tmp_path / "tensorboard")
    record = {"kind": "eval", "step": 7, "epoch": 1, "seconds": 12.5, "collapsed_classes": [],
              **{m.name: 0.25 for m in METRICS}, "real": {m.name: 0.5 for m in METRICS},
              "intervals": {"fd": [0.2, 0.3], "kid": [0.1, 0.4]}}  # fmt: skip
    log.record(record)
    log.close()
    events = read_events(tmp_path)
    scalars = set(events.Tags()["scalars"])
    ends = {"eval_low/fd", "eval_high/fd", "eval_low/kid", "eval_high/kid"}  # each metric's 95% interval
    assert scalars == {f"eval/{m.name}" for m in METRICS} | {f"eval_real/{m.name}" for m in METRICS} | ends
    assert [e.value for e in events.Scalars("eval_high/kid")] == pytest.approx([0.4])


def test_a_full_disk_in_tensorboards_writer_thread_prints_no_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The thread keeps its error for the training thread (one line there); other threads' errors still print."""
    import errno
    import threading

    from acgan.training.tensorboard import quiet_writer_thread_errors

    monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)

    def failing(error: BaseException) -> None:
        raise error

    class _AsyncWriterThread(threading.Thread):  # the name of TensorBoard's writer thread
        pass

    quiet_writer_thread_errors()
    quiet_writer_thread_errors()  # once per process, however many logs open
    for kind, error in ((_AsyncWriterThread, OSError(errno.ENOSPC, "No space left on device")),
                        (threading.Thread, OSError(errno.ENOSPC, "No space left on device")),
                        (_AsyncWriterThread, ValueError("a bug"))):  # fmt: skip
        thread = kind(target=failing, args=(error,))
        thread.start()
        thread.join()
    printed = capsys.readouterr().err
    assert printed.count("Traceback") == 2 and "a bug" in printed
