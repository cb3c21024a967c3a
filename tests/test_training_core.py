"""The redesigned training core: same weights as before for the seeds, objectives and options from Python and
the CLI, checkpoint cadence, runs that stopped before their first checkpoint, and configuration errors."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from acgan.augment import cutout, diff_augment, parse_policy, translation
from acgan.config import TrainConfig, resolve_config
from acgan.errors import AcganError
from acgan.models import ModelConfig, build_discriminator, build_generator
from acgan.objectives import OBJECTIVES, Objective
from acgan.sampling import load_generator
from acgan.training import train
from acgan.training.loop import due_after
from acgan.training.state import TrainState
from acgan.training.steps import StepPlan, training_step
from tests.conftest import IDX_DATASET, assert_same_weights, use_real_dataset

TINY = {"limit": 96, "batch_size": 16, "metrics_every": 2, "device": "cpu"}


# --- The seeds' training, pinned: the pre-redesign step (v0.1, commit 3266594) reproduced verbatim in math. ---


def _reference_step(g: torch.nn.Module, d: torch.nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                    images: torch.Tensor, labels: torch.Tensor, batch_size: int, rng: torch.Generator) -> None:  # fmt: skip
    """The seeds' scheme as acgan computed it before the redesign: D real, D fake, G; BCE + CE from logits."""

    def d_update(x: torch.Tensor, y: torch.Tensor, is_real: bool) -> None:
        opt_d.zero_grad(set_to_none=True)
        adv, cls = d(x)[:2]
        target = torch.ones_like(adv) if is_real else torch.zeros_like(adv)
        (F.binary_cross_entropy_with_logits(adv.float(), target) + F.cross_entropy(cls.float(), y)).backward()
        opt_d.step()

    half = batch_size // 2
    index = torch.randint(images.shape[0], (half,), generator=rng)
    d_update(images[index], labels[index], True)
    z = torch.randn(half, 100, generator=rng)
    fake_labels = torch.randint(10, (half,), generator=rng)
    with torch.no_grad():
        fake = g(z, fake_labels)
    d_update(fake, fake_labels, False)
    z = torch.randn(batch_size, 100, generator=rng)
    g_labels = torch.randint(10, (batch_size,), generator=rng)
    d.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    adv, cls = d(g(z, g_labels))[:2]
    (
        F.binary_cross_entropy_with_logits(adv.float(), torch.ones_like(adv)) + F.cross_entropy(cls.float(), g_labels)
    ).backward()
    opt_g.step()
    d.requires_grad_(True)


def _fresh(preset: str) -> tuple[torch.nn.Module, torch.nn.Module, torch.optim.Optimizer, torch.optim.Optimizer]:
    config = ModelConfig(preset)
    g, d = build_generator(config, seed=3), build_discriminator(config, seed=3)
    return (g, d, torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999)),
            torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999)))  # fmt: skip


@pytest.mark.parametrize("preset", ["brownlee", "lindernoren"])
def test_seed_presets_train_to_the_same_weights_as_before_the_redesign(preset: str) -> None:
    """A seeded short run (dropout included) gives bit-identical weights through the new core."""
    images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(9)) * 2 - 1
    labels = torch.arange(64) % 10
    g_ref, d_ref, opt_g_ref, opt_d_ref = _fresh(preset)
    torch.manual_seed(0)
    rng = torch.Generator().manual_seed(0)
    for _ in range(3):
        _reference_step(g_ref, d_ref, opt_g_ref, opt_d_ref, images, labels, 16, rng)

    g, d, opt_g, opt_d = _fresh(preset)
    state = TrainState(g, d, opt_g, opt_d, torch.Generator().manual_seed(0))  # type: ignore[arg-type]
    torch.manual_seed(0)
    plan = StepPlan(Objective())
    for _ in range(3):
        index = torch.randint(64, (8,), generator=state.rng)
        training_step(state, plan, images[index], labels[index], 16)
    for new, old in ((g, g_ref), (d, d_ref)):
        for (name, a), b in zip(new.state_dict().items(), old.state_dict().values(), strict=True):
            assert torch.equal(a, b), name
    assert state.step == 3


