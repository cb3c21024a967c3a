"""`auto` precision: the decision on given timings, the timing protocol, the cache, and runs that use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from acgan.config import TrainConfig
from acgan.errors import AcganError
from acgan.precision import (
    AUTO_ENV,
    BUDGET_S,
    CACHE_FILE,
    PrecisionCache,
    PrecisionChoice,
    cache_key,
    choose_precision,
    faster,
    measure_rates,
)
from acgan.sampling import load_generator, sample, sampling_precision
from acgan.training import train
from tests.helpers import make_folder, run_cli, write_checkpoint

WORKLOAD = {"task": "training steps", "model": {"preset": "dcgan"}, "batch_size": 64}
CPU = torch.device("cpu")


@pytest.fixture
def measuring(monkeypatch: pytest.MonkeyPatch, isolated_cache: Path) -> Path:
    """`auto` measures (the other tests fix it to fp32); the cache file of this test."""
    monkeypatch.delenv(AUTO_ENV, raising=False)
    return isolated_cache / CACHE_FILE


class FakeMachine:
    """A clock and a unit of work whose cost per precision is given: bf16 units take `bf16_s`, fp32 `fp32_s`."""

    def __init__(self, fp32_s: float, bf16_s: float, warm_up_s: float = 0.0) -> None:
        self.now = 0.0
        self.cost = {"fp32": fp32_s, "bf16": bf16_s}
        self.warm_up_s = warm_up_s
        self.calls: list[str] = []

    def clock(self) -> float:
        return self.now

    def run(self, precision: str) -> int:
        first = precision not in self.calls
        self.calls.append(precision)
        self.now += self.cost[precision] + (self.warm_up_s if first else 0.0)
        return 1

    def choose(self, workload: dict = WORKLOAD, **options: object) -> PrecisionChoice:
        """choose_precision('auto') on the CPU, timed on this machine's clock."""
        return choose_precision("auto", CPU, workload, self.run, "steps/s",
                                measure=lambda run: measure_rates(run, clock=self.clock), **options)  # type: ignore[arg-type]  # fmt: skip


def test_the_faster_precision_wins_and_fp32_keeps_a_tie() -> None:
    assert faster({"fp32": 16.8, "bf16": 23.1}) == "bf16"
    assert faster({"fp32": 10.0, "bf16": 5.0}) == "fp32"  # bf16 emulated or without fast bf16 products
    assert faster({"fp32": 10.0, "bf16": 10.2}) == "fp32"  # within the margin: fp32 rounds better
    assert faster({"fp32": 10.0, "bf16": 10.5}) == "bf16"
    assert faster({"fp32": 10.0}) == "fp32"


def test_timing_alternates_within_its_budget_and_finds_the_rates() -> None:
    machine = FakeMachine(fp32_s=0.02, bf16_s=0.01, warm_up_s=0.5)  # the first unit of each pays for kernel creation
    rates = measure_rates(machine.run, clock=machine.clock)
    assert rates == {"fp32": pytest.approx(50.0), "bf16": pytest.approx(100.0)}
    assert machine.now < BUDGET_S + 2 * 0.5 + 1.0  # warm-ups, the budget, at most one round over
    first_of_round = [
        machine.calls[i] for i in range(2, len(machine.calls)) if machine.calls[i] != machine.calls[i - 1]
    ]
    assert "fp32" in first_of_round and "bf16" in first_of_round  # both orders: drift hits both precisions


def test_a_precision_slower_than_the_budget_is_not_timed_further() -> None:
    machine = FakeMachine(fp32_s=0.02, bf16_s=BUDGET_S * 2)  # bf16 emulated in software
    rates = measure_rates(machine.run, clock=machine.clock)
    assert machine.calls.count("bf16") == 1 and rates["bf16"] == pytest.approx(1 / (BUDGET_S * 2))
    assert faster(rates) == "fp32"


