"""The `acgan` command line: a thin adapter from flags to the library. Errors print one line, exit non-zero."""

from __future__ import annotations

import dataclasses
import json
import math
import signal
import sys
import tempfile
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import torch

from acgan.config import (
    CONFIG_FIELDS,
    DEVICES,
    FLOAT_RANGES,
    LEGACY_DEFAULTS,
    MAX_SEED,
    PRECISIONS,
    RESUMABLE_FIELDS,
    SERVE_TIMEOUT_S,
    Interval,
    TrainConfig,
    dataset_label,
    resolve_config,
)
from acgan.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, AcganError
from acgan.evaluation.inception import WEIGHTS_ENV
from acgan.models.networks import LIMITS
from acgan.models.networks import SETTINGS as MODEL_SETTINGS
from acgan.models.presets import DEFAULT_PRESET, PRESETS, default_preset
from acgan.objectives import OBJECTIVES, Objective
from acgan.training.steps import SCHEMES


class FiniteFloat(click.FloatRange):
    """click.FloatRange that also refuses nan and +-inf (which pass its comparisons, or mean nothing here)."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def interval_type(interval: Interval) -> FiniteFloat:
    """The click type of a float option used in `interval`."""
    return FiniteFloat(min=interval.low, max=interval.high, min_open=interval.low_open, max_open=interval.high_open)


def float_range(field: str) -> FiniteFloat:
    """The click type of TrainConfig's float `field`: the range the configuration accepts."""
    return interval_type(FLOAT_RANGES[field])


# --data-dir: an existing folder (a typo must not fall back quietly to the other places searched).
DATA_DIR_TYPE = click.Path(exists=True, file_okay=False, path_type=Path)
SEED = click.IntRange(0, MAX_SEED)

# Options shared by the commands that read a generator.
CHECKPOINT_OPTION_HELP = (
    "A run directory, a checkpoint directory, a generator .safetensors file or an exported .onnx file."
)
CHECKPOINT_OPTION = click.option(
    "--checkpoint", required=True, type=click.Path(path_type=Path), help=CHECKPOINT_OPTION_HELP
)
SAMPLING_DEVICE_OPTION = click.option("--device", type=click.Choice(DEVICES), default="cpu", show_default=True)
NO_EMA_OPTION = click.option(
    "--no-ema", is_flag=True, help="Use the raw generator weights even when the checkpoint has a moving average."
)
SAMPLING_PRECISION_OPTION = click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="fp32",
    show_default=True,
    help="fp32: exactly `acgan.sample`'s images; bf16: faster where the CPU or GPU has bf16 arithmetic, images a few "
    "grey levels from fp32's; auto: the faster of the two here (on a CPU measured once, then cached).",
)


TRUNCATION_OPTION = click.option(
    "--truncation",
    type=FiniteFloat(min=0.0, max=4.0, min_open=True),
    help="The truncation trick: psi in (0, 1] pulls latents toward the mean (--truncation-mode mean), or entries "
    "beyond +-psi (0.1..4) are drawn again (resample, BigGAN's); fidelity for variety [default: none].",
)
TRUNCATION_MODE_OPTION = click.option(
    "--truncation-mode", type=click.Choice(["mean", "resample"]), default="mean", show_default=True
)


def _resolved_sampling_precision(trained: Any, precision: str) -> str:
    """`precision` for sampling `trained`, with `auto` decided here (announced on stderr when it measures)."""
    from acgan.sampling import sampling_precision

    return sampling_precision(trained, precision, announce=lambda line: click.echo(f"note: {line}", err=True)).precision


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="acgan")
def cli() -> None:
    """Train, sample from and inspect class-conditional GANs (AC-GAN)."""


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)


# Choices that live where acgan.config cannot import from (the training package imports the config).
CHOICES_ELSEWHERE: dict[str, list[str]] = {"d_updates": list(SCHEMES)}
CONFIG_FIELD_SPECS = {spec.name: spec for spec in dataclasses.fields(TrainConfig)}
CONFIG_TYPES = typing.get_type_hints(TrainConfig)
F = TypeVar("F", bound=Callable[..., Any])


