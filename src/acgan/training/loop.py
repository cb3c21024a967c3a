"""The training loop, top to bottom: data -> models -> (resume) -> steps -> logs, grids, checkpoints."""

from __future__ import annotations

import copy
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from tqdm import tqdm

from acgan import __version__
from acgan.checkpoint import (
    DISCRIMINATOR_FILE,
    EMA_FILE,
    GENERATOR_FILE,
    CheckpointContents,
    atomic_write_bytes,
    load_state,
    load_train_state,
    read_meta,
    read_weights,
    resolve_checkpoint_dir,
    save_checkpoint,
)
from acgan.config import TrainConfig
from acgan.data.dataset import DatasetInfo, load_dataset
from acgan.device import autocast, conv_layout, place, resolve_precision, select_device, tune_for
from acgan.errors import AcganError, TrainingDiverged
from acgan.models.networks import Generator, ModelConfig
from acgan.models.presets import build_discriminator, build_generator
from acgan.sampling import make_latents, sample, to_uint8_hwc
from acgan.training.monitor import EvalTracker, source_collapse_warning
from acgan.training.steps import STAT_KEYS, Models, ema_decay_at, training_step
from acgan.visualize import class_grid_image, plot_losses, read_jsonl, save_gif

RUN_CONFIG = "config.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples"
LOSS_PLOT = "losses.png"
SAMPLES_GIF = "samples.gif"
GRID_COLUMNS = 10


