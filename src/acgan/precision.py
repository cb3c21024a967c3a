"""What `--precision auto` means: on a CPU, the faster of fp32 and bf16 for this work, measured where it runs.

Whether bf16 pays on a CPU depends on the machine, not on a rule: bf16 matrix products run at 7x the fp32 rate
on one Xeon with AMX, at 2.7x on an AMD EPYC with AVX512-BF16 and no AMX, and at half the fp32 rate on an Intel
Xeon with AVX512-BF16 and no AMX. So the first `auto` run of a workload (a training step, or a batch of samples)
times a few units of the real work in both precisions, alternating so that drift in the machine's speed hits
both, and keeps the faster. bf16 must beat fp32 by `BF16_MARGIN` to be chosen: within the margin fp32 is as
fast and rounds better. The choice is cached per machine and workload in `<cache>/precision.json` (the cache of
`acgan.data.locate.cache_root`); a cache that cannot be read or written is ignored, never fatal.

On CUDA, `auto` is bf16 where the device supports it (asked of the device, not assumed from its name) and fp32
elsewhere; on Apple's MPS, fp32. `$ACGAN_AUTO_PRECISION` (fp32 or bf16) makes `auto` a fixed choice on the CPU,
for machines that must all train alike (several nodes of one run measure alike anyway: rank 0 decides).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from acgan.errors import AcganError

MEASURED = ("fp32", "bf16")  # what `auto` chooses between on a CPU
BF16_MARGIN = 0.03  # bf16 is chosen only when it is this much faster than fp32
AUTO_ENV = "ACGAN_AUTO_PRECISION"  # fp32 or bf16: what `auto` means on a CPU instead of measuring
CACHE_FILE = "precision.json"
CACHE_FORMAT = 1
BUDGET_S = 2.0  # seconds of timed rounds, after one warm-up unit per precision
ROUND_S = 0.15  # seconds one precision's part of a round aims at
MIN_ROUNDS, MAX_ROUNDS = 3, 12

# Runs one unit of the work (a training step, a batch of samples) at a precision; returns how many items it did.
UnitRunner = Callable[[str], int]


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a workload runs at and how it was decided.

    how: "given" (asked for explicitly), "measured" (timed now), "cached" (timed earlier on this machine),
    "resumed" (the precision the run started with), "device" (CUDA/MPS rule), "environment" ($ACGAN_AUTO_PRECISION).
    rates: items per second by precision, where measured (`unit` says of what).
    """

    precision: str
    how: str = "given"
    rates: dict[str, float] = field(default_factory=dict)
    unit: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> PrecisionChoice:
        """A choice from its to_dict() form; ValueError when `data` is not one."""
        if not isinstance(data, dict) or data.get("precision") not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"not a precision choice: {data!r}")
        rates = data.get("rates", {})
        if not isinstance(rates, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and v > 0 for k, v in rates.items()
        ):
            raise ValueError(f"not a precision choice (rates): {data!r}")
        return cls(data["precision"], str(data.get("how", "given")), dict(rates), str(data.get("unit", "")))

    def describe(self) -> str:
        """One line: 'bf16 (measured: bf16 23.1, fp32 16.8 steps/s)'."""
        rates = ", ".join(f"{name} {rate:,.1f}" for name, rate in sorted(self.rates.items(), key=lambda kv: -kv[1]))
        detail = f": {rates} {self.unit}" if rates else ""
        return f"{self.precision} ({self.how}{detail})"


def faster(rates: Mapping[str, float], margin: float = BF16_MARGIN) -> str:
    """The precision to use given measured rates (items/s): bf16 when it beats fp32 by more than `margin`."""
    fp32, bf16 = rates.get("fp32", 0.0), rates.get("bf16", 0.0)
    return "bf16" if bf16 > fp32 * (1.0 + margin) else "fp32"


