"""Setting a training run up: data, objective, models, state and restore, the batches and the writer, as one `Run`.

The loop (acgan.training.loop) reads a Run; everything that decides what is trained is decided here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from acgan.augment import AdaptiveAugment, Augmentation, DiffAugment, parse_policy
from acgan.checkpoint import (
    CHECKPOINTS_DIR,
    LATEST,
    CheckpointContents,
    read_meta,
    read_pointer,
    resolve_checkpoint_dir,
)
from acgan.config import MAX_SEED, TrainConfig, model_settings, training_facts
from acgan.data.batches import MemoryBatches, StreamedBatches, fits_in_memory
from acgan.data.dataset import DatasetInfo, ImageDataset, data_change, load_dataset
from acgan.device import select_device, tune_for
from acgan.errors import AcganError
from acgan.memory import require_memory, training_step_bytes
from acgan.models.networks import ModelConfig
from acgan.objectives import build_objective
from acgan.precision import PrecisionChoice
from acgan.sampling import make_latents
from acgan.training.distributed import SINGLE_PROCESS, World, barrier, broadcast_from_main, mean_over_ranks
from acgan.training.precision_probe import training_precision
from acgan.training.regularisers import regularisers_of
from acgan.training.run_writer import (
    RUN_CONFIG,
    NullWriter,
    ProgressGrid,
    RunWriter,
    Writer,
    checkpoint_train_config,
    read_run_config,
)
from acgan.training.schedules import FIT_SHARE, fitted_length, needs_schedule_length, schedules_of
from acgan.training.state import (
    TrainState,
    build_train_state,
    compile_for_training,
    restore_checkpoint,
    wrap_for_ranks,
)
from acgan.training.steps import StepPlan, d_leaves_parameters_unused
from acgan.version import __version__

GRID_COLUMNS = 10  # fixed latents in the progress grids


@dataclass
class Run:
    """A training run as the loop sees it: what is trained on what, and where it stands."""

    config: TrainConfig
    run_dir: Path
    world: World
    device: torch.device
    precision_choice: PrecisionChoice  # the precision used (fp32, bf16, fp16) and how it was chosen
    info: DatasetInfo
    model_config: ModelConfig
    data_record: dict[str, Any]  # images and fingerprint of the training data, kept in every checkpoint
    state: TrainState
    plan: StepPlan
    batches: MemoryBatches | StreamedBatches
    writer: Writer
    grid: ProgressGrid
    wall_before: float = 0.0  # seconds trained by earlier processes (a resumed run)
    saved_step: int = -1  # the step of the last checkpoint written (or resumed from)
    last_checkpoint: Path | None = None
    show_progress: bool = True
    stopped_by: str = "epochs"
    warned_epoch: int = -1  # the epoch of the last source-collapse warning

    def __post_init__(self) -> None:
        self.start_step = self.state.step

    @property
    def precision(self) -> str:
        return self.precision_choice.precision

    @property
    def batch_size(self) -> int:
        """The full batch of one process (D sees half real, half generated; G a full batch)."""
        assert self.config.batch_size is not None  # resolved
        return self.config.batch_size

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world.size

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.data_record["num_images"] // self.global_batch)

    @property
    def total_steps(self) -> int | None:
        """The step training stops at, from --steps and --epochs (None: only a time bound)."""
        return step_bound(self.config, self.steps_per_epoch)

    @property
    def epoch(self) -> int:
        return self.state.step // self.steps_per_epoch

    def fit_schedule(self, seconds: float) -> None:
        """Fix the cosine schedules' length in steps once FIT_SHARE of their minutes have passed (`seconds` of
        training in this process, agreed by all of them), from the step rate so far; a no-op otherwise."""
        minutes = self.config.schedule_minutes
        done = self.state.step - self.start_step
        if self.config.schedule_steps or minutes is None or not needs_schedule_length(self.config):
            return
        if done == 0 or seconds < FIT_SHARE * 60 * minutes:
            return
        length = fitted_length(self.state.step, done / seconds, self.wall_before + seconds, minutes)
        self.config = self.config.replace(schedule_steps=length)
        self.plan = replace(self.plan, schedules=schedules_of(self.config))
        self.writer.note(f"schedules fitted to {minutes:g} minutes: {length} steps ({done / seconds:.2f} steps/s "
                         f"over the first {seconds:.0f} s)")  # fmt: skip

    def checkpoint_contents(self, resume_state: dict[str, Any]) -> CheckpointContents:
        """What a checkpoint at the current step holds (networks, resume state, facts about the run)."""
        state = self.state
        meta = {"acgan_version": __version__, "torch_version": torch.__version__,
                "images_seen": state.step * self.global_batch, "world_size": self.world.size,
                "train_config": self.config.to_dict(), "model_config": self.model_config.to_dict(),
                "dataset": self.info.to_dict(), "data": self.data_record,
                "precision_choice": self.precision_choice.to_dict()}  # fmt: skip
        facts = training_facts(self.config) | {"precision": self.precision,
                                               "precision_choice": self.precision_choice.to_dict()}  # fmt: skip
        return CheckpointContents(state.step, self.epoch, state.generator, state.discriminator, state.settled_ema(),
                                  resume_state, meta, facts)  # fmt: skip

    def config_record(self, stream: bool) -> dict[str, Any]:
        """config.json: the resolved configuration, the model, the data and where it runs."""
        runtime = {"device": str(self.device), "precision": self.precision,
                   "precision_choice": self.precision_choice.to_dict(), "data_loading": "stream" if stream else
                   "memory", "torch_threads": torch.get_num_threads(), "world_size": self.world.size,
                   "global_batch_size": self.global_batch}  # fmt: skip
        return {"format_version": 1, "acgan_version": __version__, "torch_version": torch.__version__,
                "train": self.config.to_dict(), "model": self.model_config.to_dict(), "dataset": self.info.to_dict(),
                "runtime": runtime, "data": self.data_record}  # fmt: skip


def build_run(config: TrainConfig, run_dir: Path, resume: bool, show_progress: bool, world: World) -> Run:
    """Everything a training run needs, restored from its latest checkpoint when resuming (see module docstring)."""
    device = select_device(config.device)
    dataset = load_training_data(config, world, show_progress)
    info = dataset.info
    data_record = {"num_images": len(dataset), "fingerprint": dataset.content_fingerprint()}
    resumed_note = resumed_data_note(run_dir, info, data_record) if resume else None
    config = with_schedule_length(config, run_dir, resume, len(dataset), world)
    model_config, plan = training_plan(config, info, world, device)
    tune_for(device)
    assert config.batch_size is not None  # resolved
    require_memory(training_step_bytes(model_config, config.batch_size), device,
                   f"a training step on batches of {config.batch_size}", "use a smaller --batch-size")  # fmt: skip
    writer: Writer = RunWriter(run_dir, tensorboard=config.tensorboard) if world.is_main else NullWriter(run_dir)
    restoring = broadcast_from_main(writer.start(resume), world)
    choice = broadcast_from_main(training_precision(config, model_config, plan, device, run_dir, restoring,
                                                    announce=writer.note) if world.is_main else None, world)  # fmt: skip
    assert choice is not None
    state = build_train_state(config, model_config, device, world, choice.precision)
    if plan.augment.state_dict():  # an augmentation that learns (ADA): checkpointed with the optimizers
        state.extras["augment"] = plan.augment
    if world.distributed:
        image_shape = (info.channels, info.resolution, info.resolution)
        wrap_for_ranks(state, device, d_leaves_parameters_unused(state, plan, image_shape))
    if config.compile:
        compile_for_training(state, device)
    wall_before, last_checkpoint = restore_checkpoint(state, run_dir) if restoring else (0.0, None)
    stream = broadcast_from_main(config.data_loading == "stream" or (
        config.data_loading == "auto" and not fits_in_memory(dataset.nbytes, device)), world)  # fmt: skip
    half_batches = config.d_steps * (config.batch_size // 2)
    batches = (StreamedBatches(dataset, half_batches, device, config.seed, state.step, world.rank) if stream
               else MemoryBatches(dataset, half_batches, device, state.rng))  # fmt: skip
    grid_seed = (config.seed + 1) % (MAX_SEED - GRID_COLUMNS)  # seed + 1 as always, kept in range
    grid = ProgressGrid(make_latents(GRID_COLUMNS, config.z_dim, seed=grid_seed, device=device), info,
                        f"{config.preset} ({config.objective}) on {info.name}")  # fmt: skip
    run = Run(config, run_dir, world, device, choice, info, model_config, data_record, state, plan, batches, writer,
              grid, wall_before, state.step if restoring else -1, last_checkpoint, show_progress)  # fmt: skip
    writer.begin(run.config_record(stream), state.step, restoring, [*dataset.notes, *filter(None, [resumed_note])])
    if isinstance(writer, RunWriter) and config.eval_every:  # quick evaluations: rank 0 only
        from acgan.evaluation.evaluate import load_evaluator
        from acgan.training.monitor import EvalTracker

        evaluator = load_evaluator(info, data_dir=config.data_dir, seed=config.seed)
        writer.tracker = EvalTracker(evaluator, config.best_metric, config.eval_samples, config.seed)
    return run


def with_schedule_length(
    config: TrainConfig, run_dir: Path, resume: bool, num_images: int, world: World
) -> TrainConfig:
    """`config` with its cosine schedules' length: a resumed run's the one it recorded (its latest checkpoint's, else
    config.json's), so extending a run's bound never reshapes its schedules; a new run's from its step bound, or,
    with a time bound only or --schedule-minutes, in minutes (fitted to steps while training, `Run.fit_schedule`)."""
    if config.schedule_steps or not needs_schedule_length(config):
        return config
    if resume and (run_dir / RUN_CONFIG).is_file():
        recorded = checkpoint_train_config(run_dir).get("schedule_steps") or read_run_config(run_dir).schedule_steps
        if recorded:
            return config.replace(schedule_steps=recorded)
    if config.schedule_minutes is not None:
        return config
    assert config.batch_size is not None  # resolved
    steps = step_bound(config, max(1, num_images // (config.batch_size * world.size)))
    return config.replace(schedule_steps=steps) if steps else config.replace(schedule_minutes=config.max_minutes)


def step_bound(config: TrainConfig, steps_per_epoch: int) -> int | None:
    """The step a run stops at from its --steps and --epochs (None: only a time bound)."""
    bounds = [b for b in (config.steps, config.epochs and config.epochs * steps_per_epoch) if b]
    return min(bounds) if bounds else None


def load_training_data(config: TrainConfig, world: World, show_progress: bool) -> ImageDataset:
    """The training split, decoded by rank 0 first (it fills the decode cache the other ranks then read)."""
    if not world.is_main:
        barrier(world)
    dataset = load_dataset(config.dataset, "train", data_dir=config.data_dir, limit=config.limit,
                           resolution=config.resolution, holdout=config.holdout,
                           verify_checksums=config.verify_checksums, show_progress=show_progress)  # fmt: skip
    if world.is_main:
        barrier(world)
    return dataset


def training_plan(config: TrainConfig, info: DatasetInfo, world: World = SINGLE_PROCESS,
                  device: torch.device | None = None) -> tuple[ModelConfig, StepPlan]:  # fmt: skip
    """The networks' configuration (heads from the objective, shape from the data) and the step's plan."""
    augment = augmentation(config, info, world, device or torch.device("cpu"))
    assert config.objective is not None and config.preset is not None  # resolved
    objective = build_objective(config.objective, config.class_weight, bool(config.d_class_loss_on_fake),
                                config.d2d_margin, config.d2d_temperature)  # fmt: skip
    model_config = ModelConfig(config.preset, num_classes=info.num_classes, channels=info.channels,
                               resolution=info.resolution, heads=objective.heads, **model_settings(config))  # fmt: skip
    assert config.d_updates is not None  # resolved
    schedules = schedules_of(config)
    return model_config, StepPlan(objective, config.d_updates, config.d_steps, augment, regularisers_of(config),
                                  schedules)  # fmt: skip


def augmentation(config: TrainConfig, info: DatasetInfo, world: World, device: torch.device) -> Augmentation:
    """What D sees of the images: ADA's pipeline, DiffAugment's policy, or none."""
    if config.ada:
        assert config.batch_size is not None  # resolved
        return AdaptiveAugment(config.batch_size * world.size, config.ada_target, config.ada_kimg, device=device,
                               reduce=partial(mean_over_ranks, world=world))  # fmt: skip
    policy = parse_policy(config.diffaugment or "")
    if "color" in policy and info.channels < 3:
        raise AcganError(f"diffaugment 'color' needs colour images; {info.name} has {info.channels} channel(s)")
    return DiffAugment(policy) if policy else Augmentation()


def resumed_data_note(run_dir: Path, info: DatasetInfo, data_record: dict[str, Any]) -> str | None:
    """Compare the data a run resumes on with what its latest checkpoint recorded: AcganError when the classes or
    the image shape changed (every label index would mean another class); a note when only the images did."""
    if read_pointer(run_dir / CHECKPOINTS_DIR, LATEST) is None:
        return None  # no checkpoint: the run starts again from step 0
    meta = read_meta(resolve_checkpoint_dir(run_dir))
    try:
        saved = DatasetInfo.from_dict(meta["dataset"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AcganError(f"{resolve_checkpoint_dir(run_dir)}: meta.json is damaged ({exc})") from None
    change = data_change(saved, info)
    if change is not None:
        raise AcganError(f"cannot resume {run_dir}: {change}")
    before = meta.get("data")
    if not isinstance(before, dict) or before.get("fingerprint") in (None, data_record["fingerprint"]):
        return None
    return (f"the training images changed since step {meta.get('step')} ({before.get('num_images')} -> "
            f"{data_record['num_images']} images, the same classes); training continues on the images there now")  # fmt: skip


__all__ = ["GRID_COLUMNS", "Run", "TrainState", "build_run"]
