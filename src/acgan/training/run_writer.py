"""The run directory: the one place that writes into it, so its layout lives here.

RUN/config.json          resolved configuration, model config, data set facts, runtime
RUN/metrics.jsonl        one JSON object per metrics window; {"kind": "eval"} and {"kind": "warning"} lines
RUN/samples/*.png        progress grids (one row per class, fixed latents); RUN/samples.gif
RUN/losses.png           every logged statistic by name; RUN/eval.png the quick evaluations
RUN/checkpoints/         see acgan.checkpoint
RUN/tensorboard/         TensorBoard event files (unless turned off): the same statistics, evaluations, grids
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from PIL import Image
from tqdm import tqdm

from acgan.checkpoint import (
    CHECKPOINTS_DIR,
    LATEST,
    META_FILE,
    CheckpointContents,
    checkpoint_name,
    mark_best,
    read_best,
    read_meta,
    read_pointer,
    resolve_checkpoint_dir,
    save_checkpoint,
)
from acgan.config import CONFIG_FIELDS, LEGACY_DEFAULTS, TrainConfig
from acgan.data.dataset import DatasetInfo
from acgan.errors import AcganError, RunExists
from acgan.files import atomic_write_bytes, picture_bytes, temporary_pid
from acgan.models.networks import Generator, ModelConfig
from acgan.sampling import sample, to_uint8_hwc
from acgan.training.monitor import EvalTracker
from acgan.training.run_lock import pid_alive
from acgan.training.tensorboard import TensorBoardLog
from acgan.visualize import class_grid_image, plot_eval, plot_losses, read_jsonl, save_gif

RUN_CONFIG = "config.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples"
LOSS_PLOT = "losses.png"
EVAL_PLOT = "eval.png"
SAMPLES_GIF = "samples.gif"
T = TypeVar("T")
GIF_FRAMES = 40  # the GIF's most frames, spread over the run: its size and its redraw stay bounded
TENSORBOARD = "tensorboard"


@dataclass(frozen=True)
class ProgressGrid:
    """The run's progress picture: GRID_COLUMNS fixed latents (columns) through every class (rows)."""

    fixed_z: torch.Tensor  # (GRID_COLUMNS, z_dim), the same all run long
    info: DatasetInfo
    title: str  # what is trained on what; the time of the grid is added

    def picture(self, generator: Generator, when: str) -> Image.Image:
        k = self.info.num_classes
        labels = torch.arange(k).repeat_interleave(self.fixed_z.shape[0])  # (K * cols,)
        images = sample(generator, labels, z=self.fixed_z.repeat(k, 1))
        return class_grid_image(to_uint8_hwc(images), self.info.class_names, ncol=self.fixed_z.shape[0],
                                title=f"{self.title}: {when}")  # fmt: skip


class Writer(Protocol):
    """What the training loop writes: rank 0's RunWriter, every other process's NullWriter."""

    def start(self, resume: bool) -> bool: ...
    def begin(self, record: dict[str, Any], step: int, restoring: bool, notes: list[str]) -> None: ...
    def metrics(self, record: dict[str, Any]) -> None: ...
    def echo(self, line: str) -> None: ...
    def note(self, line: str) -> None: ...
    def warn(self, step: int, message: str) -> None: ...
    def grid(self, grid: ProgressGrid, generator: Generator, name: str, when: str, step: int) -> None: ...
    def save_checkpoint(self, contents: CheckpointContents, model_config: ModelConfig, info: DatasetInfo,
                        keep: bool) -> Path: ...  # fmt: skip
    def evaluate(self, generator: Generator, step: int, epoch: int, checkpoint_dir: Path) -> None: ...
    def refresh_pictures(self, steps_per_epoch: int, final: bool = False) -> None: ...
    def close(self) -> None: ...