def measure_rates(run_unit: UnitRunner, precisions: tuple[str, ...] = MEASURED, budget_s: float = BUDGET_S,
                  clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:  # fmt: skip
    """Items per second of `run_unit` at each precision: one warm-up unit each (kernel creation, first touch of
    memory), then rounds in which each precision runs for about ROUND_S, in alternating order, until `budget_s`
    has passed (at least MIN_ROUNDS, at most MAX_ROUNDS); the median of each precision's rounds.

    A precision whose warm-up unit alone took longer than the budget is not timed further: its rate is that unit's.
    """
    warm: dict[str, float] = {}
    for precision in precisions:
        start = clock()
        items = run_unit(precision)
        warm[precision] = max(clock() - start, 1e-9) / max(items, 1)
    slow = {p for p, seconds in warm.items() if seconds > budget_s}
    timed = [p for p in precisions if p not in slow]
    samples: dict[str, list[float]] = {p: [] for p in timed}
    started = clock()
    for round_index in range(MAX_ROUNDS):
        if not timed or (round_index >= MIN_ROUNDS and clock() - started >= budget_s):
            break
        for precision in timed if round_index % 2 == 0 else reversed(timed):
            items, start = 0, clock()
            while True:
                items += run_unit(precision)
                elapsed = clock() - start
                if elapsed >= ROUND_S or elapsed >= budget_s:
                    break
            samples[precision].append(items / max(elapsed, 1e-9))
    rates = {p: statistics.median(values) for p, values in samples.items()}
    return rates | {p: 1.0 / warm[p] for p in slow}


def machine_key() -> dict[str, Any]:
    """What decides which precision is faster besides the work itself: the CPU (its model string and the features
    that pick oneDNN's kernels, since one model string covers machines with and without AMX), threads, library."""
    from acgan.device import cpu_flags, cpu_model

    kernels = sorted(cpu_flags() & {"avx512_bf16", "amx_bf16", "amx_tile", "avx512f", "avx2", "avx_vnni"})
    return {"cpu": cpu_model(), "cpu_features": kernels, "capability": torch.backends.cpu.get_cpu_capability(),
            "cores": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__}  # fmt: skip


def cache_key(workload: Mapping[str, Any]) -> str:
    """The cache entry's name: the machine and the workload, as canonical JSON."""
    from acgan.version import __version__

    return json.dumps({"machine": machine_key(), "acgan": __version__, "workload": dict(workload)}, sort_keys=True)


@dataclass(frozen=True)
class PrecisionCache:
    """The measured choices of this machine, one JSON file; anything unreadable in it is ignored and rewritten."""

    path: Any  # pathlib.Path; None: no cache (a home that cannot be found)

    @classmethod
    def default(cls) -> PrecisionCache:
        from acgan.data.locate import cache_root

        try:
            return cls(cache_root() / CACHE_FILE)
        except (RuntimeError, KeyError, OSError):  # Path.home() without a home
            return cls(None)

    def entries(self) -> dict[str, Any]:
        """The cached entries, or none when the file is missing, damaged, empty or of another format."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError, AttributeError, UnicodeDecodeError):
            return {}
        if (
            not isinstance(data, dict)
            or data.get("format") != CACHE_FORMAT
            or not isinstance(data.get("entries"), dict)
        ):
            return {}
        return data["entries"]

    def get(self, key: str) -> PrecisionChoice | None:
        try:
            return PrecisionChoice.from_dict(self.entries().get(key))
        except ValueError:
            return None

    def put(self, key: str, choice: PrecisionChoice) -> bool:
        """Add an entry (written aside and renamed: a reader or a second writer never sees a torn file); False when
        the cache cannot be written (a read-only or missing home), which only means measuring again next time."""
        from acgan.files import atomic_write_bytes

        if self.path is None:
            return False
        entries = {**self.entries(), key: choice.to_dict() | {"date": time.strftime("%Y-%m-%d")}}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, json.dumps({"format": CACHE_FORMAT, "entries": entries}, indent=1).encode())
        except OSError:
            return False
        return True


def device_choice(device: torch.device) -> PrecisionChoice | None:
    """`auto` where no measurement is needed: CUDA (bf16 where the device supports it), MPS (fp32), or the CPU
    when $ACGAN_AUTO_PRECISION fixes it; None for a CPU that should measure."""
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported(including_emulation=False)
        return PrecisionChoice("bf16" if supported else "fp32", "device")
    if device.type != "cpu":
        return PrecisionChoice("fp32", "device")
    fixed = os.environ.get(AUTO_ENV, "").strip().lower()
    if fixed in ("", "measure"):
        return None
    if fixed not in MEASURED:
        raise AcganError(f"${AUTO_ENV} must be fp32, bf16 or measure, got {fixed!r}")
    return PrecisionChoice(fixed, "environment")


def choose_precision(requested: str, device: torch.device, workload: Mapping[str, Any], run_unit: UnitRunner,
                     unit: str, cache: PrecisionCache | None = None, announce: Callable[[str], None] | None = None,
                     measure: Callable[[UnitRunner], dict[str, float]] = measure_rates) -> PrecisionChoice:  # fmt: skip
    """The precision to run `workload` at: `requested` unless it is 'auto'; then the device's rule, the cached
    measurement of this machine, or a new measurement of `run_unit` by `measure` (announced, then cached)."""
    if requested != "auto":
        return PrecisionChoice(requested, "given")
    fixed = device_choice(device)
    if fixed is not None:
        return fixed
    cache = cache if cache is not None else PrecisionCache.default()
    key = cache_key(workload)
    cached = cache.get(key)
    if cached is not None:
        return PrecisionChoice(cached.precision, "cached", cached.rates, cached.unit)
    if announce is not None:
        announce(f"choosing the precision: timing {workload.get('task', 'the work')} in fp32 and in bf16 on this CPU "
                 "(a few seconds, once per machine and workload)")  # fmt: skip
    rates = measure(run_unit)
    choice = PrecisionChoice(faster(rates), "measured", rates, unit)
    cache.put(key, choice)
    return choice
