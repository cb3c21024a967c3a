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
    options = {"dataset": str(colour_folder), "r1": 1.0, "r2": 1.0, "reg_every": 2, "epochs": None, **TINY}
    train(TrainConfig(steps=8, **options), tmp_path / "straight", show_progress=False)
    train(TrainConfig(steps=3, **options), tmp_path / "split", show_progress=False)
    train(TrainConfig(steps=8, **options), tmp_path / "split", resume=True, show_progress=False)
    assert_same_weights(tmp_path / "straight", tmp_path / "split")