def test_given_precisions_and_device_rules_need_no_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(_: str) -> int:
        raise AssertionError("measured")

    assert choose_precision("bf16", CPU, WORKLOAD, never, "steps/s") == PrecisionChoice("bf16", "given")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert choose_precision("auto", torch.device("cuda"), WORKLOAD, never, "steps/s").precision == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)  # before Ampere
    assert choose_precision("auto", torch.device("cuda"), WORKLOAD, never, "steps/s").precision == "fp32"
    assert choose_precision("auto", torch.device("mps"), WORKLOAD, never, "steps/s").precision == "fp32"
    monkeypatch.setenv(AUTO_ENV, "bf16")
    assert choose_precision("auto", CPU, WORKLOAD, never, "steps/s") == PrecisionChoice("bf16", "environment")
    monkeypatch.setenv(AUTO_ENV, "fp64")
    with pytest.raises(AcganError, match=AUTO_ENV):
        choose_precision("auto", CPU, WORKLOAD, never, "steps/s")


def test_a_measured_choice_is_cached_per_machine_and_workload(measuring: Path) -> None:
    machine = FakeMachine(fp32_s=0.02, bf16_s=0.01)
    said: list[str] = []
    first = machine.choose(announce=said.append)
    assert (first.precision, first.how, first.unit) == ("bf16", "measured", "steps/s") and len(said) == 1
    assert first.rates == {"fp32": pytest.approx(50.0), "bf16": pytest.approx(100.0)}
    calls = len(machine.calls)
    again = machine.choose(announce=said.append)
    assert (again.precision, again.how, again.rates) == ("bf16", "cached", first.rates)
    assert len(machine.calls) == calls and len(said) == 1  # nothing run or said the second time
    machine.choose({**WORKLOAD, "batch_size": 128})
    assert len(machine.calls) > calls  # another batch size is another workload
    entries = json.loads(measuring.read_text())["entries"]
    assert len(entries) == 2


def test_the_cache_key_names_the_machine_and_the_workload(monkeypatch: pytest.MonkeyPatch) -> None:
    key = json.loads(cache_key(WORKLOAD))
    assert key["workload"] == WORKLOAD
    machine = key["machine"]
    assert machine["torch"] == torch.__version__ and machine["cores"] == os.cpu_count()
    assert {"cpu", "cpu_features", "threads", "capability"} <= set(machine)
    assert cache_key(WORKLOAD) == cache_key(dict(reversed(list(WORKLOAD.items()))))  # canonical
    assert cache_key(WORKLOAD) != cache_key({**WORKLOAD, "batch_size": 32})
    from acgan import device

    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}))
    with_amx = cache_key(WORKLOAD)
    monkeypatch.setattr(device, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert cache_key(WORKLOAD) != with_amx  # one CPU model string covers machines with and without AMX
    monkeypatch.setattr(device, "cpu_model", lambda: "AMD EPYC 9R14")
    assert json.loads(cache_key(WORKLOAD))["machine"]["cpu"] == "AMD EPYC 9R14"


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\xff garbage", b'{"format": 1, "entries": {', b"[1, 2, 3]", b'{"format": 99, "entries": {}}',
     b'{"format": 1, "entries": "none"}', b"null"],
    ids=["empty", "binary", "torn", "list", "other format", "entries not a map", "null"],
)  # fmt: skip
def test_a_damaged_empty_or_foreign_cache_is_ignored_and_rewritten(measuring: Path, content: bytes) -> None:
    measuring.parent.mkdir(parents=True, exist_ok=True)
    measuring.write_bytes(content)
    choice = FakeMachine(fp32_s=0.01, bf16_s=0.02).choose()
    assert (choice.precision, choice.how) == ("fp32", "measured")
    data = json.loads(measuring.read_text())
    assert data["format"] == 1 and data["entries"][cache_key(WORKLOAD)]["precision"] == "fp32"


def test_a_cache_entry_that_is_not_a_choice_is_measured_again(measuring: Path) -> None:
    measuring.parent.mkdir(parents=True, exist_ok=True)
    for entry in ({"precision": "fp8"}, {"precision": "bf16", "rates": {"bf16": -1}}, "bf16", None):
        measuring.write_text(json.dumps({"format": 1, "entries": {cache_key(WORKLOAD): entry}}))
        assert FakeMachine(0.01, 0.02).choose().how == "measured"