# --- Objectives and options end to end. ---


@pytest.mark.parametrize("dataset", ["mnist", pytest.param("fashion-mnist", marks=pytest.mark.slow)])
@pytest.mark.parametrize("objective", [name for name in OBJECTIVES if "+" not in name])  # the rest: test_methods
def test_every_objective_trains_from_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dataset: str, objective: str
) -> None:
    use_real_dataset(dataset, monkeypatch)
    run = tmp_path / "run"
    result = train(TrainConfig(dataset=dataset, objective=objective, steps=3, epochs=None, **TINY), run,
                   show_progress=False)  # fmt: skip
    assert result.step == 3
    trained = load_generator(run)
    assert trained.training_facts["objective"] == objective
    assert trained.generator.config.heads == OBJECTIVES[objective].heads or objective == "acgan"
    assert trained.sample([0, 1], seed=0).shape == (2, 1, 28, 28)
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert "d_real_source" in line and "g_source" in line


@pytest.mark.slow
def test_resume_is_exact_with_spectral_norm_augmentation_and_a_twin_head(idx_root: Path, tmp_path: Path) -> None:
    """Spectral norm's power-iteration vectors, DiffAugment's random draws and the extra head all resume exactly."""
    options = {"dataset": IDX_DATASET, "objective": "tac", "spectral_norm": True, "diffaugment": "translation,cutout",
               "d_steps": 2, **TINY}  # fmt: skip
    train(TrainConfig(epochs=2, **options), tmp_path / "straight", show_progress=False)
    train(TrainConfig(epochs=1, **options), tmp_path / "split", show_progress=False)
    train(TrainConfig(epochs=2, **options), tmp_path / "split", resume=True, show_progress=False)
    assert_same_weights(tmp_path / "straight", tmp_path / "split")