def config_option(name: str, **changes: Any) -> Callable[[F], F]:
    """The click option of TrainConfig's field `name`, derived from its metadata (acgan.config.fact): its flag, type
    (choices, an integer's bounds, a float's interval, an existing folder, a --x/--no-x pair for a boolean),
    default (shown; None: the preset's or unset) and help. `changes` override click's keyword arguments."""
    spec = CONFIG_FIELD_SPECS[name]
    meta, kinds = spec.metadata, typing.get_args(CONFIG_TYPES[name]) or (CONFIG_TYPES[name],)
    declaration = meta["flag"] or "--" + name.replace("_", "-")
    kwargs: dict[str, Any] = {"help": meta["help"], "metavar": meta["metavar"] or None}
    model_choices = MODEL_SETTINGS[name]["choices"] if name in MODEL_SETTINGS else None
    choices = CHOICES_ELSEWHERE.get(name) or meta["choices"] or model_choices
    if bool in kinds:
        declaration = declaration if "/" in declaration else f"{declaration}/--no-{declaration[2:]}"
    elif choices:
        kwargs["type"] = click.Choice(list(choices() if callable(choices) else choices))
    elif float in kinds:
        kwargs["type"] = float_range(name)
    elif meta["bounds"]:
        kwargs["type"] = click.IntRange(*meta["bounds"])
    elif meta["folder"]:
        kwargs["type"] = DATA_DIR_TYPE
    if spec.default is not None:
        kwargs |= {"default": spec.default, "show_default": True}
    else:
        kwargs["default"] = None
        if meta["preset"]:
            kwargs["help"] += " [default: the preset's]"
    return click.option(declaration, name, **(kwargs | changes))


def config_options(command: F) -> F:
    """Every TrainConfig field with help text as an option of `command`, in the fields' order."""
    for name in reversed([name for name, spec in CONFIG_FIELD_SPECS.items() if spec.metadata.get("help")]):
        command = config_option(name)(command)
    return command


@cli.command()
@config_options
@click.option(
    "--run-dir", type=click.Path(path_type=Path), help="Run directory [default: a new runs/NNNNN-DATASET-PRESET]."
)
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path), help="Continue the run in this directory.")
@click.option(
    "--checkpoint-every",
    "checkpoint_cadence",
    metavar="N|Mmin",
    help="Also checkpoint every N steps (e.g. 500) or every M minutes (e.g. 10min).",
)
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    help="Train data-parallel in this many processes on this machine (torchrun --standalone; one per GPU, or "
    "gloo on the CPU). --batch-size is per process. Resume with the same number.",
)
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration as JSON and exit.")
@click.pass_context
def train(ctx: click.Context, run_dir: Path | None, resume_dir: Path | None, checkpoint_cadence: str | None,
          nproc: int | None, no_progress: bool, dry_run: bool, **options: Any) -> None:  # fmt: skip
    """Train an AC-GAN.

    \b
    Examples:
      acgan train --dataset mnist --preset dcgan --run-dir runs/mnist --epochs 5
      acgan train --dataset fashion-mnist --preset brownlee --log-every 100
      acgan train --dataset ~/pictures/pets --resolution 64 --max-minutes 30
      acgan train --dataset cifar10 --preset odena-cifar10
      acgan train --resume runs/mnist --epochs 10
      acgan train --dataset cifar10 --nproc 4 --batch-size 64    (global batch 256)
    """
    from acgan.training.distributed import launched_world

    world = launched_world()
    if nproc is not None and world.distributed and nproc != world.size:
        raise click.UsageError(f"--nproc {nproc} differs from the {world.size} processes torchrun started")
    config, run_dir = _train_config(ctx, options, run_dir, resume_dir, checkpoint_cadence)
    if dry_run:
        click.echo(json.dumps({"run_dir": str(run_dir), "resume": resume_dir is not None, "train": config.to_dict()},
                              indent=2))  # fmt: skip
        return
    if nproc is not None and nproc > 1 and not world.distributed:
        from acgan.launch import torchrun_train

        args = list((ctx.find_root().obj or {}).get("argv", sys.argv[1:]))
        if resume_dir is None and not _given(ctx, "run_dir"):
            args += ["--run-dir", str(run_dir)]
        ctx.exit(torchrun_train(nproc, args))
    _train_in_this_process(config, run_dir, resume_dir is not None, show_progress=not no_progress)


def _train_config(ctx: click.Context, options: dict[str, Any], run_dir: Path | None, resume_dir: Path | None,
                  cadence: str | None) -> tuple[TrainConfig, Path]:  # fmt: skip
    """The configuration the flags ask for (a new run's, resolved; or the resumed run's with what may change) and
    the run directory."""
    from acgan.training import new_run_dir, read_run_config

    given = {name for name in CONFIG_FIELDS & {p.name for p in ctx.command.params if p.name} if _given(ctx, name)}
    if cadence is not None:
        options.update(_parse_cadence(cadence))
        given |= {"checkpoint_every", "checkpoint_minutes"}
    values = {name: str(options[name]) if isinstance(options[name], Path) else options[name] for name in given}
    if resume_dir is None:
        config = resolve_config(TrainConfig.from_flags(values))
        return config, run_dir or new_run_dir(Path("runs"), config)
    if run_dir is not None:
        raise click.UsageError("use either --resume RUN_DIR or --run-dir, not both")
    fixed = sorted(given - RESUMABLE_FIELDS)
    if fixed:
        flags = ", ".join("--" + name.replace("_", "-") for name in fixed)
        raise click.UsageError(f"{flags} cannot change when resuming (only {', '.join(sorted(RESUMABLE_FIELDS))})")
    return read_run_config(resume_dir).resumed_with(values), resume_dir