def test_an_unwritable_or_missing_cache_only_means_measuring_again(
    measuring: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(blocked / "acgan"))  # cannot be created: a file is in the way
    assert FakeMachine(0.02, 0.01).choose().how == "measured"
    assert FakeMachine(0.02, 0.01).choose().how == "measured"
    assert PrecisionCache(None).put("k", PrecisionChoice("fp32")) is False and PrecisionCache(None).get("k") is None
    monkeypatch.delenv("ACGAN_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(Path, "home", lambda: (_ for _ in ()).throw(RuntimeError("no home directory")))
    assert FakeMachine(0.02, 0.01).choose().how == "measured"


WRITER = """
import sys
from pathlib import Path
from acgan.precision import PrecisionCache, PrecisionChoice
cache = PrecisionCache(Path(sys.argv[1]))
for index in range(60):
    cache.put(f"{sys.argv[2]}-{index}", PrecisionChoice("bf16", "measured", {"bf16": 2.0, "fp32": 1.0}, "steps/s"))
"""


@pytest.mark.slow
def test_two_processes_writing_the_cache_at_once_leave_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILE
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name]) for name in ("a", "b")]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    entries = json.loads(path.read_text())["entries"]
    assert all(PrecisionChoice.from_dict(entry).precision == "bf16" for entry in entries.values())
    assert {"a-59", "b-59"} & set(entries)  # the last write of at least one writer is there
    assert not [p for p in tmp_path.iterdir() if p.name != CACHE_FILE]  # no temporary file left


def _tiny(folder: Path, **changes: object) -> TrainConfig:
    options: dict = {"batch_size": 8, "width": 4, "steps": 2, "epochs": None, "device": "cpu", "tensorboard": False}
    return TrainConfig(dataset=str(folder), **{**options, **changes})


def _runtime(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())["runtime"]


@pytest.mark.slow
def test_training_measures_records_caches_and_resumes_with_its_precision(
    measuring: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_folder(tmp_path / "data", per_class=8, size=16)
    train(_tiny(folder), tmp_path / "a", show_progress=False)
    assert "choosing the precision" in capsys.readouterr().err  # announced in one line
    measured = _runtime(tmp_path / "a")["precision_choice"]
    assert measured["how"] == "measured" and set(measured["rates"]) == {"fp32", "bf16"}
    assert measured["precision"] == faster(measured["rates"]) == _runtime(tmp_path / "a")["precision"]
    train(_tiny(folder), tmp_path / "b", show_progress=False)  # the same workload: from the cache, nothing timed
    assert "choosing the precision" not in capsys.readouterr().err
    assert _runtime(tmp_path / "b")["precision_choice"] == {**measured, "how": "cached"}
    code, out, _ = run_cli(["info", "--checkpoint", str(tmp_path / "a")], capsys)
    assert code == 0 and f"precision:  {measured['precision']} (measured: " in out

    # The cache now says the other precision; a resumed run keeps the one it started with.
    other = "fp32" if measured["precision"] == "bf16" else "bf16"
    rates = {other: 2.0, measured["precision"]: 1.0}
    PrecisionCache(measuring).put(next(iter(json.loads(measuring.read_text())["entries"])),
                                  PrecisionChoice(other, "measured", rates, "steps/s"))  # fmt: skip
    train(_tiny(folder, steps=4), tmp_path / "a", resume=True, show_progress=False)
    resumed = _runtime(tmp_path / "a")["precision_choice"]
    assert (resumed["precision"], resumed["how"]) == (measured["precision"], "resumed")
    train(_tiny(folder), tmp_path / "c", show_progress=False)  # a new run follows the cache
    assert _runtime(tmp_path / "c")["precision"] == other
    train(_tiny(folder, steps=6, precision="fp32"), tmp_path / "a", resume=True, show_progress=False)
    assert _runtime(tmp_path / "a")["precision_choice"] == {"precision": "fp32", "how": "given", "rates": {},
                                                            "unit": ""}  # fmt: skip


def test_sampling_auto_measures_this_generator_once(measuring: Path, tmp_path: Path) -> None:
    trained = load_generator(write_checkpoint(tmp_path))
    first = sampling_precision(trained, "auto")
    assert first.how == "measured" and first.unit == "images/s" and first.precision == faster(first.rates)
    assert sampling_precision(trained, "auto").how == "cached"
    assert sampling_precision(trained, "fp32") == PrecisionChoice("fp32", "given")
    images = sample(trained, [0, 1, 2], seed=3, precision="auto")
    assert images.shape[0] == 3 and images.dtype == torch.float32
    assert torch.equal(images, sample(trained, [0, 1, 2], seed=3, precision=first.precision))