def test_options_change_what_is_trained(idx_root: Path, tmp_path: Path) -> None:
    config = TrainConfig(dataset=IDX_DATASET, objective="hinge", spectral_norm=True, diffaugment="translation,cutout",
                         d_updates="joint", d_steps=2, width=16, class_weight=0.5, steps=2, epochs=None, **TINY)  # fmt: skip
    train(config, tmp_path / "run", show_progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["spectral_norm"] is True and saved["model"]["width"] == 16
    assert saved["train"]["d_updates"] == "joint" and saved["train"]["d_class_loss_on_fake"] is False
    weights = load_generator(tmp_path / "run")
    assert weights.training_facts["diffaugment"] == "translation,cutout" and weights.training_facts["d_steps"] == 2
    d = build_discriminator(ModelConfig("dcgan", width=16, spectral_norm=True))
    assert any("parametrizations" in name for name, _ in d.named_parameters())


@pytest.mark.slow
def test_every_objective_trains_from_the_cli(idx_root: Path, tmp_path: Path) -> None:
    from acgan.cli import main

    for objective in OBJECTIVES:
        run = tmp_path / objective
        argv = ["train", "--dataset", IDX_DATASET, "--objective", objective, "--limit", "96", "--batch-size", "16",
                "--steps", "2", "--device", "cpu", "--no-progress", "--run-dir", str(run)]  # fmt: skip
        assert main(argv) == 0, objective
        assert json.loads((run / "config.json").read_text())["train"]["objective"] == objective


def test_info_and_summary_name_the_objective(
    idx_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from acgan.cli import main

    run = tmp_path / "run"
    argv = ["train", "--dataset", IDX_DATASET, "--objective", "tac", "--spectral-norm", "--limit", "96",
            "--batch-size", "16", "--steps", "2", "--device", "cpu", "--no-progress", "--run-dir", str(run)]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["info", "--checkpoint", str(run)]) == 0
    out = capsys.readouterr().out
    assert "objective:  tac" in out and "D heads class, twin" in out and "spectral norm on" in out
    assert main(["summary", "--objective", "adc"]) == 0
    assert "objective: adc" in capsys.readouterr().out


# --- DiffAugment. ---


def test_translation_moves_content_and_fills_with_zero() -> None:
    image = torch.zeros(1, 1, 8, 8)
    image[0, 0, 3, 4] = 1.0
    moved = translation(image, torch.Generator().manual_seed(0))
    assert moved.sum() in (0.0, 1.0) and moved.shape == image.shape  # one pixel, maybe shifted out
    batch = torch.ones(64, 1, 16, 16)
    shifted = translation(batch, torch.Generator().manual_seed(1))
    zero_rows = (shifted[:, 0].sum(dim=2) == 0).sum(dim=1)  # uncovered rows per image, at most 16 / 8 = 2
    assert int(zero_rows.max()) <= 2 and int(zero_rows.max()) >= 1


def test_cutout_zeroes_a_half_side_square_and_is_seeded() -> None:
    batch = torch.ones(32, 3, 16, 16)
    out = cutout(batch, torch.Generator().manual_seed(0))
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert int(zeros.max()) == 64 and int(zeros.min()) >= 16  # an 8x8 square, clipped at the borders
    assert torch.equal((out == 0).all(dim=1), (out[:, :1] == 0).squeeze(1))  # same square in every channel
    again = cutout(batch, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_diff_augment_is_differentiable_and_policy_parsing() -> None:
    x = (torch.rand(4, 3, 8, 8) * 2 - 1).requires_grad_(True)
    diff_augment(x, parse_policy("color,translation,cutout"), torch.Generator().manual_seed(0)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert parse_policy("none") == () and parse_policy("") == ()
    with pytest.raises(ValueError, match="unknown DiffAugment policy"):
        parse_policy("translation,zoom")


def test_color_augmentation_on_grey_data_is_refused_before_training(idx_root: Path, tmp_path: Path) -> None:
    with pytest.raises(AcganError, match="'color' needs colour images"):
        train(TrainConfig(dataset=IDX_DATASET, diffaugment="color", steps=1, epochs=None, **TINY), tmp_path / "r",
              show_progress=False)  # fmt: skip
    assert not (tmp_path / "r").exists()


# --- Configuration: nonsense is refused at configuration time. ---


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"objective": "gan"}, "unknown objective"),
        ({"objective": "tac", "d_class_loss_on_fake": True}, "fixes where D's class loss applies"),
        ({"objective": "adc", "d_class_loss_on_fake": False}, "fixes where D's class loss applies"),
        ({"objective": "hinge", "d2d_margin": 0.9}, "apply to objective 'reacgan' only"),
        ({"class_weight": 0.0}, r"class_weight must be in \(0, 1000\], got 0.0"),
        ({"preset": "brownlee", "width": 64}, "width applies to 'dcgan', 'dcgan-cbn', 'resnet' only"),
        ({"preset": "brownlee", "class_input": "cbn"}, "class_input applies to 'dcgan', 'dcgan-cbn', 'resnet' only"),
        ({"preset": "keras-mnist", "mbstd": True}, "mbstd applies to 'dcgan', 'dcgan-cbn', 'resnet' only"),
        ({"class_input": "film"}, "class_input must be one of concat, cbn"),
        ({"diffaugment": "zoom"}, "unknown DiffAugment policy"),
        ({"d_steps": 0}, "d_steps must be >= 1"),
        ({"lr_g": float("inf")}, r"lr_g must be in \[1e-08, 1\], got inf"),
        ({"objective": "reacgan", "d2d_temperature": 0.0}, r"d2d_temperature must be in \[0.001, 1000\], got 0.0"),
    ],
)
def test_nonsense_combinations_fail_at_configuration_time(changes: dict[str, object], message: str) -> None:
    with pytest.raises(AcganError, match=message):
        resolve_config(TrainConfig(**changes))  # type: ignore[arg-type]


def test_an_unknown_update_scheme_is_refused_when_the_step_is_planned() -> None:
    with pytest.raises(AcganError, match="d_updates must be one of alternating, joint, got 'alternate'"):
        StepPlan(Objective(), d_updates="alternate")


