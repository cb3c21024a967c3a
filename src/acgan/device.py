"""Device selection: `auto` picks CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

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
        raise AcganError("--device cuda requested but no CUDA device is available (try --device auto)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise AcganError("--device mps requested but MPS is not available (try --device auto)")
    if name not in ("cpu", "cuda", "mps"):
        raise AcganError(f"unknown device '{name}' (choose auto, cpu, cuda or mps)")
    return torch.device(name)
