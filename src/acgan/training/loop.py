"""The training loop, top to bottom: config -> data -> models -> (resume) -> steps -> logs, grids, checkpoints."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from acgan import __version__
from acgan.augment import parse_policy
from acgan.checkpoint import CheckpointContents
from acgan.config import TrainConfig, dataset_label, resolve_config
from acgan.data.batches import fits_in_memory, streamed_batches
from acgan.data.dataset import DatasetInfo, load_dataset, uint8_to_model_range
from acgan.device import autocast, conv_layout, resolve_precision, select_device, tune_for
from acgan.errors import AcganError, TrainingDiverged
from acgan.models.networks import Generator, ModelConfig
from acgan.objectives import build_objective
from acgan.sampling import make_latents, sample, to_uint8_hwc
from acgan.training.monitor import EvalTracker, source_collapse_warning
from acgan.training.run_writer import RUN_CONFIG, RunWriter
from acgan.training.signals import GracefulStop
from acgan.training.state import build_train_state, restore_checkpoint
from acgan.training.steps import StepPlan, ema_decay_at, training_step
from acgan.visualize import class_grid_image

GRID_COLUMNS = 10
PROGRESS_KEYS = ("d_real_source", "d_fake_source", "g_source", "d_real_acc", "d_fake_acc", "d_real_class_acc")


class TrainingInterrupted(AcganError):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint; the CLI exits with 130."""

    def __init__(self, message: str, run_dir: Path) -> None:
        super().__init__(message)
        self.run_dir = run_dir


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    epoch: float
    checkpoint: Path
    seconds: float
    stopped_by: str  # "epochs", "steps", "max_minutes"


@dataclass(frozen=True)
class Due:
    """What to do after a step."""

    grid: bool = False
    checkpoint: bool = False
    keep: bool = False
    evaluate: bool = False


def due_after(step: int, steps_per_epoch: int, config: TrainConfig, minutes_since_checkpoint: float) -> Due:
    """The grids, checkpoints and evaluations due after `step` steps.

    At epoch ends: a grid every `sample_every` epochs, a kept checkpoint every `keep_every` epochs and a
    quick evaluation every `eval_every` epochs, each with a checkpoint; in between, a checkpoint every
    `checkpoint_every` steps and every `checkpoint_minutes` minutes.
    """
    epoch, epoch_end = step // steps_per_epoch, step % steps_per_epoch == 0
    grid = epoch_end and epoch % config.sample_every == 0
    keep = epoch_end and epoch % config.keep_every == 0
    evaluate = epoch_end and config.eval_every > 0 and epoch % config.eval_every == 0
    cadence = (config.checkpoint_every > 0 and step % config.checkpoint_every == 0) or (
        config.checkpoint_minutes > 0 and minutes_since_checkpoint >= config.checkpoint_minutes
    )
    return Due(grid, grid or keep or evaluate or cadence, keep, evaluate)


def new_run_dir(root: Path, config: TrainConfig) -> Path:
    """A fresh numbered run directory name under `root`: 00003-mnist-dcgan."""
    existing = [int(p.name[:5]) for p in root.glob("[0-9][0-9][0-9][0-9][0-9]-*")] if root.is_dir() else []
    label = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset_label(config.dataset))
    return root / f"{max(existing, default=-1) + 1:05d}-{label}-{config.preset}"


