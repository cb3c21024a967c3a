"""Training configuration: one frozen dataclass, validated once, saved as JSON with every run."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

from acgan.errors import AcganError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")
DEFAULT_EPOCHS = 10
BEST_METRICS = (
    "intra_fd",
    "fd",
    "conditional_accuracy",
    "classifier_score",
    "precision",
    "recall",
    "density",
    "coverage",
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the data itself (classes and image shape come from the data).

    Bounds: training stops at the first of `epochs`, `steps` or `max_minutes` reached (at least one is set).
    One epoch is len(dataset) // batch_size steps, as in the seeds.
    """

    dataset: str = "fashion-mnist"
    preset: str = "dcgan"
    data_dir: str | None = (
        None  # root holding <dataset>/; None searches $ACGAN_DATA_DIR, the cache, /usr/share/datasets
    )
    limit: int | None = None  # use only the first `limit` training images
    z_dim: int = 100
    batch_size: int = 64  # full batch: D sees half real, half generated; G sees a full batch
    lr_g: float | None = None  # Adam learning rates; None: the preset's (seeds 2e-4)
    lr_d: float | None = None
    beta1: float = 0.5
    beta2: float = 0.999
    d_class_loss_on_fake: bool = True  # False: D's classifier learns from real images only (Keras example option)
    ema_decay: float | None = None  # moving average of G's weights for sampling; 0 disables; None: the preset's default
    epochs: int | None = DEFAULT_EPOCHS
    steps: int | None = None
    max_minutes: float | None = None
    seed: int = 0
    device: str = "auto"
    precision: str | None = None  # fp32, bf16 (autocast, fp32 weights) or auto (see acgan.device); None: the preset's
    log_every: int = 0  # print the seeds' per-step line every N steps; 0 shows a progress bar instead
    metrics_every: int = 10  # steps between lines of metrics.jsonl
    sample_every: int = 1  # epochs between sample grids (and `latest` checkpoints)
    keep_every: int = 10  # epochs between checkpoints kept for good (besides `latest`)
    eval_every: int = 0  # epochs between quick evaluations (0: none); keeps a `best` checkpoint
    eval_samples: int = 2000  # generated samples per quick evaluation
    best_metric: str = "intra_fd"  # metric that picks the `best` checkpoint

    def __post_init__(self) -> None:
        from acgan.models.presets import get_preset  # deferred: models import nothing from config

        preset = get_preset(self.preset)
        if self.ema_decay is None:  # resolved once, so the saved config says what was used
            object.__setattr__(self, "ema_decay", preset.ema_decay)
        if self.precision is None:
            object.__setattr__(self, "precision", preset.precision)
        for name in ("lr_g", "lr_d"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, preset.lr)
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def learning_rates(self) -> tuple[float, float]:
        """(G's, D's) Adam learning rates, as resolved from the preset when not given."""
        assert self.lr_g is not None and self.lr_d is not None  # resolved in __post_init__
        return self.lr_g, self.lr_d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, rejecting unknown keys (a typo must not silently fall back to a default)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AcganError(f"unknown configuration key(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied and validated."""
        return dataclasses.replace(self, **changes)


def validate(config: TrainConfig) -> None:
    """Cross-field checks; AcganError with a message naming the offending option."""
    from acgan.models.presets import get_preset  # deferred: models import nothing from config

    get_preset(config.preset)
    checks = [
        (config.batch_size >= 2 and config.batch_size % 2 == 0, f"batch_size must be an even number >= 2, got {config.batch_size}"),
        (config.z_dim >= 1, f"z_dim must be >= 1, got {config.z_dim}"),
        (config.lr_g is not None and config.lr_g > 0 and config.lr_d is not None and config.lr_d > 0,
         "learning rates must be > 0"),
        (0 <= config.beta1 < 1 and 0 <= config.beta2 < 1, "Adam betas must be in [0, 1)"),
        (config.ema_decay is not None and 0 <= config.ema_decay < 1, f"ema_decay must be in [0, 1), got {config.ema_decay}"),
        (config.epochs is None or config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}"),
        (config.steps is None or config.steps >= 1, f"steps must be >= 1, got {config.steps}"),
        (config.max_minutes is None or config.max_minutes > 0, f"max_minutes must be > 0, got {config.max_minutes}"),
        (
            config.epochs is not None or config.steps is not None or config.max_minutes is not None,
            "set at least one of epochs, steps or max_minutes",
        ),
        (config.limit is None or config.limit >= config.batch_size // 2, "limit must be at least half a batch"),
        (config.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got '{config.device}'"),
        (config.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got '{config.precision}'"),
        (config.log_every >= 0 and config.metrics_every >= 1, "log_every must be >= 0 and metrics_every >= 1"),
        (config.sample_every >= 1 and config.keep_every >= 1, "sample_every and keep_every must be >= 1"),
        (config.eval_every >= 0 and config.eval_samples >= 100, "eval_every must be >= 0 and eval_samples >= 100"),
        (config.best_metric in BEST_METRICS, f"best_metric must be one of {', '.join(BEST_METRICS)}, got '{config.best_metric}'"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise AcganError(message)
