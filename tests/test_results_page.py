"""docs/results.md is what `make results` renders from benchmarks/results/*.json: the page cannot drift from its data."""

from __future__ import annotations

import sys

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from results_page import PAGE, README, readme, render


def test_the_committed_results_page_is_what_the_json_files_render() -> None:
    assert PAGE.read_text() == render(), "docs/results.md differs from benchmarks/results/*.json: run make results"
    assert README.read_text() == readme(README.read_text()), "README's generated block is stale: run make results"


def test_every_result_file_at_the_top_level_is_shown() -> None:
    """A result file nobody renders would be a number no user sees: each kind has a section."""
    page = render()
    for path in sorted((REPO_ROOT / "benchmarks" / "results").glob("*.json")):
        if path.name.startswith("quality-"):
            continue  # one table per data set and budget, rows by preset and name
        stem = path.stem.removesuffix("-vm")
        assert any(word in page for word in (stem, stem.replace("_", "-"), stem.split("-")[0])), path.name