def read_run_config(run_dir: Path) -> TrainConfig:
    """The (resolved) TrainConfig saved in a run directory's config.json."""
    path = run_dir / RUN_CONFIG
    try:
        saved = json.loads(path.read_text())
        return TrainConfig.from_dict(saved["train"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AcganError(f"{path}: cannot read the run's configuration ({exc})") from None


def training_facts(config: TrainConfig) -> dict[str, Any]:
    """How a generator was trained, stored in its weights' metadata (shown by `acgan info` and the web page)."""
    keys = ("preset", "objective", "class_weight", "d_class_loss_on_fake", "d2d_margin", "d2d_temperature",
            "spectral_norm", "diffaugment", "d_updates", "d_steps", "batch_size", "lr_g", "lr_d", "ema_decay",
            "precision", "seed")  # fmt: skip
    return {key: getattr(config, key) for key in keys if getattr(config, key) is not None}


def progress_grid(generator: Generator, fixed_z: torch.Tensor, info: DatasetInfo, title: str) -> Any:
    """A picture of GRID_COLUMNS fixed latents (columns) through every class (rows)."""
    k = info.num_classes
    labels = torch.arange(k).repeat_interleave(fixed_z.shape[0])  # (K * cols,)
    images = sample(generator, labels, z=fixed_z.repeat(k, 1))
    return class_grid_image(to_uint8_hwc(images), info.class_names, ncol=fixed_z.shape[0], title=title)


def _total_steps(config: TrainConfig, steps_per_epoch: int) -> int | None:
    bounds = [b for b in (config.steps, config.epochs and config.epochs * steps_per_epoch) if b]
    return min(bounds) if bounds else None


def _seed_log_line(step: int, stats: dict[str, float]) -> str:
    """The seeds' per-step line: >step, dr[source,class], df[source,class], g[source,class] ('-' when absent)."""

    def pair(prefix: str) -> str:
        return ",".join(f"{stats[k]:.3f}" if k in stats else "-" for k in (f"{prefix}source", f"{prefix}class"))

    return f">{step}, dr[{pair('d_real_')}], df[{pair('d_fake_')}], g[{pair('g_')}]"


def train(config: TrainConfig, run_dir: Path, resume: bool = False, show_progress: bool = True) -> TrainResult:
    """Train an AC-GAN as `config` says, writing everything into `run_dir`; resume from its latest checkpoint.

    Stops at the first bound reached (epochs, steps, max_minutes), or on SIGINT/SIGTERM after saving a
    checkpoint (TrainingInterrupted). A non-finite loss raises TrainingDiverged and writes nothing more.
    A run directory whose run stopped before its first checkpoint starts again from step 0.
    """
    config = resolve_config(config)
    device = select_device(config.device)
    writer = RunWriter(run_dir, tensorboard=config.tensorboard)
    writer.check(resume)
    dataset = load_dataset(config.dataset, "train", data_dir=config.data_dir, limit=config.limit,
                           resolution=config.resolution, holdout=config.holdout,
                           verify_checksums=config.verify_checksums, show_progress=show_progress)  # fmt: skip
    info = dataset.info
    for note in dataset.notes:
        tqdm.write(f"note: {note}", file=sys.stderr)
    augment = parse_policy(config.diffaugment or "")
    if "color" in augment and info.channels < 3:
        raise AcganError(f"diffaugment 'color' needs colour images; {info.name} has {info.channels} channel(s)")
    objective = build_objective(config.objective or "acgan", config.class_weight, bool(config.d_class_loss_on_fake),
                                config.d2d_margin, config.d2d_temperature)  # fmt: skip
    model_config = ModelConfig(config.preset, config.z_dim, info.num_classes, info.channels, info.resolution,
                               width=config.width or 0, heads=objective.heads,
                               spectral_norm=bool(config.spectral_norm))  # fmt: skip
    plan = StepPlan(objective, config.d_updates or "seeds", config.d_steps, augment)

    tune_for(device)
    precision = resolve_precision(config.precision or "auto", device)
    state = build_train_state(config, model_config, device)
    assert config.batch_size is not None  # resolved
    batch_size: int = config.batch_size
    stream = config.data_loading == "stream" or (
        config.data_loading == "auto" and not fits_in_memory(dataset.nbytes, device)
    )
    restoring = writer.start(resume)
    wall_before, last_checkpoint = 0.0, run_dir
    if restoring:
        wall_before, last_checkpoint = restore_checkpoint(state, run_dir)
        writer.truncate_metrics(state.step)
    writer.open_tensorboard(state.step)
    writer.write_config({"format_version": 1, "acgan_version": __version__, "torch_version": torch.__version__,
                         "train": config.to_dict(), "model": model_config.to_dict(), "dataset": info.to_dict(),
                         "runtime": {"device": str(device), "precision": precision,
                                     "data_loading": "stream" if stream else "memory",
                                     "torch_threads": torch.get_num_threads()}}, step=state.step)  # fmt: skip

    for note in dataset.notes:
        writer.warning(state.step, note)
    half = batch_size // 2
    if stream:
        batches = streamed_batches(dataset, config.d_steps * half, config.seed, state.step, device.type == "cuda")
    else:  # (N, C, H, W) uint8 on the device: a quarter of float32's memory, converted batch by batch
        pixels = dataset.to_memory().pixels
        assert isinstance(pixels, torch.Tensor)
        images = pixels.permute(0, 3, 1, 2).to(device).contiguous(memory_format=conv_layout(device))
        labels = dataset.labels.to(device)  # (N,)
    steps_per_epoch = max(1, len(dataset) // batch_size)
    total = _total_steps(config, steps_per_epoch)
    fixed_z = make_latents(GRID_COLUMNS, config.z_dim, seed=config.seed + 1, device=device)  # same grid noise all run
    saved_step = state.step if restoring else -1
    start = last_save = time.monotonic()
    window: dict[str, torch.Tensor] = {}
    window_count, warned_epoch = 0, -1

    def save_grid(name: str, when: str) -> None:
        title = f"{config.preset} ({config.objective}) on {info.name}: {when}"
        writer.save_grid(progress_grid(state.sampler, fixed_z, info, title), name, state.step)

    def checkpoint(keep: bool) -> Path:
        nonlocal saved_step, last_save
        contents = CheckpointContents(
            state.step, state.step // steps_per_epoch, state.generator, state.discriminator, state.g_ema,
            state.resume_state(wall_before + time.monotonic() - start),
            {"acgan_version": __version__, "torch_version": torch.__version__,
             "images_seen": state.step * batch_size, "train_config": config.to_dict(),
             "model_config": model_config.to_dict(), "dataset": info.to_dict()},
            training_facts(config),
        )  # fmt: skip
        saved_step, last_save = state.step, time.monotonic()
        return writer.save_checkpoint(contents, model_config, info, keep=keep)

    def warn(message: str) -> None:
        tqdm.write(f"warning: {message}", file=sys.stderr)
        writer.warning(state.step, message)

    try:
        tracker = None
        if config.eval_every:
            from acgan.evaluation.evaluate import load_evaluator

            evaluator = load_evaluator(info, data_dir=config.data_dir, seed=config.seed)
            tracker = EvalTracker(evaluator, writer, config.best_metric, config.eval_samples, config.seed)

        bar = tqdm(total=total, initial=state.step, unit="step", dynamic_ncols=True,
                   disable=not show_progress or config.log_every > 0)  # fmt: skip
        stopped_by = "epochs"
        with GracefulStop() as stop, bar:
            while True:
                if total is not None and state.step >= total:
                    stopped_by = "steps" if config.steps is not None and state.step >= config.steps else "epochs"
                    break
                if config.max_minutes is not None and time.monotonic() - start >= 60 * config.max_minutes:
                    stopped_by = "max_minutes"
                    break
                if stop.requested:
                    path = checkpoint(keep=False) if saved_step != state.step else last_checkpoint
                    raise TrainingInterrupted(f"interrupted at step {state.step}; checkpoint {path} saved", run_dir)

                if stream:
                    real_pixels, real_labels = next(batches)  # (d_steps * half, H, W, C) uint8, (d_steps * half,)
                    real_images = uint8_to_model_range(real_pixels.to(device, non_blocking=True).permute(0, 3, 1, 2))
                    real_labels = real_labels.to(device, non_blocking=True)
                else:
                    real_index = torch.randint(
                        len(dataset), (config.d_steps * half,), generator=state.rng, device=device
                    )
                    real_images, real_labels = uint8_to_model_range(images[real_index]), labels[real_index]
                with autocast(precision, device):
                    stats = training_step(state, plan, real_images, real_labels, batch_size,
                                          ema_decay_at(config.ema_decay or 0.0, state.step))  # fmt: skip
                losses = [value for name, value in stats.items() if not name.endswith("acc")]
                if not bool(torch.isfinite(torch.stack(losses)).all()):
                    values = ", ".join(f"{k}={v.item():.4g}" for k, v in stats.items() if not k.endswith("acc"))
                    raise TrainingDiverged(
                        f"loss became non-finite at step {state.step} ({values}); stopped without saving; last good "
                        f"checkpoint: {last_checkpoint if saved_step >= 0 else 'none'}"
                    )
                for name, value in stats.items():
                    window[name] = window[name] + value if name in window else value.clone()
                window_count += 1
                if config.log_every and state.step % config.log_every == 0:
                    print(_seed_log_line(state.step, {k: v.item() for k, v in stats.items()}), flush=True)
                if state.step % config.metrics_every == 0:
                    means = {name: total_value.item() / window_count for name, total_value in window.items()}
                    writer.append_metrics({"step": state.step, "epoch": round(state.step / steps_per_epoch, 4),
                                           "images_seen": state.step * batch_size,
                                           "seconds": round(wall_before + time.monotonic() - start, 3),
                                           **{k: round(m, 6) for k, m in means.items()}})  # fmt: skip
                    window, window_count = {}, 0
                    collapse = source_collapse_warning(means.get("d_real_source", math.inf),
                                                       means.get("d_fake_source", math.inf), state.step)  # fmt: skip
                    if collapse and warned_epoch != state.step // steps_per_epoch:
                        warned_epoch = state.step // steps_per_epoch
                        warn(collapse)
                    bar.set_postfix({k: f"{means[k]:.2f}" for k in PROGRESS_KEYS if k in means}, refresh=False)
                bar.update(1)

                due = due_after(state.step, steps_per_epoch, config, (time.monotonic() - last_save) / 60)
                epoch = state.step // steps_per_epoch
                if due.grid:
                    save_grid(f"epoch_{epoch:04d}", f"epoch {epoch}, step {state.step}")
                if due.checkpoint:
                    last_checkpoint = checkpoint(keep=due.keep)
                if tracker is not None and due.evaluate:
                    for message in tracker(state.sampler, state.step, epoch, last_checkpoint):
                        warn(message)
                if due.grid or due.evaluate:
                    writer.refresh_pictures(steps_per_epoch)
        if saved_step != state.step:
            save_grid(f"step_{state.step:08d}", f"step {state.step}")
            last_checkpoint = checkpoint(keep=False)
            writer.refresh_pictures(steps_per_epoch)
    finally:
        writer.close()
    seconds = wall_before + time.monotonic() - start
    return TrainResult(run_dir, state.step, state.step / steps_per_epoch, last_checkpoint, seconds, stopped_by)


__all__ = ["TrainResult", "TrainingInterrupted", "due_after", "new_run_dir", "read_run_config", "train"]
