"""The run lock's refusal message, in one process: no training needed (tests/test_concurrency.py has the real ones)."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

from acgan.training.run_lock import RunInUse, RunLock


@pytest.mark.parametrize("left_behind", ["", "999999999\n"], ids=["empty", "exited-holder"])
def test_refusal_waits_for_the_holder_to_write_its_pid(tmp_path: Path, left_behind: str) -> None:
    """A holder writes its pid a moment after taking the lock; a writer refused in that moment still names it
    (CI once printed "pid unknown" when two writers started together)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").write_text(left_behind)
    holder = os.open(run / ".lock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held, its pid not yet written
    writes_pid = threading.Timer(0.3, lambda: os.pwrite(holder, f"{os.getpid()}\n".encode(), 0))
    writes_pid.start()
    try:
        with pytest.raises(RunInUse, match=rf"\(pid {os.getpid()}\)"):
            RunLock(run).acquire()
    finally:
        writes_pid.join()
        os.close(holder)


def test_a_released_lock_names_no_one_and_can_be_taken_again(tmp_path: Path) -> None:
    run = tmp_path / "run"
    lock = RunLock(run)
    lock.acquire()
    assert (run / ".lock").read_text() == f"{os.getpid()}\n"
    (run / "metrics.jsonl").write_text("")  # the run wrote something, so the lock file stays
    lock.release(remove_if_unused=True)
    assert (run / ".lock").read_text() == ""
    with RunLock(run):
        assert (run / ".lock").read_text() == f"{os.getpid()}\n"
