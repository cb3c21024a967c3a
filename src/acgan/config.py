"""Training configuration: one frozen dataclass, validated once, saved as JSON with every run.

Fields left at None mean "the preset's (or objective's) default". `resolve_config` fills them in, outside
the dataclass, so `config.replace(preset=...)` on an unresolved config picks up the new preset's defaults,
and the config a run saves (resolved) says exactly what was used.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from acgan.errors import AcganError
from acgan.evaluation.registry import BEST_METRIC_CHOICES, DEFAULT_BEST_METRIC

DEVICES = ("auto", "cpu", "cuda", "mps")
DATA_LOADING = ("auto", "memory", "stream")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_EPOCHS = 10
MAX_SEED = 2**63 - 1  # seeds are 0..MAX_SEED everywhere (CLI, API, Python); latent i of seed s uses s + i


@dataclass(frozen=True)
class Interval:
    """The values a number may take where it is used (a float that overflows float32 is not a learning rate)."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        return f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


UNIT = Interval(0.0, 1.0, high_open=True)
MINUTES = Interval(0.0, 1e6, low_open=True)  # a bound in minutes: about two years at most
LEARNING_RATE = Interval(1e-8, 1.0)
SERVE_TIMEOUT_S = Interval(0.0, 3600.0, low_open=True)  # seconds a served request may wait for its images
_ABSENT = object()


