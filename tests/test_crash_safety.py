"""Crash safety end to end, through the benchmark scripts at a tiny size: kill -9 at random moments and a full
disk must both end in a resumable run whose final weights are bit-identical to an uninterrupted run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import make_folder

REPO = Path(__file__).resolve().parents[1]
TINY = ["--steps", "40", "--batch-size", "8", "--width", "4", "--checkpoint-every", "5", "--limit", "0"]

pytestmark = pytest.mark.slow  # multi-process, subprocess or long: `make test-fast` leaves it out


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("crash") / "shapes", per_class=16, size=16)


def run_benchmark(script: str, arguments: list[str], work: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    output = work / "result.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *arguments, "--work", str(work),
                             "--output", str(output)], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert output.is_file(), result.stdout + result.stderr
    return result, json.loads(output.read_text())


def test_kill_minus_nine_at_four_kinds_of_moment_resumes_bit_identical(shapes: Path, tmp_path: Path) -> None:
    result, report = run_benchmark("crash.py", ["--dataset", str(shapes), "--kills", "4", *TINY], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert report["recovered"] == report["kills"] == 4, report["trials"]
    assert report["replayed"] <= 1, report["trials"]  # a mismatch that did not repeat at its moment, once at most
    assert [trial["kind"] for trial in report["trials"]] == ["time", "checkpoint", "picture", "tensorboard"]
    assert all(trial["killed"] for trial in report["trials"])
    assert any(trial["left_half_written"] for trial in report["trials"])  # a write really was cut in half
    assert all(trial["left_after_resume"] == [] for trial in report["trials"])  # and resuming cleared it


def can_mount_tmpfs() -> bool:
    if os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory() as folder:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", folder], capture_output=True)
        if mounted.returncode != 0:
            return False
        subprocess.run(["umount", folder], check=True)
    return True


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs root and permission to mount a tmpfs")
def test_a_full_disk_stops_with_one_line_keeps_the_checkpoint_and_resumes(shapes: Path, tmp_path: Path) -> None:
    result, report = run_benchmark("disk_full.py", ["--dataset", str(shapes), "--fills", "0.5,0.9", *TINY], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for row in report["results"]:
        assert row["exit_code"] == 1 and row["one_line_error"], row["stderr_lines"]
        assert "no space left" in row["stderr_lines"][0] and "acgan train --resume" in row["stderr_lines"][0]
        assert row["temporary_leftovers"] == [] and row["bit_identical"], row
    assert sum("first_try" in row for row in report["results"]) <= 1  # replayed after a mismatch, once at most
    assert any(row["checkpoint_loads"] for row in report["results"])  # the 90% disk filled after a checkpoint
