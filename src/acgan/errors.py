"""User-facing errors and how the command line reports each: one line on stderr and an exit code.

Every error type says here what it prints and with which exit code, so `acgan.cli.main` needs one `except`
for all of them.
"""

from __future__ import annotations

from pathlib import Path

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class AcganError(Exception):
    """A problem with the user's input or environment, with an actionable one-line message."""

    exit_code = EXIT_ERROR
    # Raised by every process of a distributed run together: only rank 0 prints it.
    said_by_rank_zero = False

    def report(self) -> str:
        """The line the command line prints."""
        return f"acgan: error: {self}"


class DataError(AcganError):
    """A data set is missing, unreadable or fails verification."""


class CheckpointError(AcganError):
    """A checkpoint is missing, unreadable or inconsistent with its configuration."""


class TrainingDiverged(AcganError):
    """A loss became NaN or infinite; training stopped before writing anything further."""

    said_by_rank_zero = True


class DiskFull(AcganError):
    """The run directory's disk (or quota) filled up; the last complete checkpoint is intact."""


class TrainingInterrupted(AcganError):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint; the command exits with 130."""

    exit_code = EXIT_INTERRUPTED
    said_by_rank_zero = True

    def __init__(self, message: str, run_dir: Path, processes: int = 1) -> None:
        super().__init__(message)
        self.run_dir = run_dir
        self.processes = processes  # to resume with the same number (--nproc)

    def report(self) -> str:
        nproc = f" --nproc {self.processes}" if self.processes > 1 else ""
        return f"acgan: {self}; continue with: acgan train --resume {self.run_dir}{nproc}"


class RunExists(AcganError):
    """The run directory already holds a run with checkpoints (resume it, or choose another directory)."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(f"{run_dir} already holds a run; continue it with --resume {run_dir} or pick another "
                         "--run-dir")  # fmt: skip
        self.run_dir = run_dir