def fact(default: Any, *, preset: str | None = None, resumable: bool = False, training: bool = False,
         legacy: Any = _ABSENT, interval: Interval | None = None, model: bool = False) -> Any:  # fmt: skip
    """A TrainConfig field and what is known about it, kept in its metadata (the lists below are derived from it):

    preset: the Preset attribute a None value falls back to; resumable: `--resume` may change it (where and how
    long to train, never what is trained); training: a training fact stored in the weights' metadata (shown by
    `acgan info` and the web page); legacy: what a config saved before the field existed meant; interval: the
    range a float is used in; model: the acgan.models.ModelConfig setting of the same name (its range is
    declared there).
    """
    metadata = {"preset": preset, "resumable": resumable, "training": training, "interval": interval, "model": model}
    if legacy is not _ABSENT:
        metadata["legacy"] = legacy
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the data itself (classes and image shape come from the data).

    Bounds: training stops at the first of `epochs`, `steps` or `max_minutes` reached (at least one is set).
    One epoch is len(dataset) // batch_size steps, as in the reference systems.
    """

    # mnist, fashion-mnist, cifar10, or a path: a labelled image folder or CIFAR-10 files
    dataset: str = "fashion-mnist"
    preset: str = fact("dcgan", training=True)
    # root holding <dataset>/; None searches $ACGAN_DATA_DIR, the cache, /usr/share/datasets
    data_dir: str | None = fact(None, resumable=True)
    limit: int | None = None  # use only the first `limit` training images
    resolution: int | None = None  # resize images to this side (crop to square, Lanczos); None: the data's own
    # share of each class held out for evaluation, for folders without a test/ split
    holdout: float = fact(0.1, interval=UNIT)
    verify_checksums: bool = True  # False reads data set files that are not the official release
    # "memory" (on the device), "stream" (from the decode cache), "auto": memory if it fits
    data_loading: str = fact("auto", resumable=True)
    z_dim: int = fact(100, model=True)
    # base channel count of presets that have one (dcgan); None: the preset's
    width: int | None = fact(None, preset="width", legacy=0, model=True)
    # full batch (D sees half real, half generated; G a full batch); None: the preset's (64; odena-cifar10 100)
    batch_size: int | None = fact(None, preset="batch_size", training=True)
    # Adam learning rates; None: the preset's (references 2e-4)
    lr_g: float | None = fact(None, preset="lr", training=True, interval=LEARNING_RATE)
    lr_d: float | None = fact(None, preset="lr", training=True, interval=LEARNING_RATE)
    # arithmetic that is faster but rounds differently from the references': Adam's fused kernel instead of its
    # foreach form (the per-tensor loop's arithmetic); None: the preset's (dcgan on, the reference presets off)
    fast_arithmetic: bool | None = fact(None, preset="fast_arithmetic", training=True, legacy=False)
    # torch.compile the networks as the updates call them (max-autotune on CUDA; on the CPU measured slower)
    compile: bool = fact(False, training=True)
    beta1: float = fact(0.5, interval=UNIT)
    beta2: float = fact(0.999, interval=UNIT)
    # acgan, keras, hinge, tac, adc, reacgan (acgan.objectives); None: the preset's
    objective: str | None = fact(None, preset="objective", training=True, legacy="acgan")
    class_weight: float = fact(1.0, training=True, interval=Interval(0.0, 1000.0, low_open=True))  # lambda
    # acgan only: False trains D's classifier on real images only; None: the objective's
    d_class_loss_on_fake: bool | None = fact(None, training=True)
    d2d_margin: float | None = fact(None, training=True, interval=Interval(0.0, 1.0, low_open=True))  # reacgan: m_p
    d2d_temperature: float | None = fact(None, training=True, interval=Interval(1e-3, 1e3))  # reacgan: tau
    # spectral normalisation of D's layers; None: the preset's
    spectral_norm: bool | None = fact(None, preset="spectral_norm", training=True, legacy=False, model=True)
    # DiffAugment policy "translation,cutout,color" ("" none); None: the preset's
    diffaugment: str | None = fact(None, preset="diffaugment", training=True, legacy="")
    # "alternating" (D real, D generated, G) or "joint" (one D update on both); None: the preset's
    d_updates: str | None = fact(None, preset="d_updates", training=True, legacy="alternating")
    d_steps: int = fact(1, training=True)  # D updates (each on a fresh batch) per G update
    # moving average of G's weights for sampling; 0 disables; None: the preset's
    ema_decay: float | None = fact(None, preset="ema_decay", training=True, interval=UNIT)
    epochs: int | None = fact(DEFAULT_EPOCHS, resumable=True)
    steps: int | None = fact(None, resumable=True)
    max_minutes: float | None = fact(None, resumable=True, interval=MINUTES)
    seed: int = fact(0, training=True)
    device: str = fact("auto", resumable=True)
    # fp32, bf16 (autocast, fp32 weights), fp16 or auto (see acgan.device); None: the preset's
    precision: str | None = fact(None, preset="precision", resumable=True, training=True)
    log_every: int = fact(0, resumable=True)  # print the references' per-step line every N steps (0: progress)
    metrics_every: int = 10  # steps between lines of metrics.jsonl
    sample_every: int = 1  # epochs between sample grids (each with a `latest` checkpoint)
    keep_every: int = 10  # epochs between checkpoints kept for good (besides `latest`)
    checkpoint_every: int = fact(0, resumable=True)  # also checkpoint every N steps (0: off)
    # also checkpoint every N minutes of training (0: off)
    checkpoint_minutes: float = fact(0.0, resumable=True, interval=Interval(0.0, 1e6))
    eval_every: int = fact(0, resumable=True)  # epochs between quick evaluations (0: none); keeps `best`
    eval_samples: int = fact(2000, resumable=True)  # generated samples per quick evaluation
    best_metric: str = DEFAULT_BEST_METRIC  # metric that picks the `best` checkpoint
    # TensorBoard event files in RUN/tensorboard/ (statistics, evaluations, grids, config)
    tensorboard: bool = fact(True, resumable=True)

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def learning_rates(self) -> tuple[float, float]:
        """(G's, D's) Adam learning rates; the config must be resolved."""
        if self.lr_g is None or self.lr_d is None:
            raise AcganError("learning rates are unresolved: call acgan.config.resolve_config first")
        return self.lr_g, self.lr_d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, rejecting unknown keys (a typo must not silently fall back to a default).

        A field missing from a dict saved before it existed gets its legacy value (what such runs did), and values
        since renamed get today's names, so old runs resume with the training they started with.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise AcganError(f"unknown configuration key(s): {', '.join(unknown)}")
        data = {**LEGACY_DEFAULTS, **data}  # a field a saved config predates means what it meant then
        renamed = {key: names[data[key]] for key, names in RENAMED_VALUES.items() if data.get(key) in names}
        return cls(**{**data, **renamed})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied and validated."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_flags(cls, values: dict[str, Any]) -> TrainConfig:
        """A new run's configuration from the options given: a step or time bound alone replaces the epochs'."""
        if "epochs" not in values and ("steps" in values or "max_minutes" in values):
            values = {**values, "epochs": None}
        return cls(**values)

    def resumed_with(self, changes: dict[str, Any]) -> TrainConfig:
        """This (saved) configuration with what a resume changes; new bounds replace all the old ones."""
        unknown = sorted(set(changes) - RESUMABLE_FIELDS)
        if unknown:
            raise AcganError(f"{', '.join(unknown)} cannot change when resuming")
        if set(changes) & {"epochs", "steps", "max_minutes"}:
            changes = {"epochs": None, "steps": None, "max_minutes": None, **changes}
        return self.replace(**changes)


def _fields_with(key: str) -> dict[str, Any]:
    """{field name: its metadata[key]} for every TrainConfig field that has a value for `key`."""
    return {f.name: f.metadata[key] for f in dataclasses.fields(TrainConfig) if f.metadata.get(key) not in (None, False)
            or (key == "legacy" and key in f.metadata)}  # fmt: skip


CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))
PRESET_DEFAULTS: dict[str, str] = _fields_with("preset")  # field -> the Preset attribute its None falls back to
RESUMABLE_FIELDS = frozenset(_fields_with("resumable"))  # what `--resume` may change
TRAINING_FACTS = tuple(_fields_with("training"))  # stored in the weights' metadata
LEGACY_DEFAULTS: dict[str, Any] = _fields_with("legacy")  # what configs saved before these fields meant
FLOAT_RANGES: dict[str, Interval] = _fields_with("interval")  # every float field and the range it is used in
MODEL_FIELDS = tuple(_fields_with("model"))  # passed to the networks' ModelConfig under the same name


def model_settings(config: TrainConfig) -> dict[str, Any]:
    """The ModelConfig settings a (resolved) config chooses, by name (unset ones left to ModelConfig)."""
    return {name: getattr(config, name) for name in MODEL_FIELDS if getattr(config, name) is not None}


RENAMED_VALUES = {"d_updates": {"seeds": "alternating"}}  # old saved values -> today's names


def training_facts(config: TrainConfig) -> dict[str, Any]:
    """How a generator was trained, stored in its weights' metadata (shown by `acgan info` and the web page)."""
    return {name: getattr(config, name) for name in TRAINING_FACTS if getattr(config, name) is not None}