@dataclass
class RedrawBudget:
    """Keeps redrawing the run's pictures to at most `share` of the run's wall time: after a redraw that took t
    seconds, the next one waits t * (1 - share) / share. Without it a small data set (an epoch every few
    seconds) spent most of a long run re-encoding its growing GIF. The last redraw of a run is never skipped."""

    share: float = 0.05
    clock: Callable[[], float] = time.monotonic
    next_at: float = -math.inf

    def due(self) -> bool:
        return self.clock() >= self.next_at

    def spent(self, seconds: float) -> None:
        self.next_at = self.clock() + seconds * (1 - self.share) / self.share


class RunWriter:
    """Writes a run directory's files; every write is atomic or an append of whole lines. Rank 0's writer."""

    def __init__(self, run_dir: Path, tensorboard: bool = False, tracker: EvalTracker | None = None) -> None:
        self.run_dir = run_dir
        self.tracker = tracker  # quick evaluations during training, when the run asks for them
        self._tensorboard_wanted = tensorboard
        self._tensorboard: TensorBoardLog | None = None
        self.redraw = RedrawBudget()

    @property
    def has_checkpoint(self) -> bool:
        return (self.run_dir / CHECKPOINTS_DIR / LATEST).is_file()

    def check(self, resume: bool) -> None:
        """Before any work: AcganError when resuming a directory with no run, RunExists when starting a new run
        over one that has checkpoints. A run that stopped before its first checkpoint may be started again."""
        has_config = (self.run_dir / RUN_CONFIG).is_file()
        if resume and not has_config:
            refuse_checkpoint_folder(self.run_dir)
            raise AcganError(f"{self.run_dir} holds no run to resume (no {RUN_CONFIG})")
        if not resume and has_config and self.has_checkpoint:
            raise RunExists(self.run_dir)

    def start(self, resume: bool) -> bool:
        """Create the directory; return whether there is a checkpoint to resume from.

        A run that stopped before its first checkpoint restarts from step 0 (resumed or started again):
        its partial metrics and grids are cleared.
        """
        self.check(resume)
        if (self.run_dir / RUN_CONFIG).is_file() and not self.has_checkpoint:
            self._clear_partial_run()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._remove_torn_writes()
        return resume and self.has_checkpoint

    def begin(self, record: dict[str, Any], step: int, restoring: bool, notes: list[str]) -> None:
        """At `step` (0, or the checkpoint resumed from): drop what a crash logged after it, open TensorBoard, write
        config.json (`record`) and record the notes about the data."""
        if restoring:
            self.truncate_metrics(step)
        self.open_tensorboard(step)
        self.write_config(record, step)
        for note in notes:
            tqdm.write(f"note: {note}", file=sys.stderr)
            self.warning(step, note)

    def _remove_torn_writes(self) -> None:
        """Delete what writes a crash interrupted left (written_aside names it .NAME.tmp-PID): files and checkpoint
        folders; those of a live process (`acgan evaluate` writing eval.json while this run trains) are left to it."""
        for folder in (self.run_dir, self.run_dir / SAMPLES, self.run_dir / CHECKPOINTS_DIR):
            for path in folder.iterdir() if folder.is_dir() else ():
                pid = temporary_pid(path.name)
                if pid is not None and (pid == os.getpid() or not pid_alive(pid)):
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)  # a checkpoint folder being written
                    else:
                        path.unlink(missing_ok=True)  # a picture, metrics, config, `latest` being written

    def _clear_partial_run(self) -> None:
        for name in (METRICS, LOSS_PLOT, EVAL_PLOT, SAMPLES_GIF):
            (self.run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(self.run_dir / SAMPLES, ignore_errors=True)
        shutil.rmtree(self.run_dir / TENSORBOARD, ignore_errors=True)

    def open_tensorboard(self, step: int) -> None:
        """Start the TensorBoard log at `step` (the checkpoint resumed from, or 0): later events are purged."""
        if self._tensorboard_wanted and self._tensorboard is None:
            self._tensorboard = TensorBoardLog(self.run_dir / TENSORBOARD, purge_step=step + 1 if step else None)

    def write_config(self, record: dict[str, Any], step: int = 0) -> None:
        atomic_write_bytes(self.run_dir / RUN_CONFIG, (json.dumps(record, indent=2) + "\n").encode())
        if self._tensorboard is not None:
            self._tensorboard.config(record, step)

    def metrics(self, record: dict[str, Any]) -> None:
        """Append one line to metrics.jsonl (and its numbers to TensorBoard)."""
        with open(self.run_dir / METRICS, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._tensorboard is not None:
            self._tensorboard.record(record)

    def flush(self) -> None:
        """Make the TensorBoard log as durable as the files (called with every checkpoint)."""
        if self._tensorboard is not None:
            self._tensorboard.flush()

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None

    def warning(self, step: int, message: str) -> None:
        """Record a warning in metrics.jsonl."""
        self.metrics({"kind": "warning", "step": step, "message": message})

    def echo(self, line: str) -> None:
        """A line on stdout (the references' per-step loss line)."""
        print(line, flush=True)

    def note(self, line: str) -> None:
        """A line on stderr about what the run is doing (not recorded)."""
        tqdm.write(f"note: {line}", file=sys.stderr)

    def warn(self, step: int, message: str) -> None:
        """Say a warning on the terminal and record it."""
        tqdm.write(f"warning: {message}", file=sys.stderr)
        self.warning(step, message)

    def truncate_metrics(self, after_step: int) -> None:
        """Drop metric lines logged after the checkpoint we resume from (they will be logged again)."""
        path = self.run_dir / METRICS
        if path.is_file():
            kept = [record for record in read_jsonl(path) if record.get("step", 0) <= after_step]
            atomic_write_bytes(path, "".join(json.dumps(record) + "\n" for record in kept).encode())

    def grid(self, grid: ProgressGrid, generator: Generator, name: str, when: str, step: int) -> None:
        """Draw the progress grid of `generator` and write it as samples/<name>.png (and to TensorBoard)."""
        self.save_grid(grid.picture(generator, when), name, step)

    def save_grid(self, picture: Image.Image, name: str, step: int) -> None:
        """Write samples/<name>.png atomically (and the grid at `step` to TensorBoard)."""
        if self._tensorboard is not None:
            self._tensorboard.image("samples", picture, step)
        path = self.run_dir / SAMPLES / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, picture_bytes(picture))

    def refresh_pictures(self, steps_per_epoch: int, final: bool = False) -> None:
        """Redraw losses.png and samples.gif from what has been logged and saved so far, when the redraw budget
        allows (always when `final`)."""
        if not (final or self.redraw.due()):
            return
        started = time.monotonic()
        if (self.run_dir / METRICS).is_file():
            plot_losses(self.run_dir / METRICS, self.run_dir / LOSS_PLOT)
        grids = [p for p in (self.run_dir / SAMPLES).glob("*.png") if not p.name.startswith(".")]  # not a torn write
        frames = sorted(grids, key=lambda p: _grid_step(p, steps_per_epoch))
        save_gif(spread(frames, GIF_FRAMES), self.run_dir / SAMPLES_GIF)
        self.redraw.spent(time.monotonic() - started)

    def save_checkpoint(self, contents: CheckpointContents, model_config: ModelConfig, info: DatasetInfo,
                        keep: bool) -> Path:  # fmt: skip
        self.flush()
        return save_checkpoint(self.run_dir, contents, model_config, info, keep=keep)

    def evaluate(self, generator: Generator, step: int, epoch: int, checkpoint_dir: Path) -> None:
        """A quick evaluation of `generator` (saved as `checkpoint_dir`): logged, plotted, warned about, and
        `checkpoints/best` moved when it beats the run's best."""
        if self.tracker is None:
            return
        evaluation = self.tracker(generator, step, epoch, read_best(self.run_dir))
        self.metrics(evaluation.record)
        plot_eval(self.run_dir / METRICS, self.run_dir / EVAL_PLOT)
        if evaluation.new_best is not None:
            mark_best(self.run_dir, checkpoint_dir, evaluation.new_best)
        for message in evaluation.warnings:
            self.warn(step, message)


class NullWriter:
    """What every process but rank 0 writes: nothing (DiT gives them a null logger the same way)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def start(self, resume: bool) -> bool:
        return False  # rank 0 decides, and tells every process

    def begin(self, record: dict[str, Any], step: int, restoring: bool, notes: list[str]) -> None:
        pass

    def metrics(self, record: dict[str, Any]) -> None:
        pass

    def echo(self, line: str) -> None:
        pass

    def note(self, line: str) -> None:
        pass

    def warn(self, step: int, message: str) -> None:
        pass

    def grid(self, grid: ProgressGrid, generator: Generator, name: str, when: str, step: int) -> None:
        pass

    def save_checkpoint(self, contents: CheckpointContents, model_config: ModelConfig, info: DatasetInfo,
                        keep: bool) -> Path:  # fmt: skip
        return self.run_dir / CHECKPOINTS_DIR / checkpoint_name(contents.step)  # the one rank 0 writes

    def evaluate(self, generator: Generator, step: int, epoch: int, checkpoint_dir: Path) -> None:
        pass

    def refresh_pictures(self, steps_per_epoch: int, final: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


def spread(items: Sequence[T], limit: int) -> list[T]:
    """At most `limit` (>= 2) of `items`, evenly spread, the first and the last always among them."""
    if len(items) <= limit:
        return list(items)
    return [items[round(i * (len(items) - 1) / (limit - 1))] for i in range(limit)]


def _grid_step(path: Path, steps_per_epoch: int) -> int:
    kind, _, number = path.stem.partition("_")
    return int(number) * (steps_per_epoch if kind == "epoch" else 1)


def refuse_checkpoint_folder(run_dir: Path) -> None:
    """AcganError saying which run to resume when `run_dir` is one of a run's checkpoint folders."""
    if (run_dir / META_FILE).is_file():
        raise AcganError(f"{run_dir} is a checkpoint folder, not a run: resume its run with "
                         f"acgan train --resume {run_dir.parent.parent}")  # fmt: skip


def read_run_config(run_dir: Path) -> TrainConfig:
    """The (resolved) TrainConfig saved in a run directory's config.json.

    A field missing from it (an edited file) is taken from the latest checkpoint's record of the configuration,
    never from a default: the record must say what training used. Where no checkpoint records it either, a field
    added after the run was started means what it meant then (LEGACY_DEFAULTS), and any other is AcganError.
    """
    path = run_dir / RUN_CONFIG
    if not path.is_file():
        refuse_checkpoint_folder(run_dir)
    try:
        saved = json.loads(path.read_text())["train"]
        if not isinstance(saved, dict):
            raise TypeError("'train' is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AcganError(f"{path}: cannot read the run's configuration ({exc})") from None
    missing = sorted(CONFIG_FIELDS - set(saved))
    if missing:
        recorded = checkpoint_train_config(run_dir)
        saved = {**saved, **{name: recorded[name] for name in missing if name in recorded}}
        unknown = [name for name in missing if name not in saved and name not in LEGACY_DEFAULTS]
        if unknown:
            raise AcganError(f"{path} lacks {', '.join(unknown)} and no checkpoint records what the run used: "
                             "restore the field(s) (config.json is the run's record; it must not be edited)")  # fmt: skip
    try:
        return TrainConfig.from_dict(saved)
    except (TypeError, ValueError) as exc:
        raise AcganError(f"{path}: cannot read the run's configuration ({exc})") from None


def checkpoint_train_config(run_dir: Path) -> dict[str, Any]:
    """The configuration the latest checkpoint recorded ({} without a readable checkpoint)."""
    try:
        if read_pointer(run_dir / CHECKPOINTS_DIR, LATEST) is None:
            return {}
        recorded = read_meta(resolve_checkpoint_dir(run_dir)).get("train_config", {})
    except AcganError:
        return {}
    return recorded if isinstance(recorded, dict) else {}