def test_objective_defaults_resolve() -> None:
    assert resolve_config(TrainConfig(objective="hinge")).d_class_loss_on_fake is False
    assert resolve_config(TrainConfig(objective="acgan")).d_class_loss_on_fake is True
    reacgan = resolve_config(TrainConfig(objective="reacgan"))
    assert (reacgan.d2d_margin, reacgan.d2d_temperature) == (0.98, 0.5)


def test_configs_saved_before_objectives_existed_resume_with_the_old_training() -> None:
    old = {k: v for k, v in resolve_config(TrainConfig()).to_dict().items()
           if k not in ("objective", "spectral_norm", "diffaugment", "d_updates", "width", "class_weight",
                        "d2d_margin", "d2d_temperature", "d_steps", "checkpoint_every", "checkpoint_minutes")}  # fmt: skip
    config = TrainConfig.from_dict(old)
    assert (config.objective, config.spectral_norm, config.diffaugment, config.width) == ("acgan", False, "", 0)
    assert ModelConfig.from_dict({"preset": "dcgan", "z_dim": 100, "num_classes": 10, "channels": 1,
                                  "resolution": 28}) == ModelConfig("dcgan")  # fmt: skip


# --- Checkpoint cadence and runs that stop before their first checkpoint. ---


def test_due_after_keeps_every_n_epochs_independently_of_sampling() -> None:
    config = TrainConfig(sample_every=2, keep_every=3, checkpoint_every=5)
    kept = [s for s in range(1, 61) if due_after(s, 10, config, 0.0).keep]
    assert kept == [30, 60]  # epochs 3 and 6, though grids come every 2 epochs
    assert all(due_after(s, 10, config, 0.0).checkpoint for s in kept)
    grids = [s for s in range(1, 61) if due_after(s, 10, config, 0.0).grid]
    assert grids == [20, 40, 60]
    cadence = [s for s in range(1, 21) if due_after(s, 10, config, 0.0).checkpoint]
    assert cadence == [5, 10, 15, 20]
    timed = TrainConfig(checkpoint_minutes=2.0)
    assert due_after(3, 10, timed, 2.5).checkpoint and not due_after(3, 10, timed, 1.0).checkpoint


