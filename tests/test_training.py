"""Short training runs on a slice of real MNIST: artifacts, exact resume, divergence, interrupts, retention."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from acgan.checkpoint import resolve_checkpoint_dir
from acgan.config import TrainConfig
from acgan.errors import AcganError, DiskFull, TrainingDiverged
from acgan.files import is_temporary
from acgan.sampling import load_generator, sample
from acgan.training import TrainingInterrupted, train
from acgan.training import loop as loop_module
from tests.conftest import IDX_DATASET
from tests.helpers import make_folder

# 96 images, batch 16: 6 steps per epoch.
TINY = {"dataset": IDX_DATASET, "preset": "dcgan", "limit": 96, "batch_size": 16, "metrics_every": 2, "device": "cpu"}


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = resolve_checkpoint_dir(run_dir)
    tensors = {f"g.{k}": v for k, v in load_file(checkpoint / "generator.safetensors").items()}
    tensors.update({f"d.{k}": v for k, v in load_file(checkpoint / "discriminator.safetensors").items()})
    return tensors


def test_short_run_writes_every_artifact(idx_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = train(TrainConfig(**TINY, epochs=2), run, show_progress=False)
    assert result.step == 12 and result.stopped_by == "epochs"
    saved = json.loads((run / "config.json").read_text())
    assert saved["train"]["preset"] == "dcgan" and saved["dataset"]["num_classes"] == 10
    assert saved["model"] == {
        "preset": "dcgan",
        "z_dim": 100,
        "num_classes": 10,
        "channels": 1,
        "resolution": 28,
        "width": 32,
        "heads": ["adc"],
        "spectral_norm": False,
        "class_input": "concat",
        "mbstd": False,
    }
    assert saved["train"]["objective"] == "adc" and saved["train"]["lr_g"] == 1e-3  # resolved from the preset
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4, 6, 8, 10, 12]
    assert all(0 <= line["d_real_acc"] <= 1 and line["g_source"] > 0 for line in lines)
    grids = sorted(p.name for p in (run / "samples").iterdir())
    assert grids == ["epoch_0001.png", "epoch_0002.png"]
    grid = Image.open(run / "samples" / "epoch_0002.png")
    assert grid.width > 10 * 56 and grid.height > 10 * 56  # 10 x 10 cells of 28 px at 2x, plus labels
    gif = Image.open(run / "samples.gif")
    assert gif.n_frames == 2
    assert Image.open(run / "losses.png").size[0] > 500
    checkpoint = resolve_checkpoint_dir(run)
    assert checkpoint.name == "step_00000012"
    assert {p.name for p in checkpoint.iterdir()} == {
        "generator.safetensors", "discriminator.safetensors", "g_ema.safetensors", "train_state.pt", "meta.json"}  # fmt: skip
    state = torch.load(checkpoint / "train_state.pt", weights_only=True)
    assert state["step"] == 12 and "exp_avg" in str(state["opt_g"]["state"][0].keys())
    meta = json.loads((checkpoint / "meta.json").read_text())
    assert meta["epoch"] == 2 and meta["images_seen"] == 12 * 16


def _count_steps(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the training steps actually executed from now on."""
    real_step = loop_module.training_step
    calls = {"n": 0}

    def counted(*args: object, **kwargs: object) -> torch.Tensor:
        calls["n"] += 1
        return real_step(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop_module, "training_step", counted)
    return calls


def test_resume_reproduces_an_uninterrupted_run_exactly(
    idx_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = tmp_path / "straight"
    train(TrainConfig(**TINY, epochs=3, ema_decay=0.9), straight, show_progress=False)
    split = tmp_path / "split"
    train(TrainConfig(**TINY, epochs=1, ema_decay=0.9), split, show_progress=False)
    config = TrainConfig(**TINY, epochs=3, ema_decay=0.9)
    executed = _count_steps(monkeypatch)
    result = train(config, split, resume=True, show_progress=False)
    assert result.step == 18 and executed["n"] == 12  # continued from step 6, not restarted
    a, b = _weights(straight), _weights(split)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    ema_a = load_file(resolve_checkpoint_dir(straight) / "g_ema.safetensors")
    ema_b = load_file(resolve_checkpoint_dir(split) / "g_ema.safetensors")
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
    steps_a = [json.loads(x)["step"] for x in (straight / "metrics.jsonl").read_text().splitlines()]
    steps_b = [json.loads(x)["step"] for x in (split / "metrics.jsonl").read_text().splitlines()]
    assert steps_a == steps_b


def test_interrupt_saves_a_checkpoint_that_resumes_exactly(
    idx_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = tmp_path / "straight"
    train(TrainConfig(**TINY, epochs=2), straight, show_progress=False)

    real_step = loop_module.training_step
    calls = {"n": 0}

    def step_then_signal(*args: object, **kwargs: object) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 4:  # mid-epoch: the handler only sets a flag; the loop stops at the step boundary
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop_module, "training_step", step_then_signal)
    interrupted = tmp_path / "interrupted"
    with pytest.raises(TrainingInterrupted, match=r"interrupted at step 4; checkpoint .* saved") as caught:
        train(TrainConfig(**TINY, epochs=2), interrupted, show_progress=False)
    assert caught.value.run_dir == interrupted and "--" not in str(caught.value)  # the library names no CLI flag
    assert resolve_checkpoint_dir(interrupted).name == "step_00000004"
    monkeypatch.setattr(loop_module, "training_step", real_step)
    executed = _count_steps(monkeypatch)
    train(TrainConfig(**TINY, epochs=2), interrupted, resume=True, show_progress=False)
    assert executed["n"] == 8
    a, b = _weights(straight), _weights(interrupted)
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    idx_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_step = loop_module.training_step
    calls = {"n": 0}

    def poisoned_step(models, *args: object, **kwargs: object) -> torch.Tensor:  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 9:  # after the epoch-1 checkpoint (step 6): corrupt D's weights for real
            with torch.no_grad():
                models.discriminator.adv_head.weight.fill_(float("nan"))
        return real_step(models, *args, **kwargs)

    monkeypatch.setattr(loop_module, "training_step", poisoned_step)
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"non-finite at step 9.*step_00000006"):
        train(TrainConfig(**TINY, epochs=3), run, show_progress=False)
    checkpoint = resolve_checkpoint_dir(run)
    assert checkpoint.name == "step_00000006"
    assert all(torch.isfinite(t.float()).all() for t in _weights(run).values())
    load_generator(run)  # still loads