class TrainingInterrupted(AcganError):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint; the CLI exits with 130."""


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    step: int
    epoch: float
    checkpoint: Path
    seconds: float
    stopped_by: str  # "epochs", "steps", "max_minutes"


def new_run_dir(root: Path, config: TrainConfig) -> Path:
    """A fresh numbered run directory name under `root`: 00003-mnist-dcgan."""
    existing = [int(p.name[:5]) for p in root.glob("[0-9][0-9][0-9][0-9][0-9]-*")] if root.is_dir() else []
    return root / f"{max(existing, default=-1) + 1:05d}-{config.dataset}-{config.preset}"


def read_run_config(run_dir: Path) -> TrainConfig:
    """The TrainConfig saved in a run directory's config.json."""
    path = run_dir / RUN_CONFIG
    try:
        saved = json.loads(path.read_text())
        return TrainConfig.from_dict(saved["train"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AcganError(f"{path}: cannot read the run's configuration ({exc})") from None


class _GracefulStop:
    """Turn the first SIGINT/SIGTERM into a flag checked between steps; a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _rng_state(rng: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "loop": rng.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any], rng: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    rng.set_state(state["loop"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _restore(run_dir: Path, models: Models, rng: torch.Generator) -> tuple[int, float, Path]:
    """Load the latest checkpoint of `run_dir` into `models` and `rng`; return (step, wall seconds, dir)."""
    checkpoint_dir = resolve_checkpoint_dir(run_dir)
    read_meta(checkpoint_dir)
    for module, filename in ((models.generator, GENERATOR_FILE), (models.discriminator, DISCRIMINATOR_FILE),
                             (models.g_ema, EMA_FILE)):  # fmt: skip
        if module is not None:
            load_state(module, read_weights(checkpoint_dir / filename).tensors, checkpoint_dir / filename)
    state = load_train_state(checkpoint_dir)
    try:
        models.opt_g.load_state_dict(state["opt_g"])
        models.opt_d.load_state_dict(state["opt_d"])
        _restore_rng(state["rng"], rng)
        return int(state["step"]), float(state["wall_seconds"]), checkpoint_dir
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise AcganError(f"{checkpoint_dir}: train state does not fit this run ({exc})") from None


def _truncate_metrics(path: Path, after_step: int) -> None:
    """Drop metric lines logged after the checkpoint we resume from (they will be logged again)."""
    if path.is_file():
        kept = [record for record in read_jsonl(path) if record.get("step", 0) <= after_step]
        atomic_write_bytes(path, "".join(json.dumps(record) + "\n" for record in kept).encode())


def _save_progress_grid(g: Generator, fixed_z: torch.Tensor, info: DatasetInfo, path: Path, title: str) -> None:
    """A GRID_COLUMNS-wide grid, one row per class, each column one fixed latent."""
    k = info.num_classes
    labels = torch.arange(k).repeat_interleave(fixed_z.shape[0])  # (K * cols,)
    images = sample(g, labels, z=fixed_z.repeat(k, 1))
    picture = class_grid_image(to_uint8_hwc(images), info.class_names, ncol=fixed_z.shape[0], title=title)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    picture.save(tmp)
    tmp.replace(path)


def _grid_step(path: Path, steps_per_epoch: int) -> int:
    kind, _, number = path.stem.partition("_")
    return int(number) * (steps_per_epoch if kind == "epoch" else 1)


def _total_steps(config: TrainConfig, steps_per_epoch: int) -> int | None:
    bounds = [b for b in (config.steps, config.epochs and config.epochs * steps_per_epoch) if b]
    return min(bounds) if bounds else None


def train(config: TrainConfig, run_dir: Path, resume: bool = False, show_progress: bool = True) -> TrainResult:
    """Train an AC-GAN as `config` says, writing everything into `run_dir`; resume from its latest checkpoint.

    Stops at the first bound reached (epochs, steps, max_minutes), or on SIGINT/SIGTERM after saving a
    checkpoint (TrainingInterrupted). A non-finite loss raises TrainingDiverged and writes nothing more.
    """
    device = select_device(config.device)
    if not resume and (run_dir / RUN_CONFIG).exists():
        raise AcganError(
            f"{run_dir} already holds a run; continue it with --resume {run_dir} or pick another --run-dir"
        )
    dataset = load_dataset(config.dataset, "train", data_dir=config.data_dir, limit=config.limit)
    info = dataset.info
    model_config = ModelConfig(config.preset, config.z_dim, info.num_classes, info.channels, info.resolution)

    tune_for(device)
    precision = resolve_precision(config.precision or "auto", device)
    generator = place(build_generator(model_config, config.seed), device)
    discriminator = place(build_discriminator(model_config, config.seed), device)
    g_ema = copy.deepcopy(generator).requires_grad_(False) if config.ema_decay else None
    betas = (config.beta1, config.beta2)
    models = Models(
        generator, discriminator,
        torch.optim.Adam(generator.parameters(), lr=config.learning_rates[0], betas=betas),
        torch.optim.Adam(discriminator.parameters(), lr=config.learning_rates[1], betas=betas),
        g_ema,
    )  # fmt: skip
    torch.manual_seed(config.seed)  # dropout draws from the global generator; its state is checkpointed
    rng = torch.Generator(device=device).manual_seed(config.seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    step, wall_before, last_checkpoint = 0, 0.0, run_dir
    if resume:
        step, wall_before, last_checkpoint = _restore(run_dir, models, rng)
        _truncate_metrics(run_dir / METRICS, step)
    record = {"format_version": 1, "acgan_version": __version__, "torch_version": torch.__version__,
              "train": config.to_dict(), "model": model_config.to_dict(), "dataset": info.to_dict(),
              "runtime": {"device": str(device), "precision": precision, "torch_threads": torch.get_num_threads()}}  # fmt: skip
    atomic_write_bytes(run_dir / RUN_CONFIG, (json.dumps(record, indent=2) + "\n").encode())

    images = dataset.images.to(device).contiguous(memory_format=conv_layout(device))  # (N, C, H, W) in [-1, 1]
    labels = dataset.labels.to(device)  # (N,)
    steps_per_epoch = max(1, len(dataset) // config.batch_size)
    total = _total_steps(config, steps_per_epoch)
    fixed_z = make_latents(GRID_COLUMNS, config.z_dim, seed=config.seed + 1, device=device)  # same grid noise all run
    sampler = g_ema if g_ema is not None else generator
    saved_step = step if resume else -1
    window = torch.zeros(len(STAT_KEYS), device=device)
    window_count = 0
    start = time.monotonic()

    def checkpoint(keep: bool) -> Path:
        nonlocal saved_step
        state = {"opt_g": models.opt_g.state_dict(), "opt_d": models.opt_d.state_dict(), "step": step,
                 "wall_seconds": wall_before + time.monotonic() - start, "rng": _rng_state(rng)}  # fmt: skip
        meta = {"acgan_version": __version__, "torch_version": torch.__version__, "images_seen": step * config.batch_size,
                "train_config": config.to_dict(), "model_config": model_config.to_dict(), "dataset": info.to_dict()}  # fmt: skip
        contents = CheckpointContents(step, step // steps_per_epoch, generator, discriminator, g_ema, state, meta)
        saved_step = step
        return save_checkpoint(run_dir, contents, model_config, info, keep=keep)

    def refresh_pictures() -> None:
        if (run_dir / METRICS).is_file():
            plot_losses(run_dir / METRICS, run_dir / LOSS_PLOT)
        frames = sorted((run_dir / SAMPLES).glob("*.png"), key=lambda p: _grid_step(p, steps_per_epoch))
        save_gif(frames, run_dir / SAMPLES_GIF)

    tracker = None
    if config.eval_every:
        from acgan.evaluation.evaluate import load_evaluator

        evaluator = load_evaluator(info, data_dir=config.data_dir, seed=config.seed)
        tracker = EvalTracker(evaluator, run_dir, config.best_metric, config.eval_samples, config.seed)
    warned_epoch = -1

    def warn(message: str) -> None:
        tqdm.write(f"warning: {message}", file=sys.stderr)
        with open(run_dir / METRICS, "a") as handle:
            handle.write(json.dumps({"kind": "warning", "step": step, "message": message}) + "\n")

    bar = tqdm(total=total, initial=step, unit="step", dynamic_ncols=True,
               disable=not show_progress or config.log_every > 0)  # fmt: skip
    stopped_by = "epochs"
    with _GracefulStop() as stop, bar:
        while True:
            if total is not None and step >= total:
                stopped_by = "steps" if config.steps is not None and step >= config.steps else "epochs"
                break
            if config.max_minutes is not None and time.monotonic() - start >= 60 * config.max_minutes:
                stopped_by = "max_minutes"
                break
            if stop.requested:
                path = checkpoint(keep=False) if saved_step != step else last_checkpoint
                raise TrainingInterrupted(
                    f"interrupted at step {step}; checkpoint {path} saved; continue with: acgan train --resume {run_dir}"
                )
            with autocast(precision, device):
                stats = training_step(models, images, labels, config.batch_size, rng, config.d_class_loss_on_fake,
                                      ema_decay_at(config.ema_decay or 0.0, step))  # fmt: skip
            step += 1
            if not bool(torch.isfinite(stats[:6]).all()):
                values = ", ".join(f"{k}={v:.4g}" for k, v in zip(STAT_KEYS[:6], stats.tolist(), strict=False))
                raise TrainingDiverged(
                    f"loss became non-finite at step {step} ({values}); stopped without saving; last good "
                    f"checkpoint: {last_checkpoint if saved_step >= 0 else 'none'}"
                )
            window += stats
            window_count += 1
            if config.log_every and step % config.log_every == 0:
                v = stats.tolist()
                print(f">{step}, dr[{v[0]:.3f},{v[1]:.3f}], df[{v[2]:.3f},{v[3]:.3f}], g[{v[4]:.3f},{v[5]:.3f}]",
                      flush=True)  # fmt: skip
            if step % config.metrics_every == 0:
                means = (window / window_count).tolist()
                line = {"step": step, "epoch": round(step / steps_per_epoch, 4), "images_seen": step * config.batch_size,
                        "seconds": round(wall_before + time.monotonic() - start, 3),
                        **{k: round(m, 6) for k, m in zip(STAT_KEYS, means, strict=True)}}  # fmt: skip
                with open(run_dir / METRICS, "a") as handle:
                    handle.write(json.dumps(line) + "\n")
                window.zero_()
                window_count = 0
                collapse = source_collapse_warning(means[0], means[2], step)
                if collapse and warned_epoch != step // steps_per_epoch:
                    warned_epoch = step // steps_per_epoch
                    warn(collapse)
                bar.set_postfix(d_real=f"{means[0]:.2f}", d_fake=f"{means[2]:.2f}", g=f"{means[4]:.2f}",
                                acc_real=f"{means[6]:.2f}", acc_fake=f"{means[7]:.2f}", cls=f"{means[8]:.2f}",
                                refresh=False)  # fmt: skip
            bar.update(1)
            if step % steps_per_epoch == 0:
                epoch = step // steps_per_epoch
                sample_now = epoch % config.sample_every == 0
                eval_now = tracker is not None and epoch % config.eval_every == 0
                if sample_now:
                    _save_progress_grid(sampler, fixed_z, info, run_dir / SAMPLES / f"epoch_{epoch:04d}.png",
                                        f"{config.preset} on {info.name}: epoch {epoch}, step {step}")  # fmt: skip
                if sample_now or eval_now:
                    last_checkpoint = checkpoint(keep=epoch % config.keep_every == 0)
                if tracker is not None and eval_now:
                    for message in tracker(sampler, step, epoch, last_checkpoint):
                        warn(message)
                if sample_now or eval_now:
                    refresh_pictures()
    if saved_step != step:
        _save_progress_grid(sampler, fixed_z, info, run_dir / SAMPLES / f"step_{step:08d}.png",
                            f"{config.preset} on {info.name}: step {step}")  # fmt: skip
        last_checkpoint = checkpoint(keep=False)
        refresh_pictures()
    seconds = wall_before + time.monotonic() - start
    return TrainResult(run_dir, step, step / steps_per_epoch, last_checkpoint, seconds, stopped_by)


__all__ = ["TrainResult", "TrainingInterrupted", "new_run_dir", "read_run_config", "train"]
