"""The training loop, top to bottom: config -> data -> models -> (resume) -> steps -> logs, grids, checkpoints."""

from __future__ import annotations

import errno
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
from acgan.checkpoint import (
    CHECKPOINTS_DIR,
    LATEST,
    CheckpointContents,
    read_meta,
    read_pointer,
    resolve_checkpoint_dir,
)
from acgan.config import MAX_SEED, TrainConfig, dataset_label, resolve_config
from acgan.data.batches import fits_in_memory, streamed_batches
from acgan.data.dataset import DatasetInfo, data_change, load_dataset, uint8_to_model_range
from acgan.device import autocast, conv_layout, resolve_precision, select_device, tune_for
from acgan.errors import AcganError, TrainingDiverged
from acgan.memory import require_memory, training_step_bytes
from acgan.models.networks import Generator, ModelConfig
from acgan.objectives import build_objective
from acgan.progress import TrainingProgress
from acgan.sampling import make_latents, sample, to_uint8_hwc
from acgan.training.distributed import (
    World,
    agree_max,
    barrier,
    broadcast_from_main,
    dist_initialized,
    join_world,
    leave_world,
    mean_over_ranks,
)
from acgan.training.monitor import EvalTracker, source_collapse_warning
from acgan.training.run_lock import RunLock
from acgan.training.run_writer import RUN_CONFIG, RunWriter
from acgan.training.signals import GracefulStop
from acgan.training.state import build_train_state, restore_checkpoint, wrap_for_ranks
from acgan.training.steps import StepPlan, d_leaves_parameters_unused, ema_decay_at, training_step
from acgan.visualize import class_grid_image

GRID_COLUMNS = 10
PROGRESS_KEYS = ("d_real_source", "d_fake_source", "g_source", "d_real_acc", "d_fake_acc", "d_real_class_acc")


class TrainingInterrupted(AcganError):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint; the CLI exits with 130."""

    def __init__(self, message: str, run_dir: Path, processes: int = 1) -> None:
        super().__init__(message)
        self.run_dir = run_dir
        self.processes = processes  # to resume with the same number (--nproc)


class DiskFull(AcganError):
    """The run directory's disk (or quota) filled up; the last complete checkpoint is intact."""


