"""Training configuration: one frozen dataclass, validated once, saved as JSON with every run.

Fields left at None mean "the preset's (or objective's) default". `resolve_config` fills them in, outside
the dataclass, so `config.replace(preset=...)` on an unresolved config picks up the new preset's defaults,
and the config a run saves (resolved) says exactly what was used.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from acgan.errors import AcganError
from acgan.evaluation.registry import BEST_METRIC_CHOICES, DEFAULT_BEST_METRIC
from acgan.models.networks import LIMITS

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
PENALTY = Interval(0.0, 1e4)  # a gradient penalty's gamma
SERVE_TIMEOUT_S = Interval(0.0, 3600.0, low_open=True)  # seconds a served request may wait for its images
_ABSENT = object()


def fact(default: Any, *, preset: str | None = None, resumable: bool = False, training: bool = False,
         legacy: Any = _ABSENT, interval: Interval | None = None, model: bool = False, help: str = "",
         choices: tuple[str, ...] | Callable[[], list[str]] | None = None, bounds: tuple[int, int | None] | None = None,
         flag: str = "", metavar: str = "", folder: bool = False,
         check: Callable[[Any], str | None] | None = None) -> Any:  # fmt: skip
    """A TrainConfig field and what is known about it, kept in its metadata (the lists below and the options of
    `acgan train` are derived from it):

    preset: the Preset attribute a None value falls back to; resumable: `--resume` may change it (where and how
    long to train, never what is trained); training: a training fact stored in the weights' metadata (shown by
    `acgan info` and the web page); legacy: what a config saved before the field existed meant; interval: the
    range a float is used in; model: the acgan.models.ModelConfig setting of the same name (its range is
    declared there). The command line: `help` makes the field an option of `acgan train` (--field-name, a
    --x/--no-x pair for a boolean, or `flag`'s spelling), `choices` its values, `bounds` an integer's (low,
    high or None), `metavar` its placeholder, `folder` an existing folder; `check(value)` says why a value is
    refused (instead of the choices' generic line).
    """
    metadata = {"preset": preset, "resumable": resumable, "training": training, "interval": interval, "model": model,
                "help": help, "choices": choices, "bounds": bounds, "flag": flag, "metavar": metavar,
                "folder": folder, "check": check}  # fmt: skip
    if legacy is not _ABSENT:
        metadata["legacy"] = legacy
    return dataclasses.field(default=default, metadata=metadata)


def _preset_names() -> list[str]:
    from acgan.models.presets import PRESETS  # deferred: models import nothing from config

    return list(PRESETS)


def _objective_names() -> list[str]:
    from acgan.objectives import OBJECTIVES  # deferred: keeps `import acgan.config` light

    return list(OBJECTIVES)


def parse_ramp(text: str) -> tuple[int, int]:
    """'500:2000' -> (500, 2000); AcganError unless 0 <= START < END."""
    start, separator, end = text.partition(":")
    try:
        values = int(start), int(end)
    except ValueError:
        values = (-1, -1)
    if not separator or not 0 <= values[0] < values[1]:
        raise AcganError(f"condition_ramp must be START:END steps with 0 <= START < END, got {text!r}")
    return values


def _ramp_problem(text: str) -> str | None:
    try:
        parse_ramp(text)
    except AcganError as exc:
        return str(exc)
    return None


def _objective_problem(name: str) -> str | None:
    from acgan.objectives import objective_class

    try:
        objective_class(name)
    except AcganError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the data itself (classes and image shape come from the data).

    Bounds: training stops at the first of `epochs`, `steps` or `max_minutes` reached (at least one is set).
    One epoch is len(dataset) // batch_size steps, as in the reference systems. Each field's help is its
    documentation and its `acgan train` option; None means the preset's (or objective's) default.
    """

    dataset: str = fact("fashion-mnist", metavar="NAME|PATH", help="A registered data set (mnist, fashion-mnist, "
                        "cifar10) or a path: a labelled image folder (ROOT/<class>/*.png, or ROOT/train/<class>/ and "
                        "ROOT/test/<class>/) or a folder of CIFAR-10 .bin files.")  # fmt: skip
    preset: str | None = fact(None, training=True, choices=_preset_names, help="The architecture; see `acgan presets` "
                              "[default: the one chosen for the data's images, grey or colour].")  # fmt: skip
    data_dir: str | None = fact(None, resumable=True, folder=True, help="Folder holding DATASET/ [default: "
                                "$ACGAN_DATA_DIR, the cache, /usr/share/datasets].")  # fmt: skip
    limit: int | None = fact(None, bounds=(1, None), help="Use only the first N training images.")
    resolution: int | None = fact(None, bounds=LIMITS["resolution"], help="Resize images to this side: centre crop to "
                                  "square, Lanczos [default: the data's own size; 64 for folders of mixed sizes].")  # fmt: skip
    holdout: float = fact(0.1, interval=UNIT, help="Share of each class held out for evaluation (folders without a "
                          "test/ split).")  # fmt: skip
    verify_checksums: bool = fact(True, flag="--verify-checksums/--skip-checksums", help="--skip-checksums reads data "
                                  "set files whose checksums differ from the official release (a subset, or your own "
                                  "files in the official format).")  # fmt: skip
    data_loading: str = fact("auto", resumable=True, choices=DATA_LOADING, help="memory: data on the "
                             "device; stream: read from the decode cache by workers; auto: memory if it fits in half "
                             "the free memory.")  # fmt: skip
    z_dim: int = fact(100, model=True, bounds=LIMITS["z_dim"], help="Size of the latent vector.")
    width: int | None = fact(None, preset="width", legacy=0, model=True, bounds=(1, LIMITS["width"][1]),
                             help="Base channel count of the presets that have one (dcgan).")  # fmt: skip
    class_input: str | None = fact(None, preset="class_input", training=True, legacy="concat", model=True,
                                   help="Where G takes the label: concat (beside z) or cbn (class-conditional "
                                   "BatchNorm in every block, one shared class embedding).")  # fmt: skip
    mbstd: bool | None = fact(None, preset="mbstd", training=True, legacy=False, model=True, help="The minibatch "
                              "standard deviation feature in D (its output on an image then depends on the others "
                              "of its group of 4).")  # fmt: skip
    batch_size: int | None = fact(None, preset="batch_size", training=True, bounds=(2, None), help="Full batch: D sees "
                                  "half real, half generated; G a full batch.")  # fmt: skip
    lr_g: float | None = fact(None, preset="lr", training=True, interval=LEARNING_RATE, help="G's Adam learning rate.")
    lr_d: float | None = fact(None, preset="lr", training=True, interval=LEARNING_RATE, help="D's Adam learning rate.")
    fast_arithmetic: bool | None = fact(None, preset="fast_arithmetic", training=True, legacy=False,
                                        flag="--fast-arithmetic/--exact-arithmetic", help="Fused Adam: faster, rounding "
                                        "unlike the reference systems' (their foreach form, the per-tensor loop's "
                                        "arithmetic).")  # fmt: skip
    compile: bool = fact(False, training=True, help="torch.compile G and D for their updates (max-autotune on CUDA; "
                         "on a CPU it did not pay).")  # fmt: skip
    beta1: float = fact(0.5, interval=UNIT)
    beta2: float = fact(0.999, interval=UNIT)
    objective: str | None = fact(None, preset="objective", training=True, legacy="acgan", choices=_objective_names,
                                 check=_objective_problem,
                                 help="Training objective; see `acgan objectives`.")  # fmt: skip
    class_weight: float = fact(1.0, training=True, interval=Interval(0.0, 1000.0, low_open=True),
                               help="Weight of the class terms (lambda).")  # fmt: skip
    d_class_loss_on_fake: bool | None = fact(None, training=True, flag="--d-class-loss-on-fake/--d-class-loss-on-real-"
                                             "only", help="acgan objective: train D's classifier on generated images "
                                             "too [default: the objective's].")  # fmt: skip
    d2d_margin: float | None = fact(None, training=True, interval=Interval(0.0, 1.0, low_open=True),
                                    help="reacgan: positive margin m_p [default: the objective's].")  # fmt: skip
    d2d_temperature: float | None = fact(None, training=True, interval=Interval(1e-3, 1e3),
                                         help="reacgan: temperature tau [default: the objective's].")  # fmt: skip
    spectral_norm: bool | None = fact(None, preset="spectral_norm", training=True, legacy=False, model=True,
                                      help="Spectral normalisation of D's layers.")  # fmt: skip
    diffaugment: str | None = fact(None, preset="diffaugment", training=True, legacy="", metavar="POLICY",
                                   help="DiffAugment: comma-separated translation, cutout, color (colour data), or "
                                   "none.")  # fmt: skip
    condition_ramp: str | None = fact(None, training=True, legacy=None, metavar="START:END", check=_ramp_problem,
                                      help="Fade the class in: G's class input, D's class-conditional logit and the "
                                      "class terms weighted by a strength rising from 0 at step START to 1 at END "
                                      "(Shahbazi et al. 2022, for small data sets) [default: none].")  # fmt: skip
    schedule_steps: int = fact(0, training=True, legacy=0, bounds=(0, None), help="Length of the cosine schedules "
                               "below in steps (0: the run's --steps or --epochs bound, else fitted to "
                               "--schedule-minutes).")  # fmt: skip
    schedule_minutes: float | None = fact(None, training=True, legacy=None, interval=MINUTES, help="Length of the "
                                          "cosine schedules in minutes of training, unless --schedule-steps is "
                                          "given: fixed in steps from the step rate of their first 5% (and saved) "
                                          "[default: --max-minutes when the run has no --steps or --epochs "
                                          "bound].")  # fmt: skip
    lr_decay: float | None = fact(None, preset="lr_decay", training=True, legacy=1.0,
                                  interval=Interval(0.0, 1.0, low_open=True), help="G's and D's learning rates at "
                                  "the end of the schedule as a fraction of --lr, along a cosine (1: constant) "
                                  "[default: the preset's].")  # fmt: skip
    lr_end: float | None = fact(None, training=True, legacy=None, interval=LEARNING_RATE, help="D's learning rate at "
                                "the end of the schedule (G's in proportion), along a cosine (R3GAN), instead of "
                                "--lr-decay [default: from --lr-decay].")  # fmt: skip
    beta2_end: float | None = fact(None, training=True, legacy=None, interval=UNIT, help="Adam's beta2 at the end "
                                   "of the schedule, along a cosine (R3GAN: 0.9 to 0.99) [default: constant].")  # fmt: skip
    gamma_decay: float | None = fact(None, training=True, legacy=None, interval=Interval(0.0, 1.0),
                                     help="R1 and R2's gamma at the end of the schedule as a fraction of --r1/--r2, "
                                     "along a cosine (R3GAN: 0.1) [default: constant].")  # fmt: skip
    ada: bool = fact(False, training=True, legacy=False, help="ADA: flips, 90-degree rotations, translations, colour "
                     "and cutout of everything D sees, each with a probability p adjusted from D's overfitting (for "
                     "small data sets; instead of --diffaugment).")  # fmt: skip
    ada_target: float = fact(0.6, training=True, legacy=0.6, interval=Interval(0.0, 1.0, low_open=True),
                             help="ADA: the E[sign(D(real))] p is adjusted toward.")  # fmt: skip
    ada_kimg: float = fact(100.0, training=True, legacy=100.0, interval=Interval(0.0, 1e6, low_open=True),
                           help="ADA: thousand images for p to go from 0 to 1.")  # fmt: skip
    d_updates: str | None = fact(None, preset="d_updates", training=True, legacy="alternating",
                                 help="alternating: D on real, D on generated, then G (the references'); joint: one D "
                                 "update on both.")  # fmt: skip
    d_steps: int = fact(1, training=True, bounds=(1, None), help="D updates (each on fresh images) per G update.")
    r1: float = fact(0.0, training=True, legacy=0.0, interval=PENALTY, help="R1: gradient penalty on real images, "
                     "its weight gamma (0: off).")  # fmt: skip
    r2: float = fact(0.0, training=True, legacy=0.0, interval=PENALTY, help="R2: gradient penalty on generated "
                     "images, its weight gamma (0: off).")  # fmt: skip
    reg_every: int = fact(16, training=True, legacy=16, bounds=(1, None), help="Apply R1 and R2 every N steps, "
                          "scaled by N, with D's Adam adjusted to match (StyleGAN2's lazy regularisation; 1: every "
                          "step).")  # fmt: skip
    ema_decay: float | None = fact(None, preset="ema_decay", training=True, interval=UNIT, help="Moving average of "
                                   "G's weights, used for sampling; 0 disables.")  # fmt: skip
    epochs: int | None = fact(DEFAULT_EPOCHS, resumable=True, bounds=(1, None), help="Epochs to train (unless "
                              "--steps or --max-minutes is given).")  # fmt: skip
    steps: int | None = fact(None, resumable=True, bounds=(1, None), help="Stop after this many steps in total.")
    max_minutes: float | None = fact(None, resumable=True, interval=MINUTES, help="Stop after this much wall-clock "
                                     "time.")  # fmt: skip
    seed: int = fact(0, training=True, bounds=(0, MAX_SEED), help="Image i of a command uses seed + i.")
    device: str = fact("auto", resumable=True, choices=DEVICES, help="auto: CUDA, then MPS, then the CPU.")
    precision: str | None = fact(None, preset="precision", resumable=True, training=True, choices=PRECISIONS,
                                 help="bf16: autocast, fp32 weights; auto: on a CPU the faster of fp32 and bf16 for "
                                 "this run, measured in a few seconds the first time and cached; bf16 on GPUs that "
                                 "support it; a resumed run keeps its precision.")  # fmt: skip
    log_every: int = fact(0, resumable=True, bounds=(0, None), help="Print the references' per-step loss line every N "
                          "steps (0: a progress bar).")  # fmt: skip
    metrics_every: int = 10  # steps between lines of metrics.jsonl
    sample_every: int = fact(1, bounds=(1, None), help="Epochs between sample grids and checkpoints.")
    keep_every: int = fact(10, bounds=(1, None), help="Epochs between checkpoints kept for good.")
    checkpoint_every: int = fact(0, resumable=True)  # also checkpoint every N steps (0: off); the CLI's cadence
    checkpoint_minutes: float = fact(0.0, resumable=True, interval=Interval(0.0, 1e6))  # ... or N minutes (0: off)
    eval_every: int = fact(0, resumable=True, bounds=(0, None), help="Epochs between quick evaluations (0: none); "
                           "keeps checkpoints/best.")  # fmt: skip
    eval_samples: int = fact(2000, resumable=True, bounds=(100, None), help="Samples per quick evaluation.")
    best_metric: str = fact(DEFAULT_BEST_METRIC, choices=BEST_METRIC_CHOICES, help="Metric that picks the best "
                            "checkpoint.")  # fmt: skip
    tensorboard: bool = fact(True, resumable=True, help="Write TensorBoard event files into RUN/tensorboard/ (view: "
                             "tensorboard --logdir runs/).")  # fmt: skip

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

    if config.preset is None:
        config = config.replace(preset=data_default_preset(config))
    assert config.preset is not None
    preset = get_preset(config.preset)
    changes = {name: getattr(preset, attr) for name, attr in PRESET_DEFAULTS.items() if getattr(config, name) is None}
    objective = objective_class(changes.get("objective", config.objective) or preset.objective)
    if objective.paired and config.d_updates is None:
        changes["d_updates"] = "joint"  # its loss pairs the real and generated halves of one D update
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


def data_default_preset(config: TrainConfig) -> str:
    """The preset for `config`'s data when none is named: the grey or the colour default (acgan.models.presets).

    Needs the images' channels: known for a registered data set, read for a folder (decoded once through the cache
    the run then loads from). Data that cannot be read gets the grey default; loading it says why it cannot."""
    from acgan.data.dataset import image_channels
    from acgan.models.presets import default_preset

    channels = image_channels(config.dataset, resolution=config.resolution, holdout=config.holdout,
                              verify_checksums=config.verify_checksums)  # fmt: skip
    return default_preset(channels or 1)


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
    if objective.paired and config.d_updates != "joint":
        raise AcganError(f"objective '{objective.name}' compares real and generated images in one D update; it trains "
                         "with --d-updates joint (its default), not alternating")  # fmt: skip
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
    """Checks of each given value (from the fields' metadata) and across fields; AcganError with a message naming
    the offending parameter."""
    from acgan.augment import parse_policy
    from acgan.models import presets  # deferred: models import nothing from config

    _check_types(config)
    for spec in dataclasses.fields(TrainConfig):
        value = getattr(config, spec.name)
        problem = None if value is None else _field_problem(spec, value)
        if problem:
            raise AcganError(problem)
    preset = presets.get_preset(config.preset) if config.preset is not None else None  # None: chosen when resolved
    adjustable = {name: getattr(config, name) for name in presets.ADJUSTABLE}
    problem = presets.unsupported_setting(preset, adjustable) if preset else None
    if problem:
        raise AcganError(problem)
    if config.diffaugment is not None:
        try:
            parse_policy(config.diffaugment)
        except ValueError as exc:
            raise AcganError(f"diffaugment: {exc}") from None
    checks = [
        (bool(config.dataset.strip()), "dataset must be a registered name or a path, got an empty one"),
        (config.batch_size is None or config.batch_size % 2 == 0,
         f"batch_size must be an even number >= 2, got {config.batch_size}"),
        (config.epochs is not None or config.steps is not None or config.max_minutes is not None,
         "set at least one of epochs, steps or max_minutes"),
        (config.limit is None or config.limit >= (config.batch_size or 2) // 2, "limit must be at least half a batch"),
        (config.metrics_every >= 1, "metrics_every must be >= 1"),
        (config.condition_ramp is None or preset is None or "class_input" in preset.settings,
         f"condition_ramp fades in the class input of "
         f"{', '.join(repr(p.name) for p in presets.PRESETS.values() if 'class_input' in p.settings)}, "
         f"not of preset '{config.preset}'"),
        (not (config.ada and parse_policy(config.diffaugment or "")),
         "ada and diffaugment both augment what D sees; choose one (--diffaugment none with --ada)"),
        (config.checkpoint_every >= 0, "checkpoint_every must be >= 0"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise AcganError(message)


def _field_problem(spec: dataclasses.Field[Any], value: Any) -> str | None:
    """Why `value` cannot be the field's (its choices, an integer's bounds, a float's interval, a model setting's
    range), or None."""
    from acgan.models.networks import setting_problem

    meta = spec.metadata
    if meta.get("check") is not None:
        return meta["check"](value)
    choices = meta.get("choices")
    if choices is not None:
        allowed = list(choices() if callable(choices) else choices)
        if value not in allowed:
            kind = spec.name.replace("_", " ") if spec.name in ("preset", "objective") else None
            return f"unknown {kind} '{value}' (known: {', '.join(allowed)})" if kind else (
                f"{spec.name} must be one of {', '.join(allowed)}, got '{value}'")  # fmt: skip
    if meta.get("model"):  # its range is the model's (the option's bounds may be narrower: width 0 is a preset's own)
        return setting_problem(spec.name, value)
    bounds = meta.get("bounds")
    if bounds and not (value >= bounds[0] and (bounds[1] is None or value <= bounds[1])):
        return f"{spec.name} must be >= {bounds[0]}, got {value}" if bounds[1] is None else (
            f"{spec.name} must be in {bounds[0]}..{bounds[1]}, got {value}")  # fmt: skip
    interval = meta.get("interval")
    if interval is not None and value not in interval:
        return f"{spec.name} must be in {interval}, got {value}"
    return None
