"""Behaviour pins: the default preset's G, D and EMA weights after 30 seeded steps on real data, in fp32 and bf16.

A refactor that changes any arithmetic fails here; a change of rounding made on purpose re-takes the pin once
and says so in its commit. Bit-exact results depend on the machine's kernels, so each pin is keyed by what
decides them (data set, precision, PyTorch version, CPU kernel family, threads); a machine with no pin of its
own skips with the keys that exist. Record one with `python -m tests.test_pins [mnist|fashion-mnist] [fp32|bf16]`:
it is keyed by the CPU model as well, and a CPU model's pin is checked before its kernel family's.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from acgan.checkpoint import DISCRIMINATOR_FILE, EMA_FILE, GENERATOR_FILE, resolve_checkpoint_dir
from acgan.config import TrainConfig
from acgan.device import cpu_flags as device_cpu_flags
from acgan.device import cpu_model_numbers
from acgan.training import train
from tests.conftest import IDX_DATASET, idx_data

PIN_FILE = Path(__file__).parent / "pins" / "dcgan-30-steps.json"
PIN_STEPS = 30
PIN_THREADS = 2  # threads change the sums' order: pins are recorded and checked with this many, whatever the cores


def pin_key(dataset: str, precision: str) -> str:
    """What decides the exact weights besides the code: data, arithmetic, library, kernels, threads."""
    capability = "+".join([torch.backends.cpu.get_cpu_capability(), *cpu_flags()])
    return f"{dataset}|{precision}|torch {torch.__version__}|{capability}|{PIN_THREADS} threads"


def pin_keys(dataset: str, precision: str) -> tuple[str, str]:
    """(this CPU model's key, the kernel family's key): a pin recorded for the CPU model wins, since two CPUs of one
    kernel family may still round differently (an AMD EPYC of family 25 did, in fp32, at an unchanged commit)."""
    base = pin_key(dataset, precision)
    return f"{base}|{cpu_model_numbers()}", base


def cpu_flags() -> list[str]:
    """The CPU features that pick oneDNN's bf16 kernels (AVX512-BF16, AMX)."""
    return sorted(device_cpu_flags() & {"avx512_bf16", "amx_bf16", "amx_tile"})


def weights_digests(run_dir: Path) -> dict[str, str]:
    """SHA-256 of each network's tensors (names, dtypes, shapes, bytes) in the run's latest checkpoint."""
    checkpoint = resolve_checkpoint_dir(run_dir)
    digests = {}
    for filename in (GENERATOR_FILE, DISCRIMINATOR_FILE, EMA_FILE):
        tensors = load_file(checkpoint / filename)
        digest = hashlib.sha256()
        for name in sorted(tensors):
            tensor = tensors[name].contiguous()
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        digests[filename] = digest.hexdigest()
    return digests


def pinned_run(dataset: str, run_dir: Path, precision: str) -> tuple[str, dict[str, str]]:
    """Train the default preset for PIN_STEPS seeded steps at `precision`; (its key, its digests)."""
    config = TrainConfig(dataset=dataset, limit=4096, steps=PIN_STEPS, epochs=None, seed=7, device="cpu",
                         precision=precision, tensorboard=False)  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(PIN_THREADS)
    try:
        train(config, run_dir, show_progress=False)
    finally:
        torch.set_num_threads(threads)
    return pin_key(dataset, precision), weights_digests(run_dir)


def read_pins() -> dict[str, dict[str, str]]:
    return json.loads(PIN_FILE.read_text()) if PIN_FILE.is_file() else {}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_default_preset_weights_after_30_steps_are_pinned(idx_root: Path, tmp_path: Path, precision: str) -> None:
    pins = read_pins()
    keys = [key for key in pin_keys(IDX_DATASET, precision) if key in pins]
    if not keys:
        pytest.skip(f"no pin for this machine ({pin_keys(IDX_DATASET, precision)[1]}); pinned: {'; '.join(pins)}")
    _, digests = pinned_run(IDX_DATASET, tmp_path / "run", precision)
    assert digests == pins[keys[0]], keys[0]


if __name__ == "__main__":  # record this machine's pins: python -m tests.test_pins [mnist|fashion-mnist] [fp32|bf16]
    import os
    import tempfile

    from tests.conftest import SYSTEM_DATASETS, real_data_root

    found = idx_data()
    if len(sys.argv) > 1 and sys.argv[1] == "fashion-mnist":
        found = ("fashion-mnist", real_data_root() or SYSTEM_DATASETS)
    if found is None:
        sys.exit("no real IDX data to pin on")
    os.environ["ACGAN_DATA_DIR"] = str(found[1])
    with tempfile.TemporaryDirectory() as folder:
        os.environ.setdefault("ACGAN_CACHE_DIR", folder)
        key, digests = pinned_run(found[0], Path(folder) / "run", sys.argv[2] if len(sys.argv) > 2 else "fp32")
    key = f"{key}|{cpu_model_numbers()}"  # this CPU model's: the kernel family's pins stay as they are
    pins = {**read_pins(), key: digests}
    PIN_FILE.parent.mkdir(parents=True, exist_ok=True)
    PIN_FILE.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
    print(f"pinned {key}: {digests}")