def _train_in_this_process(config: TrainConfig, run_dir: Path, resume: bool, show_progress: bool) -> None:
    """Train here (one process, or one torchrun worker): say what starts, train, say how it ended."""
    from acgan.training import train as run_training
    from acgan.training.distributed import broadcast_from_main, join_world, launched_world, leave_world

    if launched_world().distributed:  # a torchrun worker: torchrun passes on one signal, which training turns into
        for sig in (signal.SIGINT, signal.SIGTERM):  # a stop; outside training, torchrun's SIGKILL (30 s later) decides
            signal.signal(sig, signal.SIG_IGN)
    try:
        world = join_world(config.device)
        run_dir = broadcast_from_main(run_dir, world)  # rank 0 numbers a new run directory for everyone
        if world.is_main:
            processes = f" ({world.size} processes, global batch {(config.batch_size or 0) * world.size})"
            click.echo(f"{'resuming' if resume else 'training'} {config.preset} on {dataset_label(config.dataset)} in "
                       f"{run_dir}{processes if world.distributed else ''}")  # fmt: skip
        result = run_training(config, run_dir, resume=resume, show_progress=show_progress and world.is_main)
    finally:
        leave_world()
    if resume and result.step == result.start_step:
        raise AcganError(f"nothing to do: {run_dir} already reached its bound at step {result.step} (stopped by "
                         f"{result.stopped_by}); pass --epochs, --steps or --max-minutes to train further")  # fmt: skip
    if world.is_main:
        click.echo(f"done: {result.step} steps ({result.epoch:.2f} epochs, stopped by {result.stopped_by}) in "
                   f"{result.seconds / 60:.1f} min; checkpoint {result.checkpoint}; samples in {run_dir / 'samples'}")  # fmt: skip


def _parse_cadence(text: str) -> dict[str, Any]:
    """'500' -> every 500 steps; '10min' or '10m' -> every 10 minutes; '0' -> off."""
    value = text.strip().lower()
    try:
        if value.endswith(("min", "m")):
            minutes = float(value.removesuffix("min").removesuffix("m"))
            if minutes not in FLOAT_RANGES["max_minutes"]:  # (0, 1e6]: every so many minutes, never 0
                raise ValueError
            return {"checkpoint_every": 0, "checkpoint_minutes": minutes}
        steps = int(value)
        if steps < 0:
            raise ValueError
        return {"checkpoint_every": steps, "checkpoint_minutes": 0.0}
    except ValueError:
        raise click.BadParameter(f"'{text}' is neither a number of steps (500) nor of minutes (10min)",
                                 param_hint="'--checkpoint-every'") from None  # fmt: skip


