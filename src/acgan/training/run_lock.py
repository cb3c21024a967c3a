"""One writer per run directory: an exclusive advisory lock on RUN/.lock, as databases lock their data directory.

The lock is the operating system's (flock): it dies with the process, so `kill -9` never leaves a stale
one, and a second writer (another `acgan train --run-dir RUN`, or `--resume RUN` while RUN trains) is
refused at once with the holder's pid. Readers (generate, evaluate, serve, info, export) take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from acgan.errors import AcganError

LOCK_FILE = ".lock"
_PID_BYTES = 32  # what the holder writes: its pid and a newline


class RunInUse(AcganError):
    """Another process is writing the run directory."""


class RunLock:
    """The exclusive lock on one run directory; `acquire` creates the directory when it does not exist."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = None
        self._created_dir = False

    def acquire(self) -> None:
        """Take the lock (without waiting); RunInUse naming the holder's pid when another process has it."""
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise AcganError(f"{self.run_dir} is a file, not a run directory")
        self._created_dir = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder_pid(fd)
                os.close(fd)
                raise RunInUse(
                    f"{self.run_dir} is in use by another acgan process (pid {holder}); wait for it to finish, "
                    "or stop it (Ctrl-C saves a checkpoint), then try again"
                ) from None
            # The file may have been removed (by a releasing holder) between open and flock: then lock the new one.
            if _same_file(fd, self.path):
                break
            os.close(fd)
        pid = f"{os.getpid()}\n".encode()
        os.pwrite(fd, pid, 0)
        os.ftruncate(fd, len(pid))
        self._fd = fd

    def release(self, remove_if_unused: bool = False) -> None:
        """Let go of the lock; with `remove_if_unused`, also remove the directory when the lock file is all it
        holds and this lock created it (a run that failed before writing anything leaves nothing behind)."""
        if self._fd is None:
            return
        if remove_if_unused and self._created_dir and {p.name for p in self.run_dir.iterdir()} == {LOCK_FILE}:
            self.path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()
        with contextlib.suppress(OSError):  # a pid left behind would name a finished process to the next one refused
            os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release(remove_if_unused=True)


def _holder_pid(fd: int, patience_s: float = 2.0) -> str:
    """The pid the lock's holder wrote, waiting briefly: a holder that has just taken the lock writes its pid a
    moment later, and until then the file is empty or still names an earlier holder that has exited."""
    deadline = time.monotonic() + patience_s
    while True:
        pid = _read_pid(fd)
        if (pid.isdigit() and pid_alive(int(pid))) or time.monotonic() > deadline:
            return pid
        time.sleep(0.02)


def _read_pid(fd: int) -> str:
    try:
        # The first line: a holder writes its pid over an earlier one and then cuts the file to its length.
        text = os.pread(fd, _PID_BYTES, 0).decode("ascii", errors="replace").partition("\n")[0].strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
