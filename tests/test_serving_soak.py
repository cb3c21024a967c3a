"""The serving soak at a tiny size: concurrent clients mixing good and bad requests get only 200, their
documented 4xx or 503, and the server stays up (benchmarks/serve_soak.py; the 5-minute figures are in the README)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # multi-process, subprocess or long: `make test-fast` leaves it out


def test_a_short_soak_gets_no_server_errors(tmp_path: Path) -> None:
    output = tmp_path / "soak.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "serve_soak.py"), "--clients", "6",
                             "--seconds", "5", "--warmup", "1", "--bad-share", "0.5", "--output", str(output)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(output.read_text())
    assert report["server_alive"] and report["server_errors_not_503"] == 0 and report["failures"] == 0
    statuses = report["statuses"]
    assert int(statuses.get("200", 0)) > 10 and int(statuses.get("422", 0)) > 0  # both kinds really were sent
    assert report["rss_mib"]["end"] > 0
