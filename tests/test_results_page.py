"""docs/results.md is what `make results` renders from benchmarks/results/*.json: the page cannot drift from its data."""

from __future__ import annotations

import sys
from typing import Any

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


def _run(name: str, at10: float, at20: float, flags: tuple[str, ...] = ("avx512f",)) -> dict[str, Any]:
    """A quality record on the CIFAR-10 subset's folders evaluated after 10 and 20 minutes (accuracy as given)."""
    point = {"intra_fd": 30.0, "fd": 20.0, "recall": 0.7, "steps": 1}
    return {"dataset": "x/cifar10-subset-folders", "preset": "dcgan", "name": name, "overrides": {}, "budget_minutes": 20,
            "machine": {"cpu_flags": list(flags), "cpu_model": "cpu", "cpu_count": 2, "date": "2026-12-07"},
            "curve": [{**point, "minutes": 10.02, "conditional_accuracy": at10},
                      {**point, "minutes": 20.01, "conditional_accuracy": at20}]}  # fmt: skip


def test_the_ranking_check_ranks_each_run_at_10_and_20_minutes() -> None:
    from results_page import ranking_check

    rows = [line for line in ranking_check([_run("a", 0.5, 0.52), {**_run("b", 0.4, 0.6), "seed": 1}])
            if line.startswith("| dcgan")]  # fmt: skip
    assert [row.split(" | ")[1] for row in rows] == ["a", "b"]  # in the 10-minute order
    assert [row.split(" | ")[3] for row in rows] == ["0", "1"]  # each run's seed: a second seed is its own row
    assert rows[0].endswith("| 1 / 2 |") and rows[1].endswith("| 2 / 1 |")  # the order changed by 20 minutes
    assert "0.500 / 0.520" in rows[0]
    assert ranking_check([_run("a", 0.5, 0.5)]) == []  # one run ranks nothing
    assert ranking_check([_run("a", 0.5, 0.5, ("amx_bf16",)), _run("b", 0.4, 0.6)]) == []  # CPU kinds never mixed
    two_kinds = ranking_check([_run("a", 0.5, 0.5, ("amx_bf16",)), _run("b", 0.4, 0.6, ("amx_bf16",)),
                               _run("c", 0.3, 0.4), _run("d", 0.2, 0.45)])  # fmt: skip
    tables = [[row.split(" | ")[1] for row in block.split("\n") if row.startswith("| dcgan")]
              for block in "\n".join(two_kinds).split("Each run evaluated")[1:]]  # fmt: skip
    assert tables == [["a", "b"], ["c", "d"]]  # one table per CPU kind, each ranked on its own
    assert [row.rsplit(" | ", 1)[1] for row in two_kinds if row.startswith("| dcgan | d")] == ["2 / 1 |"]


def test_a_table_that_mixes_cpu_kinds_gives_each_kind_its_own_real_image_row() -> None:
    """Each machine evaluates the real photos itself: its runs are compared with its own real row, not another's."""
    from results_page import quality_table

    amx = [{**_run(name, 0.5, 0.6, ("amx_bf16",)), "samples": 5000, "real": {"conditional_accuracy": 0.757}}
           for name in ("a", "b")]  # fmt: skip
    plain = {**_run("c", 0.4, 0.5), "samples": 5000, "real": {"conditional_accuracy": 0.754}}
    rows = [line.split(" | ") for line in quality_table([amx[0], plain, amx[1]]) if line.startswith("| ")][1:]
    assert [(row[0].removeprefix("| "), row[4]) for row in rows] == [
        ("dcgan", "AMX"), ("dcgan", "AMX"), ("real test images", "AMX"), ("dcgan", "no bf16"),
        ("real test images", "no bf16")]  # fmt: skip
    assert rows[2][7] == "0.757" and rows[4][7] == "0.754"
    single = [line for line in quality_table(amx) if line.startswith("| real")]
    assert len(single) == 1 and "AMX" not in single[0]  # one kind: one real row, no CPU column


def test_a_row_names_the_preset_defaults_its_run_did_not_have(monkeypatch: Any) -> None:
    """A preset whose default changed after a run: the run's row says what it ran with (a field its record lacks had
    its legacy value)."""
    from dataclasses import replace

    from results_page import run_options

    from acgan.models import presets

    monkeypatch.setitem(presets.PRESETS, "dcgan", replace(presets.PRESETS["dcgan"], lr_decay=0.1))
    record = {"preset": "dcgan", "overrides": {"r1": 0.1}, "train_config": {"width": presets.PRESETS["dcgan"].width}}
    assert run_options(record) == {"r1": 0.1, "lr_decay": 1.0}  # recorded before the field: constant rates
    assert run_options({**record, "train_config": {**record["train_config"], "lr_decay": 0.1}}) == {"r1": 0.1}
    assert run_options({**record, "overrides": {"lr_end": 1e-4}}) == {"lr_end": 1e-4}  # its end rate replaced it