def resolve_config(config: TrainConfig) -> TrainConfig:
    """A copy with every default filled in from the preset and the objective, checked as a whole.

    Resolving is idempotent; a resolved config keeps its values when its preset changes (they are explicit).
    """
    from acgan.models.presets import get_preset  # deferred: models import nothing from config
    from acgan.objectives import DataToDataObjective, objective_class

    preset = get_preset(config.preset)
    changes = {name: getattr(preset, attr) for name, attr in PRESET_DEFAULTS.items() if getattr(config, name) is None}
    objective = objective_class(changes.get("objective", config.objective) or preset.objective)
    if config.d_class_loss_on_fake is None:
        changes["d_class_loss_on_fake"] = (
            objective.class_on_fake_default
            if objective.class_on_fake_default is not None
            else objective.class_on_fake  # the dataclass field's default
        )
    if objective is DataToDataObjective:
        if config.d2d_margin is None:
            changes["d2d_margin"] = DataToDataObjective.margin
        if config.d2d_temperature is None:
            changes["d2d_temperature"] = DataToDataObjective.temperature
    if config.dataset not in _registered_datasets() and Path(config.dataset).expanduser().exists():
        changes["dataset"] = str(Path(config.dataset).expanduser().resolve())  # resume works from any folder
    resolved = config.replace(**changes)
    _check_objective_options(resolved)
    return resolved


def _registered_datasets() -> list[str]:
    from acgan.data.dataset import dataset_names  # deferred: keeps `import acgan.config` light

    return dataset_names()


def dataset_label(dataset: str) -> str:
    """A short name for a data set given by name or path (run directory names, titles)."""
    return dataset if "/" not in dataset and "\\" not in dataset else Path(dataset).name or "data"


def _check_objective_options(config: TrainConfig) -> None:
    """Options that only some objectives take: a one-line error for every combination that makes no sense."""
    from acgan.objectives import objective_class

    assert config.objective is not None  # resolved
    objective = objective_class(config.objective)
    fixed = objective.class_on_fake_default is None
    if fixed and config.d_class_loss_on_fake != objective.class_on_fake:
        where = "real and generated images" if objective.class_on_fake else "real images only"
        raise AcganError(
            f"objective '{objective.name}' fixes where D's class loss applies ({where}); "
            "leave d_class_loss_on_fake unset"
        )
    if objective.name != "reacgan" and (config.d2d_margin is not None or config.d2d_temperature is not None):
        raise AcganError(f"d2d_margin and d2d_temperature apply to objective 'reacgan' only, not '{objective.name}'")


