"""Memory guards: estimates from a meta-device forward pass, refusals before allocating."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from acgan.errors import AcganError
from acgan.memory import (
    discriminator_elements,
    forward_elements,
    generator_elements,
    require_memory,
    sampling_bytes,
    training_step_bytes,
)
from acgan.models import ModelConfig, build_discriminator, build_generator

CONFIG = ModelConfig("dcgan", z_dim=16, num_classes=3, channels=3, resolution=32, width=8)


def test_meta_device_counts_match_a_real_forward_pass() -> None:
    g_meta, d_meta = generator_elements(CONFIG), discriminator_elements(CONFIG)
    generator, discriminator = build_generator(CONFIG).eval(), build_discriminator(CONFIG).eval()
    z, labels = torch.zeros(1, 16), torch.zeros(1, dtype=torch.int64)
    assert forward_elements(generator, z, labels) == g_meta > 3 * 32 * 32
    assert forward_elements(discriminator, torch.zeros(1, 3, 32, 32), labels) == d_meta > 0


def test_estimates_grow_with_the_batch_and_the_resolution() -> None:
    assert training_step_bytes(CONFIG, 128) == 2 * training_step_bytes(CONFIG, 64)
    bigger = ModelConfig("dcgan", z_dim=16, num_classes=3, channels=3, resolution=64, width=8)
    assert training_step_bytes(bigger, 64) > 2 * training_step_bytes(CONFIG, 64)
    assert sampling_bytes(CONFIG, 10_000, 64) > 10_000 * 3 * 32 * 32 * 4


def test_require_memory_refuses_only_what_does_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("acgan.memory.available_memory", lambda device: 2**30)
    require_memory(2**29, torch.device("cpu"), "a small thing", "never shown")
    with pytest.raises(AcganError, match=r"a big thing needs about 2\.0 GiB of memory, more than the 1\.0 GiB free"):
        require_memory(2**31, torch.device("cpu"), "a big thing", "make it smaller")
    monkeypatch.setattr("acgan.memory.available_memory", lambda device: None)  # unknown: never refused
    require_memory(2**60, torch.device("cpu"), "anything", "")


def test_a_huge_model_declared_in_metadata_is_refused_before_it_is_built(tmp_path: Path) -> None:
    """Metadata of a 1024 px, width 1024 generator over small weights: checked on the meta device, not built."""
    import json
    import resource

    from safetensors.torch import load, save

    from acgan.errors import CheckpointError
    from acgan.sampling import load_generator
    from tests.test_properties import TINY_WEIGHTS, header_of

    metadata = dict(header_of(TINY_WEIGHTS)["__metadata__"])
    metadata.pop("weights_sha256")
    config = {**json.loads(metadata["model_config"]), "resolution": 1024, "width": 1024}
    info = {**json.loads(metadata["dataset_info"]), "resolution": 1024}
    metadata.update(model_config=json.dumps(config), dataset_info=json.dumps(info))
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(save(load(TINY_WEIGHTS), metadata=metadata))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="do not match the configuration"):
        load_generator(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: nothing was allocated