@cli.command()
@CHECKPOINT_OPTION
@click.option(
    "--label", default="all", show_default=True, help="Class index, class name, or 'all' (equal numbers per class)."
)
@click.option("--num", type=click.IntRange(min=1), default=100, show_default=True, help="Number of images.")
@config_option("seed")
@click.option("--output", required=True, help="x.png (grid), x.npz (arrays) or DIR/ (one PNG per image).")
@click.option("--force", is_flag=True, help="Replace an existing file, or write into a folder that holds files.")
@SAMPLING_DEVICE_OPTION
@SAMPLING_PRECISION_OPTION
@TRUNCATION_OPTION
@TRUNCATION_MODE_OPTION
@NO_EMA_OPTION
def generate(checkpoint: Path, label: str, num: int, seed: int, output: str, force: bool, device: str,
             precision: str, truncation: float | None, truncation_mode: str, no_ema: bool) -> None:  # fmt: skip
    """Generate images of chosen classes from a checkpoint (nothing else needed).

    \b
    Labels: a class name, or an index; a name wins over an index (classes named "1", "2", ...): write
    index:N or name:X to say which you mean. 'all' gives every class in turn.
    A folder run that was interrupted continues when the same command runs again.
    Examples:
      acgan generate --checkpoint runs/fashion --label Sneaker --num 64 --seed 1 --output sneakers.png
      acgan generate --checkpoint runs/mnist --label all --num 1000 --output digits.npz
    """
    from acgan.device import select_device
    from acgan.labels import label_note, labels_for_request
    from acgan.memory import require_memory, sampling_bytes
    from acgan.outputs import GENERATE_CHUNK, ImageFolder, OutputTarget, write_file
    from acgan.sampling import Truncation, check_seeds, load_generator

    check_seeds(seed, num)
    truncated = Truncation(truncation, truncation_mode) if truncation is not None else None
    target = OutputTarget.parse(output)
    if target.kind != "folder" and not force and target.path.exists():
        raise AcganError(f"{output} exists; pass --force to replace it")
    if target.kind == "png" and num > MAX_GRID_IMAGES:
        raise AcganError(f"--num {num} is too many for one PNG grid (at most {MAX_GRID_IMAGES}); "
                         "write a .npz file or a folder ending in /")  # fmt: skip
    if target.kind == "folder":
        ImageFolder.check(target.path, force)
    _check_writable(target.path if target.kind == "folder" else target.path.parent)
    trained = load_generator(checkpoint, device=select_device(device), prefer_ema=not no_ema)
    info, config = trained.info, trained.generator.config
    labels_for_request(label, num, info, stop=0)  # checks the label and count before any work
    note = label_note(label, info) if label.strip().lower() != "all" else None
    if note:
        click.echo(f"note: {note}", err=True)
    precision = _resolved_sampling_precision(trained, precision)
    if target.kind != "folder":  # one file: every image (uint8) and its encoded copy are held until it is written
        require_memory(2 * num * config.resolution**2 * config.channels + sampling_bytes(config, GENERATE_CHUNK, 64),
                       torch.device("cpu"), f"{num} images of {config.resolution}x{config.resolution}x{config.channels}",
                       "write them to a folder ending in / (streamed in chunks)")  # fmt: skip
    if target.kind == "folder":
        request = {"checkpoint": str(trained.source.resolve()), "step": trained.step, "label": label, "num": num,
                   "seed": seed, "precision": precision,
                   "truncation": [truncation, truncation_mode] if truncated else None}  # fmt: skip
        folder = ImageFolder(target.path, info.class_names, request, num)
        if there := folder.start(force):
            click.echo(f"continuing {output}: {there} of {num} images are already there", err=True)
        folder.fill(trained, label, seed, precision, truncated)
    else:
        write_file(target, trained, label, num, seed, precision, truncated)
    click.echo(f"wrote {num} image(s) to {output}")


MIN_SAMPLES_PER_CLASS = 100  # evaluate warns below this
EXPORT_SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".pth")}
KEEP_ALIVE_S = 65  # seconds an idle HTTP connection stays open in `serve`
MAX_GRID_IMAGES = 10_000  # one PNG grid; more goes to .npz or a folder


