"""The conditional-GAN methods beyond the references: gradient penalties, their lazy form, and runs that use them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from acgan.config import TrainConfig
from acgan.training import train
from acgan.training.regularisers import Regulariser, gradient_penalty, lazy_adam, lazy_ratio, regularisers_of
from tests.conftest import assert_same_weights
from tests.helpers import make_folder

TINY = {"batch_size": 8, "width": 4, "device": "cpu", "tensorboard": False, "metrics_every": 1, "sample_every": 1}


@pytest.fixture
def colour_folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "data", per_class=8, size=16)


def test_the_penalty_is_the_mean_squared_norm_of_ds_input_gradient() -> None:
    """For D(x) = <w, x> + <x, x> / 2 the gradient is w + x: the penalty is mean_i ||w + x_i||^2, by hand."""
    images = torch.randn(5, 2, 3, 3).requires_grad_(True)
    w = torch.randn(2, 3, 3)
    logits = (images * w).sum(dim=(1, 2, 3)) + images.square().sum(dim=(1, 2, 3)) / 2  # (5,)
    expected = (w + images.detach()).square().sum(dim=(1, 2, 3)).mean()
    penalty = gradient_penalty(logits, images)
    torch.testing.assert_close(penalty, expected)
    (grad,) = torch.autograd.grad(penalty, images)  # differentiable: d/dx ||w + x||^2 = 2 (w + x) / B
    torch.testing.assert_close(grad, 2 * (w + images.detach()) / 5)


def test_lazy_regularisation_scales_adam_as_stylegan2() -> None:
    assert lazy_ratio(()) == 1.0 and lazy_ratio((Regulariser("r1", 1.0, 1),)) == 1.0
    ratio = lazy_ratio((Regulariser("r1", 1.0, 16), Regulariser("r2", 1.0, 16)))
    assert ratio == pytest.approx(16 / 17)
    lr, betas = lazy_adam(2e-3, (0.0, 0.99), ratio)
    assert lr == pytest.approx(2e-3 * 16 / 17) and betas == (0.0, pytest.approx(0.99 ** (16 / 17)))
    assert lazy_adam(1e-3, (0.5, 0.999), 1.0) == (1e-3, (0.5, 0.999))  # exactly: no penalty, no change
    config = TrainConfig(r1=0.5, r2=0.0, reg_every=4)
    assert regularisers_of(config) == (Regulariser("r1", 0.5, 4),)


def test_penalties_run_on_their_steps_and_are_logged_as_their_own_means(colour_folder: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(TrainConfig(dataset=str(colour_folder), steps=6, epochs=None, r1=1.0, r2=0.5, reg_every=3, **TINY), run,
          show_progress=False)  # fmt: skip
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"kind"' not in line]
    with_penalty = [line["step"] for line in lines if "d_r1" in line]
    assert with_penalty == [1, 4]  # steps 0 and 3 ran the penalties (a line is logged after its step)
    assert all(line["d_r1"] > 0 and line["d_r2"] > 0 for line in lines if "d_r1" in line)
    facts = json.loads((run / "config.json").read_text())["train"]
    assert (facts["r1"], facts["r2"], facts["reg_every"]) == (1.0, 0.5, 3)


@pytest.mark.slow
def test_a_run_with_penalties_resumes_exactly(colour_folder: Path, tmp_path: Path) -> None:
    options = {
        "dataset": str(colour_folder),
        "r1": 1.0,
        "r2": 1.0,
        "reg_every": 2,
        "epochs": None,
        "schedule_steps": 8,
        **TINY,
    }  # fmt: skip  (one schedule for both runs: the colour default decays)
    train(TrainConfig(steps=8, **options), tmp_path / "straight", show_progress=False)
    train(TrainConfig(steps=3, **options), tmp_path / "split", show_progress=False)
    train(TrainConfig(steps=8, **options), tmp_path / "split", resume=True, show_progress=False)
    assert_same_weights(tmp_path / "straight", tmp_path / "split")


# --- ADA ---


def test_ada_moves_p_by_the_sign_of_ds_confidence_on_real_images() -> None:
    from acgan.augment import AdaptiveAugment

    ada = AdaptiveAugment(batch_size=64, target=0.6, kimg=100, interval=4)
    step = 64 * 4 / 100_000  # images per adjustment over images for p to go from 0 to 1
    for _ in range(3):
        ada.observe({"d_real_sign": torch.tensor(1.0)})
    assert float(ada.p) == 0.0  # not yet: every 4th step
    ada.observe({"d_real_sign": torch.tensor(1.0)})
    assert float(ada.p) == pytest.approx(step)  # r_t = 1 > 0.6: D overfits, more augmentation
    for _ in range(4):
        ada.observe({"d_real_sign": torch.tensor(0.2)})  # r_t = 0.2 < 0.6: less
    assert float(ada.p) == pytest.approx(0.0)
    for _ in range(4):
        ada.observe({"d_real_sign": torch.tensor(-1.0)})
    assert float(ada.p) == 0.0  # clamped at 0
    restored = AdaptiveAugment(batch_size=64)
    restored.load_state_dict(ada.state_dict())
    assert float(restored.p) == float(ada.p) and restored.seen == ada.seen


def test_ada_pipeline_is_the_identity_at_p0_and_changes_every_image_at_p1() -> None:
    from acgan.augment import ada_pipeline

    images = (torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1).requires_grad_(True)
    same = ada_pipeline(images, torch.tensor(0.0), torch.Generator().manual_seed(1))
    assert torch.equal(same, images)
    changed = ada_pipeline(images, torch.tensor(1.0), torch.Generator().manual_seed(1))
    assert all(not torch.equal(a, b) for a, b in zip(changed, images, strict=True))
    changed.sum().backward()  # differentiable: G learns through it
    assert images.grad is not None and images.grad.abs().sum() > 0
    again = ada_pipeline(images, torch.tensor(1.0), torch.Generator().manual_seed(1))
    assert torch.equal(changed, again)  # the loop's generator decides every draw


def test_ada_translation_mirrors_instead_of_leaving_an_empty_border() -> None:
    from acgan.augment import _translate_reflect

    ramp = torch.arange(8.0).repeat(8, 1)[None, None]  # (1, 1, 8, 8): column index
    shifted = _translate_reflect(ramp, torch.tensor([[0.0, 1.0]]))  # right by 1/8 of 8 = 1 column
    assert shifted[0, 0, 0].tolist() == [1, 0, 1, 2, 3, 4, 5, 6]  # column 0 mirrored from column 1


def test_ada_trains_logs_p_and_resumes_exactly(colour_folder: Path, tmp_path: Path) -> None:
    options = {"dataset": str(colour_folder), "ada": True, "ada_target": 0.01, "ada_kimg": 0.05, "epochs": None,
               "schedule_steps": 12, **TINY}  # fmt: skip
    train(TrainConfig(steps=12, **options), tmp_path / "straight", show_progress=False)
    lines = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    p = [line["ada_p"] for line in lines if "ada_p" in line]
    assert len(p) == 12 and p[-1] > 0  # a low target: D's confidence pushes p up every 4 steps
    train(TrainConfig(steps=6, **options), tmp_path / "split", show_progress=False)
    train(TrainConfig(steps=12, **options), tmp_path / "split", resume=True, show_progress=False)
    assert_same_weights(tmp_path / "straight", tmp_path / "split")


def test_ada_and_diffaugment_together_are_refused() -> None:
    from acgan.errors import AcganError

    with pytest.raises(AcganError, match="choose one"):
        TrainConfig(ada=True, diffaugment="translation")


# --- Objectives: relativistic pairing, projection ---


def test_relativistic_pairing_by_hand() -> None:
    from acgan.losses import paired_with, relativistic_pairing

    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    softplus = lambda t: float(torch.nn.functional.softplus(torch.tensor(t)))  # noqa: E731
    assert float(relativistic_pairing(real, fake)) == pytest.approx((softplus(-1.0) + softplus(1.0)) / 2)
    assert paired_with(torch.tensor([1.0, 2.0]), 5).tolist() == [1, 2, 1, 2, 1]


def test_projection_adds_the_label_embedding_dot_the_features() -> None:
    from acgan.models import ModelConfig, build_discriminator

    d = build_discriminator(ModelConfig("dcgan", num_classes=3, width=4, heads=("projection",)))
    images, labels = torch.rand(4, 1, 28, 28) * 2 - 1, torch.tensor([0, 1, 2, 1])
    features = d.trunk(images)
    expected = d.adv_head(features).squeeze(1) + (d.projection(labels) * features).sum(1)
    out = d(images, labels)
    torch.testing.assert_close(out.adv_logits, expected)
    torch.testing.assert_close(out.class_logits, features @ d.projection.weight.T)  # every class's projection score
    torch.testing.assert_close(d(images).adv_logits, d.adv_head(features).squeeze(1))  # no labels: no projection


@pytest.mark.parametrize("objective", ["hinge+proj", "rpgan+proj", "rpgan+ac", "rpgan+adc", "adc+proj"])
def test_each_new_objective_trains(colour_folder: Path, tmp_path: Path, objective: str) -> None:
    from acgan.sampling import load_generator

    run = tmp_path / "run"
    train(TrainConfig(dataset=str(colour_folder), objective=objective, steps=2, epochs=None, **TINY), run,
          show_progress=False)  # fmt: skip
    config = json.loads((run / "config.json").read_text())
    expected = "joint" if objective.startswith("rpgan") else "alternating"  # a paired loss needs both halves at once
    assert config["train"]["d_updates"] == expected
    assert ("projection" in config["model"]["heads"]) == objective.endswith("proj")
    line = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert ("d_source" in line) == objective.startswith("rpgan") and "g_source" in line
    assert load_generator(run).sample([0, 1], seed=0).shape == (2, 3, 16, 16)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"objective": "rpgan+adc", "d_updates": "alternating"}, "--d-updates joint"),
     ({"objective": "reacgan+proj"}, "not offered: ReACGAN's class proxies"),
     ({"objective": "rpgan"}, "does not condition on the class")],
)  # fmt: skip
def test_combinations_that_make_no_sense_are_refused_in_one_line(changes: dict, message: str) -> None:
    from acgan.config import resolve_config
    from acgan.errors import AcganError

    with pytest.raises(AcganError, match=message):
        resolve_config(TrainConfig(**changes))


# --- Architectures: class-conditional BatchNorm, minibatch standard deviation, the resnet preset ---


def test_class_conditional_batch_norm_by_hand() -> None:
    from acgan.models.layers import ConditionalBatchNorm2d

    cbn = ConditionalBatchNorm2d(3, 2)
    x, condition = torch.randn(4, 3, 5, 5), torch.randn(4, 2)
    normed = torch.nn.functional.batch_norm(x, None, None, training=True)
    expected = (
        normed * (1 + condition @ cbn.gain.weight.T)[:, :, None, None]
        + (condition @ cbn.bias.weight.T)[:, :, None, None]
    )
    torch.testing.assert_close(cbn(x, condition), expected)
    plain = cbn(x, torch.zeros(4, 2))  # no class information: plain BatchNorm, gain 1, bias 0
    torch.testing.assert_close(plain, normed)


def test_minibatch_standard_deviation_by_hand() -> None:
    from acgan.models.layers import MinibatchStd

    x = torch.randn(8, 2, 3, 3)
    out = MinibatchStd(group=4)(x)
    assert out.shape == (8, 3, 3, 3) and torch.equal(out[:, :2], x)
    for image in range(8):  # image i is grouped with i +- 2, 4, 6 (every second image)
        group = x[image % 2 :: 2]  # (4, 2, 3, 3)
        expected = group.var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
        torch.testing.assert_close(out[image, 2], torch.full((3, 3), float(expected)))
    assert MinibatchStd(group=4)(torch.randn(6, 2, 3, 3)).shape == (6, 3, 3, 3)  # groups of 3 when 4 does not divide
    weights = torch.randn(8, 3, 3, 3)  # D's gradient through the feature, against torch.var's
    leaf, reference = x.clone().requires_grad_(), x.clone().requires_grad_()
    (MinibatchStd(group=4)(leaf) * weights).sum().backward()
    std = reference.reshape(4, 2, 2, 3, 3).var(dim=0, unbiased=False).add(1e-8).sqrt().mean(dim=(1, 2, 3))
    (torch.cat([reference, std.repeat(4)[:, None, None, None].expand(8, 1, 3, 3)], dim=1) * weights).sum().backward()
    torch.testing.assert_close(leaf.grad, reference.grad)


@pytest.mark.parametrize(("preset", "class_input"), [("dcgan", "cbn"), ("resnet", "cbn"), ("resnet", "concat")])
def test_the_label_reaches_every_block_with_class_conditional_batch_norm(preset: str, class_input: str) -> None:
    from acgan.models import ModelConfig, build_generator

    generator = build_generator(ModelConfig(preset, num_classes=3, channels=3, resolution=32, width=4,
                                            class_input=class_input))  # fmt: skip
    z = torch.randn(1, 100).repeat(3, 1)
    images = generator(z, torch.tensor([0, 1, 2]))
    assert not torch.equal(images[0], images[1]) and not torch.equal(images[1], images[2])
    conditional = [m for m in generator.modules() if type(m).__name__ == "ConditionalBatchNorm2d"]
    assert bool(conditional) == (class_input == "cbn")


def test_resnet_trains_resumes_exactly_exports_and_serves(colour_folder: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from acgan.export import export_generator
    from acgan.sampling import load_generator
    from acgan.serving import create_app

    options = {"dataset": str(colour_folder), "preset": "resnet", "mbstd": True, "epochs": None, **TINY}
    train(TrainConfig(steps=4, **options), tmp_path / "straight", show_progress=False)
    train(TrainConfig(steps=2, **options), tmp_path / "split", show_progress=False)
    train(TrainConfig(steps=4, **options), tmp_path / "split", resume=True, show_progress=False)
    assert_same_weights(tmp_path / "straight", tmp_path / "split")
    trained = load_generator(tmp_path / "straight")
    assert trained.generator.config.class_input == "cbn" and trained.generator.config.mbstd
    result = export_generator(trained, "onnx", tmp_path / "g.onnx")
    assert result["max_abs_diff"] < 1e-3
    onnx = load_generator(tmp_path / "g.onnx")
    torch.testing.assert_close(onnx.sample([0, 1], seed=2), trained.sample([0, 1], seed=2), atol=1e-3, rtol=0)
    with TestClient(create_app(trained)) as client:
        assert client.get("/api/v1/info").json()["preset"] == "resnet"
        assert client.get("/api/v1/generate", params={"label": "circle", "n": 2}).status_code == 200


# --- Truncation at sampling ---


def test_truncation_pulls_latents_toward_the_mean_or_resamples_beyond_a_threshold() -> None:
    from acgan.errors import AcganError
    from acgan.sampling import Truncation, make_latents

    plain = make_latents(6, 32, seed=5)
    torch.testing.assert_close(make_latents(6, 32, seed=5, truncation=Truncation(0.5)), plain * 0.5)
    resampled = make_latents(6, 32, seed=5, truncation=Truncation(1.0, "resample"))
    assert resampled.abs().max() <= 1.0
    inside = plain.abs() <= 1.0
    assert torch.equal(resampled[inside], plain[inside])  # only the entries beyond +-1 were drawn again
    assert torch.equal(make_latents(2, 32, seed=9, truncation=Truncation(1.0, "resample")), resampled[4:])  # per seed
    for psi, mode in ((0.0, "mean"), (1.5, "mean"), (0.05, "resample"), (5.0, "resample"), (0.5, "middle")):
        with pytest.raises(AcganError, match="truncation"):
            Truncation(psi, mode)


def test_truncation_from_the_cli_and_the_http_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fastapi.testclient import TestClient

    from acgan.sampling import load_generator
    from acgan.serving import create_app
    from tests.helpers import assert_one_line_error, run_cli, write_checkpoint

    weights = write_checkpoint(tmp_path)
    code, _, err = run_cli(["generate", "--checkpoint", str(weights), "--num", "10", "--truncation", "0.5",
                              "--output", str(tmp_path / "t.npz")], capsys)  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(["generate", "--checkpoint", str(weights), "--num", "10", "--truncation", "2",
                            "--output", str(tmp_path / "u.npz")], capsys)  # fmt: skip
    assert_one_line_error(code, err, "psi must be in 0 < psi <= 1")
    with TestClient(create_app(load_generator(weights))) as client:
        plain = client.get("/api/v1/generate", params={"n": 2, "seed": 1}).content
        truncated = client.get("/api/v1/generate", params={"n": 2, "seed": 1, "truncation": 0.3}).content
        assert plain != truncated
        sweep = client.get("/api/v1/class-sweep", params={"truncation": 1.5, "truncation_mode": "resample"})
        assert sweep.status_code == 200
        refused = client.get("/api/v1/generate", params={"truncation": 1.5})
        assert refused.status_code == 422 and "truncation" in refused.text


# --- Schedules and the conditioning ramp ---


def test_ramp_and_cosine_by_hand() -> None:
    from acgan.config import parse_ramp
    from acgan.errors import AcganError
    from acgan.training.schedules import cosine, ramp

    assert [ramp(step, 2, 6) for step in (0, 2, 4, 6, 9)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert cosine(0, 1.0, 0.1, 10) == 1.0 and cosine(10, 1.0, 0.1, 10) == pytest.approx(0.1)
    assert cosine(5, 1.0, 0.1, 10) == pytest.approx(0.55) and cosine(20, 1.0, 0.1, 10) == pytest.approx(0.1)
    assert parse_ramp("100:400") == (100, 400)
    for text in ("400:100", "5", "a:b", "-1:3"):
        with pytest.raises(AcganError, match="condition_ramp"):
            parse_ramp(text)


def test_the_learning_rates_decay_to_a_fraction_of_their_start_or_to_a_given_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import replace

    from acgan.config import resolve_config
    from acgan.models import presets
    from acgan.training.schedules import needs_schedule_length, schedules_of

    config = resolve_config(TrainConfig(preset="dcgan", lr_g=2e-3, lr_d=1e-3, steps=100, schedule_steps=100))
    assert config.lr_decay == presets.PRESETS["dcgan"].lr_decay  # the preset's
    assert schedules_of(config.replace(lr_decay=0.1)).lr == ((2e-3, pytest.approx(2e-4)), (1e-3, pytest.approx(1e-4)))
    assert schedules_of(config.replace(lr_decay=0.1, lr_end=5e-4)).lr == ((2e-3, 1e-3), (1e-3, 5e-4))  # end wins
    assert schedules_of(config.replace(lr_decay=1.0)).lr is None and not needs_schedule_length(
        config.replace(lr_decay=1.0, schedule_steps=0))  # fmt: skip
    monkeypatch.setitem(presets.PRESETS, "dcgan", replace(presets.PRESETS["dcgan"], lr_decay=0.5))
    assert resolve_config(TrainConfig(preset="dcgan")).lr_decay == 0.5  # a preset may decay by default


def test_a_schedule_in_minutes_is_fitted_to_the_step_rate_by_hand() -> None:
    from types import SimpleNamespace

    from acgan.config import resolve_config
    from acgan.objectives import build_objective
    from acgan.training.run import Run
    from acgan.training.schedules import fitted_length, schedules_of
    from acgan.training.steps import StepPlan

    assert fitted_length(100, 4.0, 50.0, 2.0) == 100 + 4 * 70  # 70 s left at 4 steps/s
    assert fitted_length(10, 1.0, 200.0, 1.0) == 10 and fitted_length(0, 0.0, 0.0, 1.0) == 1  # past the end; >= 1
    config = resolve_config(TrainConfig(lr_end=1e-4, epochs=None, max_minutes=10, schedule_minutes=10))
    assert schedules_of(config).lr is None  # every value at its start until the length is fixed
    notes: list[str] = []
    run = SimpleNamespace(config=config, start_step=40, wall_before=100.0, plan=StepPlan(build_objective("adc", 1.0, True)),
                          state=SimpleNamespace(step=60), writer=SimpleNamespace(note=notes.append))  # fmt: skip
    Run.fit_schedule(run, 29.0)  # type: ignore[arg-type]  # before 5% of 10 minutes (30 s): nothing yet
    assert run.config.schedule_steps == 0 and run.plan.schedules.lr is None and not notes
    Run.fit_schedule(run, 40.0)  # type: ignore[arg-type]
    length = 60 + round(20 / 40 * (600 - 140))  # 0.5 steps/s over the 460 s left of 10 minutes
    assert run.config.schedule_steps == run.plan.schedules.steps == length and run.plan.schedules.lr is not None
    assert len(notes) == 1 and f"{length} steps" in notes[0]
    Run.fit_schedule(run, 80.0)  # type: ignore[arg-type]  # fixed once: later control points leave it
    assert run.config.schedule_steps == length and len(notes) == 1


def test_a_run_bounded_by_minutes_fits_its_schedule_and_a_resumed_run_keeps_it(
    colour_folder: Path, tmp_path: Path
) -> None:
    from acgan.checkpoint import read_meta, resolve_checkpoint_dir
    from acgan.errors import AcganError
    from acgan.training.distributed import SINGLE_PROCESS
    from acgan.training.run import with_schedule_length
    from acgan.training.schedules import schedules_of

    options = {"dataset": str(colour_folder), "lr_end": 1e-4, "epochs": None, **TINY}
    run = tmp_path / "run"
    train(TrainConfig(max_minutes=0.03, **options), run, show_progress=False)
    started = json.loads((run / "config.json").read_text())["train"]
    assert (started["schedule_steps"], started["schedule_minutes"]) == (0, 0.03)  # the time bound's minutes
    recorded = read_meta(resolve_checkpoint_dir(run))["train_config"]
    assert recorded["schedule_steps"] >= 1  # fitted after 5% of the run, saved with the checkpoint
    resumed = with_schedule_length(TrainConfig(steps=100, **options), run, True, 48, SINGLE_PROCESS)
    assert resumed.schedule_steps == recorded["schedule_steps"]  # a longer bound never reshapes it
    with pytest.raises(AcganError, match="need a length"):
        schedules_of(TrainConfig(lr_end=1e-4, epochs=None, steps=10))  # unresolved: neither steps nor minutes


def test_a_scheduled_step_sets_rates_betas_and_the_class_strength() -> None:
    from acgan.config import resolve_config
    from acgan.models import ModelConfig, build_discriminator, build_generator
    from acgan.objectives import build_objective
    from acgan.training.schedules import Schedules, cosine
    from acgan.training.state import TrainState
    from acgan.training.steps import StepPlan, scheduled

    config = ModelConfig("dcgan", num_classes=3, width=4, heads=("adc", "projection"))
    g, d = build_generator(config), build_discriminator(config)
    state = TrainState(g, d, torch.optim.Adam(g.parameters(), lr=1e-3), torch.optim.Adam(d.parameters(), lr=1e-3),
                       torch.Generator().manual_seed(0), step=5)  # fmt: skip
    schedules = Schedules(ramp=(0, 10), steps=20, lr=((1e-3, 2e-4), (1e-3, 2e-4)), beta2=(0.9, 0.99))
    plan = StepPlan(build_objective("adc+proj", 2.0, True), schedules=schedules)
    now = scheduled(state, plan)
    assert now.objective.class_weight == pytest.approx(1.0)  # half way up the ramp: 2.0 x 0.5
    assert g.stem.condition_strength == 0.5 and d.condition_strength == 0.5
    lr = cosine(5, 1e-3, 2e-4, 20)
    assert state.opt_g.param_groups[0]["lr"] == pytest.approx(lr)
    assert state.opt_d.param_groups[0]["betas"][1] == pytest.approx(cosine(5, 0.9, 0.99, 20))
    assert resolve_config(TrainConfig(condition_ramp="0:10")).condition_ramp == "0:10"


def test_schedules_and_the_ramp_resume_exactly_with_their_length_fixed_at_the_start(
    colour_folder: Path, tmp_path: Path
) -> None:
    options = {"dataset": str(colour_folder), "condition_ramp": "1:5", "lr_end": 1e-4, "beta2_end": 0.99,
               "gamma_decay": 0.1, "r1": 1.0, "reg_every": 2, "epochs": None, **TINY}  # fmt: skip
    train(TrainConfig(steps=8, **options), tmp_path / "straight", show_progress=False)
    train(TrainConfig(steps=4, **options), tmp_path / "split", show_progress=False)
    saved = json.loads((tmp_path / "split" / "config.json").read_text())["train"]
    assert saved["schedule_steps"] == 4  # the first session's bound, kept by the resumed run below
    train(TrainConfig(steps=4, **options), tmp_path / "again", show_progress=False)
    train(TrainConfig(steps=8, **options), tmp_path / "again", resume=True, show_progress=False)
    train(TrainConfig(steps=8, schedule_steps=4, **options), tmp_path / "fixed", show_progress=False)
    assert_same_weights(tmp_path / "again", tmp_path / "fixed")  # resuming kept the 4-step schedule
    assert json.loads((tmp_path / "straight" / "config.json").read_text())["train"]["schedule_steps"] == 8
