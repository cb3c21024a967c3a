"""Device selection (`auto` picks CUDA, then Apple's MPS, then the CPU), what the CPU is, and autocast for a precision."""

from __future__ import annotations

import contextlib
import ctypes
from typing import TypeVar

import torch

from acgan.errors import AcganError


def select_device(name: str = "auto") -> torch.device:
    """Resolve a device name; AcganError when the requested accelerator is not available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise AcganError("device cuda requested but no CUDA device is available (try device auto)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise AcganError("device mps requested but MPS is not available (try device auto)")
    if name not in ("cpu", "cuda", "mps"):
        raise AcganError(f"unknown device '{name}' (choose auto, cpu, cuda or mps)")
    return torch.device(name)


def conv_layout(device: torch.device) -> torch.memory_format:
    """channels-last where oneDNN/cuDNN convolutions are faster on it (dcgan, 2-core CPU: 10%, measured)."""
    return torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format


M = TypeVar("M", bound=torch.nn.Module)


def place(module: M, device: torch.device) -> M:
    """`module` on `device`, its 4-D weights in that device's preferred convolution layout."""
    module.to(device)
    module.to(memory_format=conv_layout(device))  # type: ignore[call-overload]  # runtime-supported, not in the stubs
    return module


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    return frozenset(_cpuinfo_field("flags").split())


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform.processor() is empty on Linux), or 'unknown'."""
    return _cpuinfo_field("model name") or "unknown"


def cpu_model_numbers() -> str:
    """'AuthenticAMD family 25 model 17': the vendor and model numbers from /proc/cpuinfo, which tell apart CPUs that
    one model name covers ('' where there is none)."""
    vendor = _cpuinfo_field("vendor_id")
    return f"{vendor} family {_cpuinfo_field('cpu family')} model {_cpuinfo_field('model')}" if vendor else ""


def _cpuinfo_field(name: str) -> str:
    """The first value of `name` in /proc/cpuinfo ('' where there is none)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return ""


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[object]:
    """bf16 or fp16 autocast on `device` for precision 'bf16' or 'fp16'; a no-op context for 'fp32'.

    fp16 is for GPUs without bf16 (before Ampere); training then scales its losses (GradScaler, see
    acgan.training.state). It also runs on the CPU, slowly: that is how the tests check it.
    """
    if precision in ("bf16", "fp16"):
        return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    return contextlib.nullcontext()


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_KEEP_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Ask the C library's allocator to keep freed blocks of up to 1 GiB for reuse instead of returning them to
    the OS; True when it agreed (glibc), False elsewhere.

    A training step allocates and frees the same activations every step. By default glibc serves large blocks
    with fresh mmaps and unmaps them when freed, so every step touches its memory anew: about 9,000 page faults
    a step for dcgan at batch 64 on this project's CPU, almost none with this setting, and about 15% more steps
    per second (medians; benchmarks/freed_memory.py, README: Speed). The process keeps its peak memory, which
    the memory guard already plans for.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the process already uses
    except (OSError, AttributeError, TypeError):  # no mallopt (macOS, Windows, musl): nothing to tune
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))


def tune_for(device: torch.device) -> None:
    """Per-process speed settings: on the CPU, freed memory kept for reuse (`keep_freed_memory`); on CUDA, cuDNN
    autotuning (our input shapes never change) and TF32 matmuls."""
    if device.type == "cpu":
        keep_freed_memory()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