def _check_types(config: TrainConfig) -> None:
    """AcganError naming the first field whose value is not of its declared type (a hand-edited config.json)."""
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        value, hint = getattr(config, field.name), hints[field.name]
        allowed = typing.get_args(hint) or (hint,)  # X | None -> (X, NoneType)
        if isinstance(value, bool) and bool not in allowed:  # True is an int in Python, never here
            ok = False
        else:
            ok = isinstance(value, allowed) or (float in allowed and isinstance(value, int))
        if not ok:
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise AcganError(f"{field.name} must be {names}, got {value!r}")


def validate(config: TrainConfig) -> None:
    """Checks of each given value and across fields; AcganError with a message naming the offending parameter."""
    from acgan.augment import parse_policy
    from acgan.models.networks import LIMITS, setting_problem
    from acgan.models.presets import get_preset  # deferred: models import nothing from config
    from acgan.objectives import objective_class

    _check_types(config)
    preset = get_preset(config.preset)
    if config.objective is not None:
        objective_class(config.objective)
    if config.diffaugment is not None:
        try:
            parse_policy(config.diffaugment)
        except ValueError as exc:
            raise AcganError(f"diffaugment: {exc}") from None

    for name in MODEL_FIELDS:
        problem = getattr(config, name) is not None and setting_problem(name, getattr(config, name))
        if problem:
            raise AcganError(problem)
    for name, interval in FLOAT_RANGES.items():
        value = getattr(config, name)
        if value is not None and value not in interval:
            raise AcganError(f"{name} must be in {interval}, got {value}")
    checks = [
        (bool(config.dataset.strip()), "dataset must be a registered name or a path, got an empty one"),
        (config.batch_size is None or (config.batch_size >= 2 and config.batch_size % 2 == 0),
         f"batch_size must be an even number >= 2, got {config.batch_size}"),
        (config.resolution is None or LIMITS["resolution"][0] <= config.resolution <= LIMITS["resolution"][1],
         f"resolution must be in {LIMITS['resolution'][0]}..{LIMITS['resolution'][1]}, got {config.resolution}"),
        (config.data_loading in DATA_LOADING,
         f"data_loading must be one of {', '.join(DATA_LOADING)}, got '{config.data_loading}'"),
        (config.width is None or config.width >= 0, f"width must be >= 1, got {config.width}"),
        (not config.width or preset.width > 0,
         f"preset '{config.preset}' reproduces a fixed architecture; width applies to 'dcgan' only"),
        (config.d_steps >= 1, f"d_steps must be >= 1, got {config.d_steps}"),
        (0 <= config.seed <= MAX_SEED, f"seed must be in 0..{MAX_SEED}, got {config.seed}"),
        (config.epochs is None or config.epochs >= 1, f"epochs must be >= 1, got {config.epochs}"),
        (config.steps is None or config.steps >= 1, f"steps must be >= 1, got {config.steps}"),
        (
            config.epochs is not None or config.steps is not None or config.max_minutes is not None,
            "set at least one of epochs, steps or max_minutes",
        ),
        (config.limit is None or config.limit >= (config.batch_size or 2) // 2, "limit must be at least half a batch"),
        (config.device in DEVICES, f"device must be one of {', '.join(DEVICES)}, got '{config.device}'"),
        (config.precision is None or config.precision in PRECISIONS,
         f"precision must be one of {', '.join(PRECISIONS)}, got '{config.precision}'"),
        (config.log_every >= 0 and config.metrics_every >= 1, "log_every must be >= 0 and metrics_every >= 1"),
        (config.checkpoint_every >= 0, "checkpoint_every must be >= 0"),
        (config.sample_every >= 1 and config.keep_every >= 1, "sample_every and keep_every must be >= 1"),
        (config.eval_every >= 0 and config.eval_samples >= 100, "eval_every must be >= 0 and eval_samples >= 100"),
        (config.best_metric in BEST_METRIC_CHOICES, f"best_metric must be one of {', '.join(BEST_METRIC_CHOICES)}, got '{config.best_metric}'"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise AcganError(message)
