"""The training loop, top to bottom: lock the run directory, build the run, then per step: control point, batch,
the step's phases, statistics, and what is due (grid, checkpoint, evaluation).

    run = build_run(...)                                  # data, objective, models, state, restore, writer
    for step in training_steps(run, control):             # the control point: stop, clock, non-finite losses
        real_images, real_labels = run.batches.next()     # memory or stream
        stats = training_step(run.state, run.plan, ...)   # the plan's phases (acgan.training.steps)
        report_statistics(run, control, window, ...)      # one host sync per metrics window
        write_due(run, control)                           # grids, checkpoints, evaluations (a null writer off rank 0)
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from acgan.checkpoint import resolve_checkpoint_dir
from acgan.config import TrainConfig, dataset_label, resolve_config
from acgan.errors import AcganError, DiskFull, TrainingInterrupted
from acgan.objectives import Stats
from acgan.progress import TrainingProgress
from acgan.training.control import ControlPoint
from acgan.training.distributed import World, barrier, broadcast_from_main, dist_initialized, join_world, leave_world
from acgan.training.ema import ema_decay_at
from acgan.training.monitor import source_collapse_warning
from acgan.training.run import Run, build_run
from acgan.training.run_lock import RunLock
from acgan.training.run_writer import RUN_CONFIG, RunWriter, read_run_config
from acgan.training.stats import StatsWindow
from acgan.training.steps import training_step

PROGRESS_KEYS = ("d_real_source", "d_fake_source", "g_source", "d_real_acc", "d_fake_acc", "d_real_class_acc")


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


def train(config: TrainConfig, run_dir: Path, resume: bool = False, show_progress: bool = True) -> TrainResult:
    """Train an AC-GAN as `config` says, writing everything into `run_dir`; resume from its latest checkpoint.

    Stops at the first bound reached (epochs, steps, max_minutes), or on SIGINT/SIGTERM after saving a
    checkpoint (TrainingInterrupted). A non-finite loss raises TrainingDiverged and writes nothing more.
    A run directory whose run stopped before its first checkpoint starts again from step 0. One process at a
    time writes a run directory (RunInUse for a second one). Under torchrun every process calls this: each
    trains on its own batches (config.batch_size per process), DDP averages the gradients, every stop is
    agreed by all processes and only rank 0 writes.
    """
    config = resolve_config(config)
    joined = not dist_initialized()
    world = join_world(config.device)
    lock = None
    try:
        lock = lock_run_dir(run_dir, resume, world)
        return run_loop(build_run(config, run_dir, resume, show_progress and world.is_main, world))
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


def run_loop(run: Run) -> TrainResult:
    """Train `run` to its bound (see `train`); the run writer is closed whatever happens."""
    config, state = run.config, run.state
    window = StatsWindow(config.metrics_every, run.world)
    control = ControlPoint(run.world, run.device, config.max_minutes, config.metrics_every, config.checkpoint_minutes)
    try:
        with control, TrainingProgress(run.total_steps, state.step, show=show_bar(run)) as progress:
            for step in training_steps(run, control):
                real_images, real_labels = run.batches.next()  # (d_steps * B/2, C, H, W) in [-1, 1], (d_steps * B/2,)
                stats = training_step(state, run.plan, real_images, real_labels, run.batch_size,
                                      ema_decay_at(config.ema_decay or 0.0, step), run.precision)  # fmt: skip
                control.note(state.step, stats)  # the step just completed
                report_statistics(run, control, window, stats, progress)
                write_due(run, control)
            finish(run, control)
    finally:
        failing = sys.exc_info()[1] is not None
        try:
            run.writer.close()
        except OSError:
            if not failing:  # already failing (a full disk): that error is the one to report
                raise
    seconds = run.wall_before + control.elapsed
    assert run.last_checkpoint is not None  # finish() wrote one, or the run resumed from one at its bound
    return TrainResult(run.run_dir, state.step, state.step / run.steps_per_epoch, run.last_checkpoint, seconds,
                       run.stopped_by, run.start_step)  # fmt: skip


def show_bar(run: Run) -> bool:
    """A progress display unless the references' per-step line is printed instead (or progress is off)."""
    return run.show_progress and run.config.log_every == 0