def test_step_and_time_bounds(idx_root: Path, tmp_path: Path) -> None:
    result = train(TrainConfig(**{**TINY, "epochs": None}, steps=4), tmp_path / "steps", show_progress=False)
    assert result.step == 4 and result.stopped_by == "steps"
    assert (tmp_path / "steps" / "samples" / "step_00000004.png").is_file()  # a final grid mid-epoch
    result = train(TrainConfig(**{**TINY, "epochs": None}, max_minutes=1e-9), tmp_path / "time", show_progress=False)
    assert result.stopped_by == "max_minutes" and result.step <= 1


@pytest.mark.slow
def test_checkpoint_retention_keeps_latest_and_every_n_epochs(idx_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(TrainConfig(**TINY, epochs=5, keep_every=2), run, show_progress=False)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["latest", "step_00000012", "step_00000024", "step_00000030"]
    assert (run / "checkpoints" / "latest").read_text() == "step_00000030"


@pytest.mark.slow
def test_crash_while_checkpointing_leaves_the_previous_one_intact(
    idx_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    train(TrainConfig(**TINY, epochs=1), run, show_progress=False)
    before = _weights(run)
    real_replace = os.replace

    def failing_replace(src: object, dst: object) -> None:
        if str(dst).endswith("step_00000012"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(DiskFull, match=r"no space left .* the last good checkpoint, .*step_00000006, is intact"):
        train(TrainConfig(**TINY, epochs=2), run, resume=True, show_progress=False)
    monkeypatch.setattr(os, "replace", real_replace)
    assert resolve_checkpoint_dir(run).name == "step_00000006"
    assert not [p.name for p in (run / "checkpoints").iterdir() if is_temporary(p.name)]  # space given back
    after = _weights(run)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_new_run_refuses_to_overwrite_an_existing_run(idx_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(TrainConfig(**{**TINY, "epochs": None}, steps=1), run, show_progress=False)
    with pytest.raises(AcganError, match="already holds a run"):
        train(TrainConfig(**{**TINY, "epochs": None}, steps=1), run, show_progress=False)


def test_defaults_come_from_the_preset_when_resolved() -> None:
    from acgan.config import resolve_config
    from acgan.models.presets import PRESETS

    for name, preset in PRESETS.items():
        resolved = resolve_config(TrainConfig(preset=name))
        assert (resolved.ema_decay, resolved.lr_g, resolved.precision, resolved.objective) == (
            preset.ema_decay, preset.lr, preset.precision, preset.objective)  # fmt: skip
    assert resolve_config(TrainConfig(preset="brownlee", ema_decay=0.99)).ema_decay == 0.99
    # Changing the preset of an unresolved config takes the new preset's defaults (it used to keep the old ones).
    switched = resolve_config(TrainConfig(preset="dcgan").replace(preset="brownlee"))
    assert (switched.lr_g, switched.ema_decay, switched.precision) == (2e-4, 0.0, "fp32")
    assert resolve_config(switched) == switched  # idempotent


def test_config_validation_and_unknown_keys() -> None:
    with pytest.raises(AcganError, match="batch_size must be an even"):
        TrainConfig(batch_size=7)
    with pytest.raises(AcganError, match="unknown preset"):
        TrainConfig(preset="stylegan9")
    with pytest.raises(AcganError, match="at least one of epochs"):
        TrainConfig(epochs=None)
    with pytest.raises(AcganError, match=r"unknown configuration key.*lr_gen"):
        TrainConfig.from_dict({**TrainConfig().to_dict(), "lr_gen": 1.0})
    assert TrainConfig.from_dict(TrainConfig(seed=5).to_dict()) == TrainConfig(seed=5)
    with pytest.raises(AcganError, match="precision must be one of"):
        TrainConfig(precision="fp8")


def test_bf16_autocast_training_keeps_fp32_weights_and_learns(idx_root: Path, tmp_path: Path) -> None:
    from acgan.config import resolve_config

    assert resolve_config(TrainConfig(preset="brownlee")).precision == "fp32"
    assert resolve_config(TrainConfig(preset="dcgan")).precision == "auto"
    run = tmp_path / "run"
    result = train(TrainConfig(**TINY, steps=8, precision="bf16"), run, show_progress=False)
    assert result.step == 8
    weights = _weights(run)
    floats = [t for t in weights.values() if t.is_floating_point()]  # BatchNorm's step counters are int64
    assert floats and all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in floats)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(line["d_real_source"] > 0 for line in lines)
    images = load_generator(run).sample([3, 4], seed=0)
    assert images.dtype == torch.float32 and images.abs().max() <= 1


@pytest.mark.slow
def test_resume_survives_a_metrics_line_torn_by_a_crash(idx_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(TrainConfig(**TINY, epochs=1), run, show_progress=False)
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 7, "d_real_sou')  # the process died mid-write
    result = train(TrainConfig(**TINY, epochs=2), run, resume=True, show_progress=False)
    assert result.step == 12
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8, 10, 12]


def test_ema_decay_warms_up_to_the_configured_value() -> None:
    from acgan.training.ema import ema_decay_at

    assert ema_decay_at(0.999, 0) == pytest.approx(1 / 81)  # the first update mostly copies the generator
    assert ema_decay_at(0.999, 7_919) == pytest.approx(0.99)  # averages about the last 100 of 8,000 steps
    values = [ema_decay_at(0.999, step) for step in range(0, 100_000, 250)]
    assert values == sorted(values) and max(values) == 0.999
    assert ema_decay_at(0.0, 5_000) == 0.0


@pytest.mark.skipif(not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"), reason="glibc only")
def test_training_processes_keep_freed_memory_for_reuse() -> None:
    """After tune_for(cpu) a freed 64 MiB block stays with the process (no unmap, no page faults when the next
    step allocates it again); without it glibc returns the block to the OS at once. Fresh processes each."""
    script = (
        "import sys, torch\n"
        "from acgan.device import tune_for\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20\n"
        "if sys.argv[1] == 'tuned': tune_for(torch.device('cpu'))\n"
        "block = torch.ones(16 * 2**20); touched = rss(); del block; print(touched - rss())\n"
    )
    returned = {mode: float(subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True,
                                           check=True).stdout) for mode in ("tuned", "default")}  # fmt: skip
    assert returned["tuned"] < 8  # MiB given back to the OS when the block was freed
    assert returned["default"] > 56


def test_training_leaves_no_thread_flushing_denormals(tmp_path: Path) -> None:
    """Training sets no float mode: flush-to-zero set from Python reaches only the calling thread, while the
    OpenMP workers keep the mode of the moment they were created, so a run's rounding would depend on what the
    process did before and leak into later runs (acgan once flushed denormals in `--fast-arithmetic` runs).
    A fresh process trains the default preset (fast arithmetic), then checks that a denormal survives a
    product computed by every thread."""
    folder = make_folder(tmp_path / "shapes", per_class=8, size=16)
    script = (
        "import sys, torch\nfrom pathlib import Path\n"
        "from acgan.config import TrainConfig\n"
        "from acgan.training import train\n"
        "torch.set_num_threads(2)\n"
        "train(TrainConfig(dataset=sys.argv[1], preset='dcgan', steps=2, batch_size=8, width=4, device='cpu',\n"
        "                  precision='fp32'), Path(sys.argv[2]), show_progress=False)\n"
        "kept = (torch.full((1 << 20,), 1e-39) * 1.0).view(torch.int32) != 0  # split between the threads\n"
        "print(kept[: 1 << 19].all().item(), kept[1 << 19 :].all().item())\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(folder), str(tmp_path / "run")], capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]  # the main thread's half and the worker's half


@pytest.mark.slow
def test_compiled_training_trains_and_saves_plain_networks(idx_root: Path, tmp_path: Path) -> None:
    """--compile: G and D are compiled for their updates; the checkpoint holds the plain networks' weights (no
    `_orig_mod.` names) and samples like any other."""
    result = train(TrainConfig(**TINY, steps=3, epochs=None, compile=True), tmp_path / "run", show_progress=False)
    assert result.step == 3
    weights = _weights(tmp_path / "run")
    assert not any("_orig_mod" in name for name in weights)
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())
    generator = load_generator(tmp_path / "run")
    images = sample(generator, torch.arange(4) % 10, seed=0)
    assert images.shape[0] == 4 and torch.isfinite(images).all()


def test_compile_without_a_cpu_compiler_is_one_clear_error(
    idx_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CXX", "no-such-compiler-here")
    with pytest.raises(AcganError, match="needs a C\\+\\+ compiler \\(no-such-compiler-here not found"):
        train(TrainConfig(**TINY, steps=2, epochs=None, compile=True), tmp_path / "run", show_progress=False)
