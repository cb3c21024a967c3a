"""The precision a training run uses: the one it started with when it resumes, else `auto` decided by timing the
run's own training step (acgan.precision) on throwaway copies of its networks."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch

from acgan.checkpoint import CHECKPOINTS_DIR, LATEST, CheckpointError, read_meta, read_pointer, resolve_checkpoint_dir
from acgan.config import TrainConfig
from acgan.device import conv_layout
from acgan.models.networks import ModelConfig
from acgan.precision import PrecisionChoice, UnitRunner, choose_precision
from acgan.training.run_writer import RUN_CONFIG
from acgan.training.state import build_train_state
from acgan.training.steps import StepPlan, training_step

PROBE_EMA_DECAY = 0.999  # any decay: the moving average's cost does not depend on it


def training_workload(config: TrainConfig, model_config: ModelConfig, plan: StepPlan) -> dict[str, Any]:
    """What decides a step's cost (the precision cache's key, with the machine): networks, batch, update scheme."""
    return {"task": "training steps", "model": model_config.to_dict(), "batch_size": config.batch_size,
            "d_updates": plan.d_updates, "d_steps": plan.d_steps, "augment": plan.augment.name,
            "regularisers": [[reg.kind, reg.interval] for reg in plan.regularisers],
            "fast_arithmetic": bool(config.fast_arithmetic), "ema": bool(config.ema_decay)}  # fmt: skip


def training_step_runner(config: TrainConfig, model_config: ModelConfig, plan: StepPlan,
                         device: torch.device) -> UnitRunner:  # fmt: skip
    """One training step of fresh networks like the run's, on random images of the run's shape and batch (with a
    copy of the plan: an augmentation with state, ADA's, must not learn from the probe)."""
    assert config.batch_size is not None  # resolved
    plan = copy.deepcopy(plan)
    state = build_train_state(config, model_config, device)
    count = plan.d_steps * (config.batch_size // 2)
    shape = (count, model_config.channels, model_config.resolution, model_config.resolution)
    rng = torch.Generator(device=device).manual_seed(0)
    images = (torch.rand(shape, generator=rng, device=device) * 2 - 1).contiguous(memory_format=conv_layout(device))
    labels = torch.randint(model_config.num_classes, (count,), generator=rng, device=device)

    def run(precision: str) -> int:
        training_step(state, plan, images, labels, config.batch_size or 2, PROBE_EMA_DECAY, precision)
        return 1

    return run


def recorded_precision(run_dir: Path) -> PrecisionChoice | None:
    """The precision a run was training at: from its latest checkpoint, else its config.json; None if neither says."""
    try:
        if read_pointer(run_dir / CHECKPOINTS_DIR, LATEST) is not None:
            meta = read_meta(resolve_checkpoint_dir(run_dir))
            if "precision_choice" in meta:
                return PrecisionChoice.from_dict(meta["precision_choice"])
        runtime = json.loads((run_dir / RUN_CONFIG).read_text()).get("runtime", {})
        return PrecisionChoice(runtime["precision"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, CheckpointError):
        return None


def training_precision(config: TrainConfig, model_config: ModelConfig, plan: StepPlan, device: torch.device,
                       run_dir: Path, restoring: bool, announce: Any = None) -> PrecisionChoice:  # fmt: skip
    """The run's precision: the one it started with when it resumes under `auto`, else `config.precision` resolved
    by acgan.precision (timing this run's step, leaving every random stream as it was)."""
    requested = config.precision or "auto"
    if requested == "auto" and restoring:
        recorded = recorded_precision(run_dir)
        if recorded is not None:
            return PrecisionChoice(recorded.precision, "resumed", recorded.rates, recorded.unit)
    built: list[UnitRunner] = []  # the probe's networks, built at the first unit: a cached choice builds nothing

    def runner(precision: str) -> int:
        if not built:
            built.append(training_step_runner(config, model_config, plan, device))
        return built[0](precision)

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        return choose_precision(requested, device, training_workload(config, model_config, plan), runner, "steps/s",
                                announce=announce)  # fmt: skip