def training_steps(run: Run, control: ControlPoint) -> Iterator[int]:
    """The steps still to train, each after its control point: a stop requested on any process saves a checkpoint
    and ends with TrainingInterrupted; the time bound ends it; a non-finite loss on any process, TrainingDiverged."""
    config, state = run.config, run.state
    total = run.total_steps
    while total is None or state.step < total:
        if control.due(state.step):
            decision = control.agree()
            control.check_finite(str(run.last_checkpoint or "none"), decision.bad_step)
            if decision.time_up:
                run.stopped_by = "max_minutes"
                return
            run.fit_schedule(decision.seconds)  # a schedule in minutes gets its length in steps
            if decision.stop_requested:
                path = checkpoint(run, control, keep=False) if run.saved_step != state.step else run.last_checkpoint
                barrier(run.world)  # every rank leaves once rank 0 has written the checkpoint
                raise TrainingInterrupted(f"interrupted at step {state.step}; checkpoint {path} saved", run.run_dir,
                                          run.world.size)  # fmt: skip
        yield state.step
    run.stopped_by = "steps" if config.steps is not None and state.step >= config.steps else "epochs"


def report_statistics(run: Run, control: ControlPoint, window: StatsWindow, stats: Stats,
                      progress: TrainingProgress) -> None:  # fmt: skip
    """Add a step's statistics to the window; at a window's end, log the means, warn of a collapsing D and show
    them; the references' per-step line when asked for."""
    config, step = run.config, run.state.step
    window.add(stats)
    if config.log_every and step % config.log_every == 0:
        run.writer.echo(reference_log_line(step, {name: value.item() for name, value in stats.items()}))
    means = window.flush_if_due(step)
    if means is not None:
        run.writer.metrics({"step": step, "epoch": round(step / run.steps_per_epoch, 4),
                            "images_seen": step * run.global_batch,
                            "seconds": round(run.wall_before + control.elapsed, 3),
                            **{name: float(f"{mean:.6g}") for name, mean in means.items()}})  # fmt: skip
        collapse = source_collapse_warning(means.get("d_real_source", float("inf")),
                                           means.get("d_fake_source", float("inf")), step)  # fmt: skip
        if collapse and run.warned_epoch != run.epoch:
            run.warned_epoch = run.epoch
            run.writer.warn(step, collapse)
        progress.statistics = {name: means[name] for name in PROGRESS_KEYS if name in means}
    progress.update(step)


def reference_log_line(step: int, stats: dict[str, float]) -> str:
    """The references' per-step line: >step, dr[source,class], df[source,class], g[source,class] ('-' absent)."""

    def pair(prefix: str) -> str:
        return ",".join(f"{stats[k]:.3f}" if k in stats else "-" for k in (f"{prefix}source", f"{prefix}class"))

    return f">{step}, dr[{pair('d_real_')}], df[{pair('d_fake_')}], g[{pair('g_')}]"


def write_due(run: Run, control: ControlPoint) -> None:
    """The grid, checkpoint and evaluation due after this step (nothing is written after a non-finite loss)."""
    state = run.state
    due = due_after(state.step, run.steps_per_epoch, run.config, control.minutes_since_save)
    if not (due.grid or due.checkpoint or due.evaluate):
        return
    control.check_finite(str(run.last_checkpoint or "none"))
    if due.grid:
        run.writer.grid(run.grid, state.sampling_network(), f"epoch_{run.epoch:04d}",
                        f"epoch {run.epoch}, step {state.step}", state.step)  # fmt: skip
    if due.checkpoint:
        checkpoint(run, control, keep=due.keep)
    if due.evaluate:
        assert run.last_checkpoint is not None
        run.writer.evaluate(state.sampling_network(), state.step, run.epoch, run.last_checkpoint)
    if due.grid or due.evaluate:
        run.writer.refresh_pictures(run.steps_per_epoch)


def checkpoint(run: Run, control: ControlPoint, keep: bool) -> Path:
    """Save a checkpoint (every rank contributes its RNG state; rank 0 writes), shielded from a second signal."""
    resume_state = run.state.resume_state(run.wall_before + control.elapsed)
    run.saved_step = run.state.step
    control.saved()
    with control.stop.shielded():
        run.last_checkpoint = run.writer.save_checkpoint(run.checkpoint_contents(resume_state), run.model_config,
                                                         run.info, keep=keep)  # fmt: skip
    return run.last_checkpoint


def finish(run: Run, control: ControlPoint) -> None:
    """At the bound: a last grid and checkpoint unless this step's are written already; every rank waits."""
    state = run.state
    if run.saved_step != state.step:
        control.check_finite(str(run.last_checkpoint or "none"))
        run.writer.grid(run.grid, state.sampling_network(), f"step_{state.step:08d}", f"step {state.step}", state.step)
        checkpoint(run, control, keep=False)
    run.writer.refresh_pictures(run.steps_per_epoch, final=True)  # whatever the redraw budget skipped before
    barrier(run.world)


__all__ = ["TrainResult", "due_after", "new_run_dir", "read_run_config", "train"]