@pytest.mark.slow
def test_keep_every_keeps_what_it_says(idx_root: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"  # 6 steps per epoch; grids every 2 epochs, kept checkpoints every 3
    train(TrainConfig(dataset=IDX_DATASET, epochs=6, sample_every=2, keep_every=3, **TINY), run, show_progress=False)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["latest", "step_00000018", "step_00000036"]


@pytest.mark.slow
def test_checkpoint_every_steps_saves_mid_epoch(
    idx_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from acgan.cli import main
    from acgan.training import loop as loop_module

    real_step, calls = loop_module.training_step, {"n": 0}

    def crash_at_step_5(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("killed")
        return real_step(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop_module, "training_step", crash_at_step_5)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError):
        train(
            TrainConfig(dataset=IDX_DATASET, epochs=None, steps=6, checkpoint_every=2, **TINY), run, show_progress=False
        )
    assert (run / "checkpoints" / "latest").read_text() == "step_00000004"  # mid-epoch, from the cadence
    monkeypatch.setattr(loop_module, "training_step", real_step)  # only this: the data and cache settings stay
    assert main(["train", "--resume", str(run), "--steps", "9", "--checkpoint-every", "3", "--no-progress"]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["checkpoint_every"] == 3
    assert main(["train", "--resume", str(run), "--checkpoint-every", "soon"]) == 2


@pytest.mark.slow
def test_a_run_that_crashed_before_its_first_checkpoint_can_resume_or_restart(
    idx_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from acgan.training import loop as loop_module

    real_step = loop_module.training_step

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")

    run = tmp_path / "run"
    monkeypatch.setattr(loop_module, "training_step", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        train(TrainConfig(dataset=IDX_DATASET, epochs=1, **TINY), run, show_progress=False)
    assert (run / "config.json").is_file() and not (run / "checkpoints").exists()
    monkeypatch.setattr(loop_module, "training_step", real_step)
    result = train(TrainConfig(dataset=IDX_DATASET, epochs=1, **TINY), run, resume=True, show_progress=False)
    assert result.step == 6  # resumed from step 0
    crashed_again = tmp_path / "again"
    monkeypatch.setattr(loop_module, "training_step", crash)
    with pytest.raises(RuntimeError):
        train(TrainConfig(dataset=IDX_DATASET, epochs=1, **TINY), crashed_again, show_progress=False)
    monkeypatch.setattr(loop_module, "training_step", real_step)
    result = train(
        TrainConfig(dataset=IDX_DATASET, epochs=1, **TINY), crashed_again, show_progress=False
    )  # started again
    assert result.step == 6
    steps = [json.loads(line)["step"] for line in (crashed_again / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]


def test_reference_presets_keep_the_loop_arithmetic_with_foreach_adam_and_the_ema_too() -> None:
    """build_train_state gives reference presets Adam's foreach form: bit-identical to the per-tensor loop."""
    config = resolve_config(TrainConfig(preset="brownlee", device="cpu"))
    assert config.fast_arithmetic is False and resolve_config(TrainConfig()).fast_arithmetic is True
    from acgan.training.ema import update_ema
    from acgan.training.state import build_train_state

    state = build_train_state(config, ModelConfig("brownlee"), torch.device("cpu"))
    loop = torch.optim.Adam(copy_module(state.generator).parameters(), lr=2e-4, betas=(0.5, 0.999), foreach=False)
    looped = loop.param_groups[0]["params"]
    for step in range(3):
        grads = [torch.randn_like(p, generator=torch.Generator().manual_seed(step)) for p in looped]
        for param, other, grad in zip(state.generator.parameters(), looped, grads, strict=True):
            param.grad, other.grad = grad.clone(), grad.clone()
        state.opt_g.step()
        loop.step()
    assert all(torch.equal(a, b) for a, b in zip(state.generator.parameters(), looped, strict=True))
    ema, model = copy_module(state.generator), copy_module(state.generator)
    for param in model.parameters():
        param.data.add_(1.0)
    expected = [e.detach().clone().lerp_(m, 0.25) for e, m in zip(ema.parameters(), model.parameters(), strict=True)]
    update_ema(ema, model, 0.75)
    assert all(torch.equal(a, b) for a, b in zip(ema.parameters(), expected, strict=True))


def copy_module(module: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(module)


def test_a_joint_update_puts_both_halves_through_d_once_with_the_same_losses() -> None:
    """D without BatchNorm: one forward pass over real and generated halves, losses still half by half."""
    from acgan.objectives import DiscriminativeClassifierObjective
    from acgan.training.steps import discriminator_phase

    config = ModelConfig("dcgan", heads=("adc",))
    plan = StepPlan(DiscriminativeClassifierObjective(), "joint")
    real, fake = torch.rand(4, 1, 28, 28) * 2 - 1, torch.rand(4, 1, 28, 28) * 2 - 1
    labels = torch.tensor([0, 1, 2, 3])
    results = []
    for together in (True, False):
        g, d = build_generator(config, seed=1), build_discriminator(config, seed=1)
        assert d.batch_independent
        d.batch_independent = together
        state = TrainState(g, d, torch.optim.SGD(g.parameters(), lr=0.1), torch.optim.SGD(d.parameters(), lr=0.1),
                           torch.Generator().manual_seed(0))  # fmt: skip
        stats = discriminator_phase(state, plan, [(real, labels, True), (fake, labels, False)])
        results.append((stats, [p.detach().clone() for p in d.parameters()]))
    (stats_a, weights_a), (stats_b, weights_b) = results
    assert stats_a.keys() == stats_b.keys()
    for name in stats_a:
        torch.testing.assert_close(stats_a[name], stats_b[name], rtol=1e-5, atol=1e-6)
    for a, b in zip(weights_a, weights_b, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not build_discriminator(ModelConfig("brownlee")).batch_independent  # BatchNorm in D: two passes


def test_the_control_point_comes_every_window_and_at_once_for_a_signal_or_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from acgan.training.control import ControlPoint
    from acgan.training.distributed import SINGLE_PROCESS, World

    clock = [1000.0]
    monkeypatch.setattr("acgan.training.control.time.monotonic", lambda: clock[0])
    control = ControlPoint(SINGLE_PROCESS, torch.device("cpu"), 1.0, every=10, checkpoint_minutes=0.5)
    assert control.due(10) and control.due(0) and not control.due(3)
    control.stop.requested = True
    assert control.due(3)  # a signal is acted on at the next step, not at the window's end
    control.stop.requested = False
    clock[0] += 31  # checkpoint_minutes passed
    assert control.due(3)
    control.saved()
    assert not control.due(3)
    clock[0] += 30  # the one-minute bound
    assert control.due(3) and control.agree().time_up
    ranks = ControlPoint(World(0, 2, 0), torch.device("cpu"), 1.0, every=10)
    ranks.stop.requested = True
    assert not ranks.due(3) and ranks.due(10)  # processes meet at the same control points only


def test_each_bf16_update_sees_the_weights_the_previous_update_left() -> None:
    """Autocast keeps its bf16 copies of weights until its context ends: with one context around the whole step,
    D's update on generated images ran on D's weights from before its update on real images. Each phase has its
    own context now, so every forward pass of D computes with D's current weights."""
    g, d, opt_g, opt_d = _fresh("dcgan")
    state = TrainState(g, d, opt_g, opt_d, torch.Generator().manual_seed(0))  # type: ignore[arg-type]
    head = d.adv_head
    seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
    weights: list[tuple[torch.Tensor, torch.Tensor]] = []
    head.register_forward_pre_hook(lambda module, args: weights.append((module.weight.detach().clone(),
                                                                         module.bias.detach().clone())))  # fmt: skip
    head.register_forward_hook(lambda module, args, out: seen.append((*weights[-1], args[0].detach(), out.detach())))
    images = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    training_step(state, StepPlan(Objective()), images, torch.arange(8) % 10, 16, precision="bf16")
    assert len(seen) == 3  # D on real, D on generated, D judging G's images
    assert not torch.equal(seen[0][0], seen[1][0])  # D's first update moved the head
    for weight, bias, features, output in seen:  # each output is that of the head's weights at that moment
        expected = torch.nn.functional.linear(features.bfloat16(), weight.bfloat16(), bias.bfloat16())
        assert torch.equal(output, expected)


def test_a_statistic_is_averaged_over_the_steps_that_recorded_it() -> None:
    """A regulariser's penalty recorded every other step reads as its own mean, not half of it."""
    from acgan.training.distributed import SINGLE_PROCESS
    from acgan.training.stats import StatsWindow

    window = StatsWindow(4, SINGLE_PROCESS)
    for step in range(1, 5):
        stats = {"d_loss": torch.tensor(float(step))}
        if step % 2 == 0:
            stats["r1"] = torch.tensor(10.0 * step)
        window.add(stats)
        means = window.flush_if_due(step)
    assert means == {"d_loss": pytest.approx(2.5), "r1": pytest.approx(30.0)}
    assert window.flush_if_due(8) is None  # nothing recorded since


def test_the_gif_keeps_at_most_its_frame_limit_first_and_last_included() -> None:
    from acgan.training.run_writer import spread

    assert spread(list(range(5)), 40) == [0, 1, 2, 3, 4]
    frames = spread(list(range(300)), 40)
    assert len(frames) == 40 and frames[0] == 0 and frames[-1] == 299 and frames == sorted(set(frames))
    gaps = {b - a for a, b in itertools.pairwise(frames)}
    assert max(gaps) - min(gaps) <= 1  # evenly spread


def test_redrawing_pictures_keeps_to_its_share_of_the_wall_time() -> None:
    from acgan.training.run_writer import RedrawBudget

    now = [100.0]
    budget = RedrawBudget(share=0.1, clock=lambda: now[0])
    assert budget.due()  # the first redraw is never held back
    budget.spent(2.0)  # a 2 s redraw: the next one 18 s later, so redrawing is 10% of the time
    now[0] += 17.9
    assert not budget.due()
    now[0] += 0.2
    assert budget.due()