def _check_writable(folder: Path) -> None:
    """Create `folder` if needed and check a file can be written in it (before any long work); AcganError if not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise AcganError(f"cannot write to {folder}: {exc.strerror or exc}") from None


@cli.command()
@click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET, show_default=True)
@click.option("--z-dim", type=click.IntRange(*LIMITS["z_dim"]), default=100, show_default=True)
@click.option("--num-classes", type=click.IntRange(2, LIMITS["num_classes"][1]), default=10, show_default=True)
@click.option("--channels", type=click.IntRange(*LIMITS["channels"]), default=1, show_default=True)
@click.option("--resolution", type=click.IntRange(*LIMITS["resolution"]), default=28, show_default=True)
@click.option(
    "--objective",
    type=click.Choice(list(OBJECTIVES)),
    default=Objective.name,
    show_default=True,
    help="Objective whose discriminator heads to include.",
)
@click.option("--spectral-norm", is_flag=True, help="Spectral normalisation on D's layers.")
@click.option("--width", type=click.IntRange(1, LIMITS["width"][1]), help="Base channel count (dcgan).")
def summary(preset: str, z_dim: int, num_classes: int, channels: int, resolution: int, objective: str,
            spectral_norm: bool, width: int | None) -> None:  # fmt: skip
    """Print a Keras-style table of a preset's layers, output shapes and parameter counts.

    Counts include BatchNorm's moving mean and variance, as Keras counts them. The discriminator has the
    heads the objective needs (acgan: source + class).
    """
    from acgan.models import ModelConfig, build_discriminator, build_generator
    from acgan.models.summary import format_summary, keras_param_count, summarize

    heads = OBJECTIVES[objective].heads
    config = ModelConfig(preset, z_dim, num_classes, channels, resolution, width or 0, heads, spectral_norm)
    click.echo(f"objective: {objective} ({OBJECTIVES[objective].description}); D heads: source, {', '.join(heads)}")
    generator, discriminator = build_generator(config), build_discriminator(config)
    z, labels = torch.zeros(2, z_dim), torch.zeros(2, dtype=torch.int64)
    g_total, d_total = keras_param_count(generator), keras_param_count(discriminator)
    click.echo(f"{preset}: {PRESETS[preset].source}\n")
    click.echo(format_summary(f"{preset} generator", summarize(generator, z, labels), g_total) + "\n")
    image = torch.zeros(2, channels, resolution, resolution)
    click.echo(format_summary(f"{preset} discriminator", summarize(discriminator, image), d_total) + "\n")
    click.echo(f"generator params: {g_total:,}\ndiscriminator params: {d_total:,}")


@cli.group()
def classifier() -> None:
    """Reference classifiers that judge generators (never the GAN's own discriminator)."""


@classifier.command(name="train")
@config_option("dataset", required=True, default=None, show_default=False)
@click.option("--epochs", type=click.IntRange(min=1), help="[default: 8 on 60,000 images, up to 40 on small data]")
@config_option("seed")
@click.option("--data-dir", type=DATA_DIR_TYPE, help="Folder holding DATASET/.")
@config_option("resolution")
@config_option("holdout")
@config_option("verify_checksums")
@click.option("--output", type=click.Path(path_type=Path), help="Where to write the weights [default: the cache].")
def classifier_train(dataset: str, epochs: int | None, seed: int, data_dir: Path | None, resolution: int | None,
                     holdout: float, verify_checksums: bool, output: Path | None) -> None:  # fmt: skip
    """Train a data set's reference classifier deterministically and report its test accuracy.

    \b
    Reproduce the shipped weights:
      acgan classifier train --dataset mnist --output src/acgan/evaluation/weights/mnist.safetensors
    """
    from acgan.data import load_dataset
    from acgan.evaluation.classifier import (
        classifier_accuracy,
        classifier_cache_path,
        default_epochs,
        save_classifier,
        train_classifier,
    )

    options: dict[str, Any] = {"data_dir": data_dir, "resolution": resolution, "holdout": holdout,
                               "verify_checksums": verify_checksums, "show_progress": True}  # fmt: skip
    train_set = load_dataset(dataset, "train", **options)
    test_set = load_dataset(dataset, "test", **options)
    target = output or classifier_cache_path(train_set)
    if target.is_dir():
        raise AcganError(f"--output {target} is a folder; give a file name such as {target / 'classifier.safetensors'}")
    _check_writable(target.parent)  # before minutes of training, not after
    epochs = epochs or default_epochs(len(train_set))
    start = time.monotonic()
    model = train_classifier(train_set, epochs=epochs, seed=seed)
    seconds = time.monotonic() - start
    accuracy = classifier_accuracy(model, test_set)
    click.echo(f"{dataset_label(dataset)}: test accuracy {accuracy:.4f} on {len(test_set)} test images after "
               f"{epochs} epochs on {len(train_set)} images ({seconds:.0f} s)")  # fmt: skip
    command = f"acgan classifier train --dataset {dataset} --epochs {epochs} --seed {seed}"
    save_classifier(model, target, train_set.info,
                    {"test_accuracy": accuracy, "epochs": epochs, "seed": seed, "command": command,
                     "train_seconds": round(seconds, 1)})  # fmt: skip
    click.echo(f"wrote {target}")


@cli.command()
@CHECKPOINT_OPTION
@click.option("--format", "fmt", type=click.Choice(["onnx", "torchscript"]), default="onnx", show_default=True)
@click.option("--output", required=True, type=click.Path(path_type=Path), help="G.onnx or G.pt")
@NO_EMA_OPTION
@click.option("--force", is_flag=True, help="Replace an existing file.")
def export(checkpoint: Path, fmt: str, output: Path, no_ema: bool, force: bool) -> None:
    """Export the generator to ONNX or TorchScript, verified against PyTorch before it is written.

    \b
    Inputs z (N, z_dim) float32 and labels (N,) int64, any N; output images (N, C, H, W) in [-1, 1].
    Class names, z size, image shape and the training facts are stored in the file.
      acgan export --checkpoint runs/mnist --format onnx --output mnist-g.onnx
    """
    from acgan.export import export_generator
    from acgan.sampling import load_generator

    suffixes = EXPORT_SUFFIXES[fmt]
    if not output.is_dir() and output.suffix.lower() not in suffixes:
        raise AcganError(f"--output {output}: a {fmt} export is written to a file ending in {' or '.join(suffixes)}")
    if output.is_file() and not force:
        raise AcganError(f"{output} exists; pass --force to replace it")
    if not output.is_dir():  # a folder is refused by export_generator, with the name to give instead
        _check_writable(output.parent)
    trained = load_generator(checkpoint, device=torch.device("cpu"), prefer_ema=not no_ema)
    result = export_generator(trained, fmt, output)
    click.echo(f"wrote {output} ({fmt}); checked on {result['checked_images']} fixed latents: max |difference| "
               f"from PyTorch {result['max_abs_diff']:.2e}")  # fmt: skip


@cli.command()
@click.option("--checkpoint", type=click.Path(path_type=Path), help=CHECKPOINT_OPTION_HELP)
@click.option(
    "--samples",
    type=click.Path(path_type=Path),
    help="Judge another generator's samples instead: an .npz (images, labels[, class_names]), a folder (as acgan "
    "generate writes it, or one folder per class) or an exported .onnx generator; needs --dataset.",
)
@click.option(
    "--num", type=click.IntRange(min=10), default=10_000, show_default=True, help="Samples, balanced over classes."
)
@config_option("seed")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.option("--data-dir", type=DATA_DIR_TYPE, help="Folder holding DATASET/ (real reference data).")
@click.option(
    "--dataset",
    "dataset_path",
    metavar="NAME|PATH",
    help="The data set the samples are judged against (with --samples); with --checkpoint, where its training "
    "folder is now, if it moved [default: the one recorded in the checkpoint].",
)
@click.option("--cas", is_flag=True, help="Also the Classification Accuracy Score (trains two classifiers: minutes).")
@click.option(
    "--inception",
    is_flag=True,
    help="Also FID, KID and IS in the FID Inception-v3's feature space, as "
    "papers report them (needs its weights file; minutes on a CPU, the real images' part cached).",
)
@click.option(
    "--inception-weights",
    type=click.Path(path_type=Path),
    help=f"The FID Inception-v3 weights file (implies --inception) [default: ${WEIGHTS_ENV}].",
)
@click.option("--no-intervals", is_flag=True, help="Skip the 95% bootstrap intervals (seconds).")
@SAMPLING_DEVICE_OPTION
@SAMPLING_PRECISION_OPTION
@NO_EMA_OPTION
def evaluate(checkpoint: Path | None, samples: Path | None, num: int, seed: int, as_json: bool,
             data_dir: Path | None, dataset_path: str | None, cas: bool, inception: bool,
             inception_weights: Path | None, no_intervals: bool, device: str, precision: str,
             no_ema: bool) -> None:  # fmt: skip
    """Measure a generator: conditional accuracy, Frechet and kernel distances, precision/recall, diversity,
    memorisation, each with its 95% interval and beside its real-data value.

    \b
    A checkpoint's samples, or any generator's (--samples with --dataset). Writes eval.json and confusion.png into
    the run directory (beside lone weights; into the samples' folder, or NAME-eval/ beside an .npz or .onnx).
      acgan evaluate --checkpoint runs/mnist
      acgan evaluate --samples samples.npz --dataset cifar10 --cas
      acgan evaluate --checkpoint runs/cifar10 --inception-weights weights-inception-2015-12-05-6726825d.pth
    """
    from acgan.evaluation.evaluate import format_report, report_folder, write_report
    from acgan.evaluation.inception import weights_path

    if (checkpoint is None) == (samples is None):
        raise click.UsageError("give --checkpoint (a run or weights) or --samples (with --dataset), one of the two")
    if samples is not None and not dataset_path:
        raise click.UsageError("--samples needs --dataset: the data set the samples are judged against")
    weights = weights_path(inception_weights) if inception or inception_weights else None  # before any work
    options = (num, seed, as_json, data_dir)
    if samples is not None:
        report, evaluator, drawn = _evaluate_samples(samples, *options, str(dataset_path), not no_intervals)
        folder = samples if samples.is_dir() else samples.with_name(f"{samples.stem}-eval")
    else:
        assert checkpoint is not None
        report, evaluator, drawn = _evaluate_checkpoint(checkpoint, *options, dataset_path, device, precision,
                                                        no_ema, not no_intervals)  # fmt: skip
        folder = report_folder(Path(report["checkpoint"]))
    report.update(evaluator.views(*drawn, seed=seed, cas=cas, inception_weights=weights, show_progress=not as_json))
    click.echo(json.dumps(report) if as_json else format_report(report))  # the results first, whatever happens next
    try:
        done = write_report(report, folder)
    except OSError as exc:
        raise AcganError(f"could not save the results above to {folder}: {exc.strerror or exc}") from None
    for line in done:
        click.echo(line, err=as_json)


def _warn_small(num: int, classes: int) -> None:
    if num // classes < MIN_SAMPLES_PER_CLASS:
        click.echo(f"warning: {num // classes} samples per class: too few for the numbers to mean much (Frechet "
                   "distances and recall are biased at small sizes); compare only evaluations of the same size "
                   "(10000 in the results)", err=True)  # fmt: skip


def _evaluate_checkpoint(checkpoint: Path, num: int, seed: int, as_json: bool, data_dir: Path | None,
                         dataset_path: str | None, device: str, precision: str, no_ema: bool,
                         intervals: bool) -> tuple[dict[str, Any], Any, tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
    """A checkpoint's evaluation, its evaluator and the samples it judged (for the optional views)."""
    from acgan.device import select_device
    from acgan.evaluation.evaluate import load_evaluator
    from acgan.sampling import load_generator

    trained = load_generator(checkpoint, device=select_device(device), prefer_ema=not no_ema)
    _warn_small(num, trained.info.num_classes)
    evaluator = load_evaluator(trained.info, data_dir=data_dir, source=dataset_path, show_progress=not as_json)
    precision = _resolved_sampling_precision(trained, precision)
    if not as_json:
        click.echo("sampling and measuring (a minute or so on a CPU) ...", err=True)
    start = time.monotonic()
    drawn = evaluator.samples_of(trained.generator, num, seed, precision)
    report = evaluator.evaluate_images(*drawn, intervals=intervals)
    report.update(seed=seed, sampling_precision=precision, seconds=round(time.monotonic() - start, 2),
                  checkpoint=str(trained.source), step=trained.step)  # fmt: skip
    return report, evaluator, drawn


def _evaluate_samples(samples: Path, num: int, seed: int, as_json: bool, data_dir: Path | None,
                      dataset_path: str, intervals: bool) -> tuple[dict[str, Any], Any, tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
    """Another generator's samples judged against `dataset_path` (acgan.evaluation.samples), the evaluator and them."""
    from acgan.data.dataset import load_dataset
    from acgan.evaluation.evaluate import load_evaluator
    from acgan.evaluation.samples import load_samples

    info = load_dataset(dataset_path, "train", data_dir=data_dir, show_progress=not as_json).info
    images, labels = load_samples(samples, info, num, seed)
    _warn_small(len(labels), info.num_classes)
    evaluator = load_evaluator(info, data_dir=data_dir, source=dataset_path, show_progress=not as_json)
    report = evaluator.evaluate_images(images, labels, intervals=intervals)
    report.update(samples=str(samples))
    return report, evaluator, (images, labels)


@cli.command(name="presets")
def list_presets() -> None:
    """List the available model presets and which one a run gets when none is named."""
    for name, preset in PRESETS.items():
        kinds = [kind for kind, channels in (("grey", 1), ("colour", 3)) if default_preset(channels) == name]
        default = f" [the default for {' and '.join(kinds)} images]" if kinds else ""
        click.echo(f"{name:<16}{preset.source}{default}")


@cli.command(name="objectives")
def list_objectives() -> None:
    """List the training objectives (`acgan train --objective NAME`)."""
    for name, objective in OBJECTIVES.items():
        click.echo(f"{name:<16}{objective.description}")


@cli.command()
@CHECKPOINT_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(checkpoint: Path, as_json: bool) -> None:
    """Show what a checkpoint holds: data set, classes, image shape, preset, objective and training options."""
    from acgan.sampling import load_generator

    trained = load_generator(checkpoint)
    config, data = trained.generator.config, trained.info
    record = {"weights": str(trained.source), "step": trained.step, "dataset": data.name,
              "class_names": list(data.class_names), "image_shape": [data.channels, data.resolution, data.resolution],
              "data": data.to_dict(), "model": config.to_dict(), "training": trained.training_facts}  # fmt: skip
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    facts = trained.training_facts
    click.echo(f"weights:    {trained.source} (step {trained.step})")
    where = f" from {data.source}" if data.source else ""
    held = f", {data.holdout:.0%} of each class held out for evaluation" if data.holdout else ""
    unverified = ", files not the official release (checksums skipped)" if not data.checksums_verified else ""
    click.echo(f"data:       {data.name}{where}, {data.num_classes} classes, "
               f"{data.channels}x{data.resolution}x{data.resolution}{held}{unverified}")  # fmt: skip
    click.echo(f"classes:    {', '.join(data.class_names)}")
    click.echo(f"preset:     {config.preset} (z {config.z_dim}, width {config.width or 'fixed'}, D heads "
               f"{', '.join(config.heads)}, spectral norm {'on' if config.spectral_norm else 'off'})")  # fmt: skip
    if facts:
        click.echo(
            f"objective:  {facts.get('objective', LEGACY_DEFAULTS['objective'])} (class weight {facts.get('class_weight', 1.0)})"
        )
        own_lines = ("preset", "objective", "class_weight", "precision", "precision_choice")
        shown = {k: "none" if v == "" else v for k, v in facts.items() if k not in own_lines}
        click.echo("training:   " + ", ".join(f"{k} {v}" for k, v in shown.items()))
        click.echo(f"precision:  {_precision_line(facts)}")
    else:
        click.echo("objective:  not recorded (written before acgan recorded it: the paper's acgan objective)")


def _precision_line(facts: dict[str, Any]) -> str:
    """How a generator was trained: 'bf16 (measured: bf16 23.1, fp32 16.8 steps/s)', or the precision alone."""
    from acgan.precision import PrecisionChoice

    try:
        return PrecisionChoice.from_dict(facts.get("precision_choice")).describe()
    except ValueError:  # written before the choice was recorded: the configured precision
        return str(facts.get("precision", "not recorded"))


@cli.command()
@CHECKPOINT_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--max-images", type=click.IntRange(min=1), default=256, show_default=True, help="Images per request.")
@click.option("--timeout", "timeout_s", type=interval_type(SERVE_TIMEOUT_S), default=30.0, show_default=True,
              help="Seconds a request may wait for its images before a 503.")  # fmt: skip
@click.option("--no-batching", is_flag=True, help="Run every request on its own instead of micro-batching them.")
@SAMPLING_DEVICE_OPTION
@SAMPLING_PRECISION_OPTION
@NO_EMA_OPTION
def serve(checkpoint: Path, host: str, port: int, max_images: int, timeout_s: float, no_batching: bool, device: str,
          precision: str, no_ema: bool) -> None:  # fmt: skip
    """Serve a generator: a web page at / and an HTTP API under /api/v1 (schema: /api/v1/openapi.json).

    \b
    Examples:
      acgan serve --checkpoint runs/demo
      curl -o sneakers.png 'http://127.0.0.1:8000/api/v1/generate?label=Sneaker&n=16&seed=3'
    """
    import socket

    import uvicorn

    if not host.strip():  # "" would listen on every interface: say so explicitly with 0.0.0.0 or ::
        raise click.BadParameter("give an address (127.0.0.1: this machine only; 0.0.0.0: every interface)",
                                 param_hint="'--host'")  # fmt: skip

    from acgan.device import select_device
    from acgan.memory import require_memory, sampling_bytes
    from acgan.sampling import load_generator
    from acgan.serving import ServeOptions, create_app

    trained = load_generator(checkpoint, device=select_device(device), prefer_ema=not no_ema)
    require_memory(3 * sampling_bytes(trained.generator.config, max_images, max_images), select_device(device),
                   f"one request of --max-images {max_images} (images, PNG and NPZ copies)",
                   "use a smaller --max-images")  # fmt: skip
    options = ServeOptions(max_images=max_images, timeout_s=timeout_s, max_batch=max(1024, max_images),
                           micro_batching=not no_batching,
                           precision=_resolved_sampling_precision(trained, precision))  # fmt: skip
    app = create_app(trained, options)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:  # bound here: a busy port is one line, not uvicorn's log and traceback; --port 0 gets its real port
        listener = socket.create_server((host, port), family=family, backlog=2048)
    except (OSError, OverflowError) as exc:
        raise AcganError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    bound_port = listener.getsockname()[1]
    shown_host = f"[{host}]" if family == socket.AF_INET6 else host
    if not _loopback(host):
        click.echo(f"warning: listening on {shown_host}: the server is reachable from other machines and has no "
                   "authentication (127.0.0.1 keeps it to this machine)", err=True)  # fmt: skip
    click.echo(f"serving {trained.info.name} {trained.generator.config.preset} (step {trained.step}) from "
               f"{trained.source} at http://{shown_host}:{bound_port}/", err=True)  # fmt: skip
    with listener:
        # Keep-alive longer than clients' own idle expiry (httpx: 5 s, uvicorn's default too): otherwise the server
        # may close a connection just as a client sends its next request on it (a dropped request under load).
        uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_keep_alive=KEEP_ALIVE_S)).run(
            sockets=[listener]
        )


def _loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning every expected failure into one line on stderr and an exit code."""
    from acgan.training.distributed import launched_world

    args = sys.argv[1:] if argv is None else argv
    try:
        code = cli.main(args=args, prog_name="acgan", standalone_mode=False, obj={"argv": args})
        if isinstance(code, int):  # ctx.exit(code) returns here when click is not in standalone mode
            return code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        command = f"acgan {exc.ctx.info_name} --help" if exc.ctx and exc.ctx.parent else "acgan --help"
        click.echo(f"acgan: error: {exc.format_message()} (see {command})", err=True)
        return EXIT_USAGE
    except AcganError as exc:
        if not (exc.said_by_rank_zero and launched_world().rank != 0):  # every process stopped; rank 0 says why
            click.echo(exc.report(), err=True)
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("acgan: interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        click.echo(f"acgan: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except OSError as exc:
        click.echo(f"acgan: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), err=True)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())


def console_main() -> None:
    """Console-script entry point."""
    sys.exit(main())