def disk_full_message(run_dir: Path, exc: OSError, processes: int = 1) -> str:
    """What happened, what is safe and what to do, for a write into `run_dir` that failed for lack of space."""
    where = f" writing {Path(exc.filename).name}" if exc.filename else ""
    nproc = f" --nproc {processes}" if processes > 1 else ""
    then = f"then continue with: acgan train --resume {run_dir}{nproc}"
    try:
        last = f"the last good checkpoint, {resolve_checkpoint_dir(run_dir)}, is intact"
    except AcganError:
        last = "no checkpoint had been written yet"
        then = f"{then} (from step 0)" if (run_dir / RUN_CONFIG).is_file() else "then start the run again"
    return f"no space left on the disk of {run_dir}{where} ({exc.strerror}); {last}; free some space, {then}"


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    epoch: float
    checkpoint: Path
    seconds: float
    stopped_by: str  # "epochs", "steps", "max_minutes"
    start_step: int = 0  # the step it started (or resumed) from


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
    Under torchrun every process calls this: each trains on its own batches (config.batch_size per process),
    DDP averages the gradients, every stop is agreed by all processes and only rank 0 writes.
    """
    config = resolve_config(config)
    joined = not dist_initialized()
    world = join_world(config.device)
    lock = None
    try:
        lock = lock_run_dir(run_dir, resume, world)
        return _train(config, run_dir, resume, show_progress and world.is_main, world)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DiskFull(disk_full_message(run_dir, exc, world.size)) from None
    finally:
        if lock is not None:
            lock.release(remove_if_unused=True)
        if joined:
            leave_world()


def lock_run_dir(run_dir: Path, resume: bool, world: World) -> RunLock | None:
    """Rank 0 takes the run directory's lock (one writer per run) and checks that the run can start or resume
    there; every rank raises the same AcganError when it cannot (the lock is then let go)."""
    lock, refusal = None, None
    if world.is_main:
        try:
            if resume:  # before the lock creates anything: a folder with no run to resume stays as it is
                RunWriter(run_dir).check(resume)
            lock = RunLock(run_dir)
            lock.acquire()
            RunWriter(run_dir).check(resume)  # under the lock: a run being written says "in use", not "exists"
        except AcganError as exc:
            if lock is not None:
                lock.release(remove_if_unused=True)
                lock = None
            if not world.distributed:
                raise
            refusal = str(exc)
    refusal = broadcast_from_main(refusal, world)
    if refusal is not None:
        raise AcganError(refusal)
    return lock


def _train(config: TrainConfig, run_dir: Path, resume: bool, show_progress: bool, world: World) -> TrainResult:
    device = select_device(config.device)
    writer = RunWriter(run_dir, tensorboard=config.tensorboard)
    writer.check(resume)
    if not world.is_main:  # rank 0 decodes (and caches) the data first; the others then read its cache
        barrier(world)
    dataset = load_dataset(config.dataset, "train", data_dir=config.data_dir, limit=config.limit,
                           resolution=config.resolution, holdout=config.holdout,
                           verify_checksums=config.verify_checksums, show_progress=show_progress)  # fmt: skip
    if world.is_main:
        barrier(world)
    info = dataset.info
    data_record = {"num_images": len(dataset), "fingerprint": dataset.content_fingerprint()}
    resumed_note = resumed_data_note(run_dir, info, data_record) if resume else None
    notes = [*dataset.notes, *([resumed_note] if resumed_note else [])]
    for note in notes if world.is_main else ():
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
    assert config.batch_size is not None  # resolved
    require_memory(training_step_bytes(model_config, config.batch_size), device,
                   f"a training step on batches of {config.batch_size}", "use a smaller --batch-size")  # fmt: skip
    state = build_train_state(config, model_config, device, world, precision)
    if world.distributed:
        wrap_for_ranks(state, device, d_leaves_parameters_unused(state, plan, (info.channels, info.resolution,
                                                                              info.resolution)))  # fmt: skip
    batch_size: int = config.batch_size  # per process
    global_batch = batch_size * world.size
    stream = broadcast_from_main(config.data_loading == "stream" or (
        config.data_loading == "auto" and not fits_in_memory(dataset.nbytes, device)), world)  # fmt: skip
    restoring = broadcast_from_main(writer.start(resume) if world.is_main else False, world)
    wall_before, last_checkpoint = 0.0, run_dir
    if restoring:
        wall_before, last_checkpoint = restore_checkpoint(state, run_dir)
    if world.is_main:
        if restoring:
            writer.truncate_metrics(state.step)
        writer.open_tensorboard(state.step)
        writer.write_config({"format_version": 1, "acgan_version": __version__, "torch_version": torch.__version__,
                             "train": config.to_dict(), "model": model_config.to_dict(), "dataset": info.to_dict(),
                             "runtime": {"device": str(device), "precision": precision,
                                         "data_loading": "stream" if stream else "memory",
                                         "torch_threads": torch.get_num_threads(), "world_size": world.size,
                                         "global_batch_size": global_batch}, "data": data_record}, step=state.step)  # fmt: skip
        for note in notes:
            writer.warning(state.step, note)
    half = batch_size // 2
    if stream:
        batches = streamed_batches(dataset, config.d_steps * half, config.seed, state.step, device.type == "cuda",
                                   rank=world.rank)  # fmt: skip
    else:  # (N, C, H, W) uint8 on the device: a quarter of float32's memory, converted batch by batch
        pixels = dataset.to_memory().pixels
        assert isinstance(pixels, torch.Tensor)
        images = pixels.permute(0, 3, 1, 2).to(device).contiguous(memory_format=conv_layout(device))
        labels = dataset.labels.to(device)  # (N,)
    steps_per_epoch = max(1, len(dataset) // global_batch)
    total = _total_steps(config, steps_per_epoch)
    grid_seed = (config.seed + 1) % (MAX_SEED - GRID_COLUMNS)  # seed + 1 as always, kept in range
    fixed_z = make_latents(GRID_COLUMNS, config.z_dim, seed=grid_seed, device=device)  # same grid noise all run
    saved_step = state.step if restoring else -1
    start_step = state.step
    start = last_save = time.monotonic()
    window: dict[str, torch.Tensor] = {}
    window_count, warned_epoch = 0, -1
    # Where the host waits for the device: every step on the CPU (free), every metrics window on a GPU.
    sync_every = 1 if device.type == "cpu" else config.metrics_every
    first_bad = torch.full((), -1.0, dtype=torch.float64, device=device)  # first step with a non-finite loss
    bad_losses: torch.Tensor | None = None  # that step's losses (this rank's)
    minutes_since_save = 0.0  # as agreed by all ranks at the last control point

    def save_grid(name: str, when: str) -> None:
        if world.is_main:
            title = f"{config.preset} ({config.objective}) on {info.name}: {when}"
            writer.save_grid(progress_grid(state.sampler, fixed_z, info, title), name, state.step)

    def checkpoint(keep: bool) -> Path:
        """Save a checkpoint (every rank contributes its RNG state; rank 0 writes), shielded from a 2nd signal."""
        nonlocal saved_step, last_save, minutes_since_save
        resume_state = state.resume_state(wall_before + time.monotonic() - start)
        saved_step, last_save, minutes_since_save = state.step, time.monotonic(), 0.0
        if not world.is_main:
            return last_checkpoint
        contents = CheckpointContents(
            state.step, state.step // steps_per_epoch, state.generator, state.discriminator, state.g_ema,
            resume_state,
            {"acgan_version": __version__, "torch_version": torch.__version__,
             "images_seen": state.step * global_batch, "world_size": world.size, "train_config": config.to_dict(),
             "model_config": model_config.to_dict(), "dataset": info.to_dict(), "data": data_record},
            training_facts(config),
        )  # fmt: skip
        with stop.shielded():
            return writer.save_checkpoint(contents, model_config, info, keep=keep)

    def warn(message: str) -> None:
        if world.is_main:
            tqdm.write(f"warning: {message}", file=sys.stderr)
            writer.warning(state.step, message)

    def check_finite(agreed_bad: float | None = None) -> None:
        """TrainingDiverged if any rank saw a non-finite loss (agreed by all ranks unless given)."""
        bad_step = agree_max(first_bad.reshape(1), world).item() if agreed_bad is None else agreed_bad
        if bad_step < 0:
            return
        barrier(world)  # every rank stops here together
        own = bad_losses is not None and first_bad.item() == bad_step
        values = ", ".join(f"{name}={value:.4g}" for name, value in zip(loss_names, bad_losses.tolist(), strict=True)) \
            if own and bad_losses is not None else "on another process"  # fmt: skip
        raise TrainingDiverged(
            f"loss became non-finite at step {int(bad_step)} ({values}); stopped without saving; last good "
            f"checkpoint: {last_checkpoint if saved_step >= 0 else 'none'}"
        )

    loss_names: list[str] = []
    try:
        tracker = None
        if config.eval_every and world.is_main:
            from acgan.evaluation.evaluate import load_evaluator

            evaluator = load_evaluator(info, data_dir=config.data_dir, seed=config.seed)
            tracker = EvalTracker(evaluator, writer, config.best_metric, config.eval_samples, config.seed)

        progress = TrainingProgress(total, state.step, show=show_progress and config.log_every == 0)
        stopped_by = "epochs"
        with GracefulStop(repeat_interrupts=not world.distributed) as stop, progress:
            while True:
                if total is not None and state.step >= total:
                    stopped_by = "steps" if config.steps is not None and state.step >= config.steps else "epochs"
                    break
                if state.step % sync_every == 0:  # the control point: one small all-reduce when distributed
                    elapsed = time.monotonic() - start
                    requested, time_up, minutes_since_save, bad_step = agree_max(torch.cat([
                        torch.tensor([float(stop.requested),
                                      float(config.max_minutes is not None and elapsed >= 60 * config.max_minutes),
                                      (time.monotonic() - last_save) / 60], dtype=torch.float64, device=device),
                        first_bad.reshape(1)]), world).tolist()  # fmt: skip
                    check_finite(bad_step)
                    if time_up:
                        stopped_by = "max_minutes"
                        break
                    if requested:
                        path = checkpoint(keep=False) if saved_step != state.step else last_checkpoint
                        barrier(world)  # every rank leaves once rank 0 has written the checkpoint
                        raise TrainingInterrupted(f"interrupted at step {state.step}; checkpoint {path} saved",
                                                  run_dir, world.size)  # fmt: skip

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
                # Non-finite losses are noted on the device (no waiting for it) and acted on at the control point
                loss_names = loss_names or [name for name in stats if not name.endswith("acc")]  # same every step
                losses = torch.stack([stats[name].double() for name in loss_names])  # (L,)
                newly_bad = (first_bad < 0) & ~torch.isfinite(losses).all()
                first_bad = torch.where(newly_bad, float(state.step), first_bad)
                bad_losses = losses if bad_losses is None else torch.where(newly_bad, losses, bad_losses)
                for name, value in stats.items():
                    window[name] = window[name] + value if name in window else value.clone()
                window_count += 1
                if config.log_every and state.step % config.log_every == 0 and world.is_main:
                    print(_seed_log_line(state.step, {k: v.item() for k, v in stats.items()}), flush=True)
                if state.step % config.metrics_every == 0:
                    names = list(window)
                    summed = mean_over_ranks(torch.stack([window[name].float() for name in names]), world)
                    means = dict(zip(names, (summed / window_count).tolist(), strict=True))
                    window, window_count = {}, 0
                    if world.is_main:
                        writer.append_metrics({"step": state.step, "epoch": round(state.step / steps_per_epoch, 4),
                                               "images_seen": state.step * global_batch,
                                               "seconds": round(wall_before + time.monotonic() - start, 3),
                                               **{k: round(m, 6) for k, m in means.items()}})  # fmt: skip
                    collapse = source_collapse_warning(means.get("d_real_source", math.inf),
                                                       means.get("d_fake_source", math.inf), state.step)  # fmt: skip
                    if collapse and warned_epoch != state.step // steps_per_epoch:
                        warned_epoch = state.step // steps_per_epoch
                        warn(collapse)
                    progress.statistics = {k: means[k] for k in PROGRESS_KEYS if k in means}
                progress.update(state.step)

                due = due_after(state.step, steps_per_epoch, config, minutes_since_save)
                epoch = state.step // steps_per_epoch
                if due.grid or due.checkpoint or due.evaluate:
                    check_finite()
                if due.grid:
                    save_grid(f"epoch_{epoch:04d}", f"epoch {epoch}, step {state.step}")
                if due.checkpoint:
                    last_checkpoint = checkpoint(keep=due.keep)
                if tracker is not None and due.evaluate:
                    for message in tracker(state.sampler, state.step, epoch, last_checkpoint):
                        warn(message)
                if (due.grid or due.evaluate) and world.is_main:
                    writer.refresh_pictures(steps_per_epoch)
            if saved_step != state.step:
                check_finite()
                save_grid(f"step_{state.step:08d}", f"step {state.step}")
                last_checkpoint = checkpoint(keep=False)
                if world.is_main:
                    writer.refresh_pictures(steps_per_epoch)
            barrier(world)
    finally:
        failing = sys.exc_info()[1] is not None
        try:
            writer.close()
        except OSError:
            if not failing:  # already failing (a full disk): that error is the one to report
                raise
    seconds = wall_before + time.monotonic() - start
    return TrainResult(run_dir, state.step, state.step / steps_per_epoch, last_checkpoint, seconds, stopped_by,
                       start_step)  # fmt: skip


__all__ = ["DiskFull", "TrainResult", "TrainingInterrupted", "due_after", "new_run_dir", "read_run_config", "train"]
