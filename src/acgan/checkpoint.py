"""Checkpoints: safetensors weights + JSON metadata, written atomically, loadable without pickle.

A run directory keeps its checkpoints under `checkpoints/`:

    checkpoints/step_00009370/      one immutable directory per checkpoint
        generator.safetensors       G weights; its metadata holds the model config and data set info,
                                    so this one file is enough to generate images
        discriminator.safetensors   D weights
        g_ema.safetensors           moving average of G (only when training with ema_decay > 0)
        train_state.pt              optimizer and RNG state (tensors and plain types: weights_only=True)
        meta.json                   step, epoch, configs, versions
    checkpoints/latest              the name of the newest complete checkpoint directory

Each checkpoint is assembled in a temporary directory, fsynced and renamed into place; only then is
`latest` replaced (also atomically). A crash at any point leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import nn

from acgan.data.dataset import DatasetInfo
from acgan.errors import CheckpointError
from acgan.files import atomic_write_bytes, is_temporary, written_aside
from acgan.models.networks import ModelConfig

FORMAT_VERSION = 1
CHECKPOINTS_DIR = "checkpoints"
LATEST = "latest"
BEST = "best"  # pointer to the best checkpoint by the run's chosen metric; best.json says why
GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
EMA_FILE = "g_ema.safetensors"
TRAIN_STATE_FILE = "train_state.pt"
META_FILE = "meta.json"
CHECKPOINT_NAME = re.compile(r"step_[0-9]{8,19}")  # what `latest` and `best` may hold: a folder name, nothing else
MAX_POINTER_BYTES = 64


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint at `step`: step_00009370."""
    return f"step_{step:08d}"


def read_pointer(root: Path, pointer: str) -> str | None:
    """The checkpoint folder named by `root/pointer` (`latest` or `best`), or None when there is no such file.

    A pointer names a folder inside `root` by name only (step_NNNNNNNN); anything else (a path, `..`, another
    run's folder, a huge file) is refused as damaged, so no command follows it out of the run directory.
    """
    path = root / pointer
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_POINTER_BYTES + 1)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is damaged: a folder where a file naming a checkpoint belongs") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    name = data.decode("ascii", errors="replace").strip()
    if len(data) > MAX_POINTER_BYTES or not CHECKPOINT_NAME.fullmatch(name):
        raise CheckpointError(f"{path} is damaged: it must hold the name of a checkpoint folder in {root} "
                              "(step_NNNNNNNN) and nothing else")  # fmt: skip
    return name


def _tensors_of(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()}


def safetensors_bytes(
    module: nn.Module,
    model_config: ModelConfig,
    info: DatasetInfo,
    step: int,
    training_facts: dict[str, Any] | None = None,
    network: str = "generator",
) -> bytes:
    """Serialise a module's state dict with the configs needed to rebuild it (and how it was trained) in the metadata.

    `network` ("generator" or "discriminator") says which of the pair the file holds."""
    metadata = {
        "format_version": str(FORMAT_VERSION),
        "network": network,
        "model_config": json.dumps(model_config.to_dict()),
        "dataset_info": json.dumps(info.to_dict()),
        "step": str(step),
        "training": json.dumps(training_facts or {}),
    }
    tensors = _tensors_of(module)
    # The checksum of the tensor table and bytes (which do not depend on the metadata) goes into the metadata.
    metadata[WEIGHTS_CHECKSUM] = weights_sha256(save_safetensors_bytes(tensors, metadata=metadata))
    return save_safetensors_bytes(tensors, metadata=metadata)


WEIGHTS_CHECKSUM = "weights_sha256"  # SHA-256 of the tensor table (names, dtypes, shapes, offsets) and bytes
LEGACY_CHECKSUM = "tensors_sha256"  # files written before the table was covered: the tensor bytes only


def weights_sha256(data: bytes) -> str:
    """SHA-256 of a safetensors file's tensors: its header less the metadata (canonical JSON), then the data."""
    header_len = int.from_bytes(data[:8], "little")
    table = {k: v for k, v in json.loads(data[8 : 8 + header_len]).items() if k != "__metadata__"}
    digest = hashlib.sha256(json.dumps(table, sort_keys=True, separators=(",", ":")).encode())
    digest.update(data[8 + header_len :])
    return digest.hexdigest()


@dataclass(frozen=True)
class CheckpointContents:
    """What a training checkpoint holds, as written by the training loop."""

    step: int
    epoch: int
    generator: nn.Module
    discriminator: nn.Module
    g_ema: nn.Module | None
    train_state: dict[str, Any]
    meta: dict[str, Any]
    training_facts: dict[str, Any] = field(default_factory=dict)  # objective and options, for `acgan info`, serving


def save_checkpoint(
    run_dir: Path, contents: CheckpointContents, model_config: ModelConfig, info: DatasetInfo, keep: bool
) -> Path:
    """Write a complete checkpoint directory, point `latest` at it, and prune superseded ones."""
    root = run_dir / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(contents.step)
    files = {
        GENERATOR_FILE: safetensors_bytes(contents.generator, model_config, info, contents.step, contents.training_facts),
        DISCRIMINATOR_FILE: safetensors_bytes(contents.discriminator, model_config, info, contents.step,
                                              contents.training_facts, network="discriminator"),
    }  # fmt: skip
    if contents.g_ema is not None:
        files[EMA_FILE] = safetensors_bytes(contents.g_ema, model_config, info, contents.step, contents.training_facts)
    buffer = io.BytesIO()
    torch.save(contents.train_state, buffer)
    files[TRAIN_STATE_FILE] = buffer.getvalue()
    meta = {**contents.meta, "format_version": FORMAT_VERSION, "step": contents.step, "epoch": contents.epoch,
            "kept": keep, "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}  # fmt: skip
    files[META_FILE] = json.dumps(meta, indent=2).encode()  # written last: its presence marks a complete set
    with written_aside(root / name) as tmp:  # a full disk or a signal: the folder goes, `latest` is untouched
        tmp.mkdir()
        for filename, data in files.items():
            (tmp / filename).write_bytes(data)
    atomic_write_bytes(root / LATEST, name.encode())
    _prune(root, latest=name)
    return root / name


def mark_best(run_dir: Path, checkpoint_dir: Path, record: dict[str, Any]) -> None:
    """Point `checkpoints/best` at `checkpoint_dir` (atomically) and store why in `best.json`."""
    root = run_dir / CHECKPOINTS_DIR
    atomic_write_bytes(
        root / f"{BEST}.json", json.dumps({**record, "checkpoint": checkpoint_dir.name}, indent=2).encode()
    )
    atomic_write_bytes(root / BEST, checkpoint_dir.name.encode())


def read_best(run_dir: Path) -> dict[str, Any] | None:
    """The record written by `mark_best`, or None (also when best.json is unreadable or not such a record)."""
    try:
        record = json.loads((run_dir / CHECKPOINTS_DIR / f"{BEST}.json").read_text())
    except (OSError, ValueError):
        return None
    valid = isinstance(record, dict) and isinstance(record.get("metric"), str) and _is_number(record.get("value"))
    return record if valid else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _prune(root: Path, latest: str) -> None:
    """Delete checkpoints that are neither `latest`, `best` nor kept, and leftovers of interrupted writes.

    With a damaged `best` pointer nothing is deleted: the checkpoint it once named cannot be told apart.
    """
    try:
        best = read_pointer(root, BEST)
    except CheckpointError:
        return
    for path in root.iterdir():
        if is_temporary(path.name) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_dir() and path.name.startswith("step_") and path.name not in (latest, best):
            try:
                kept = json.loads((path / META_FILE).read_text()).get("kept", False)
            except (OSError, ValueError):
                kept = False
            if not kept:
                shutil.rmtree(path, ignore_errors=True)


def resolve_checkpoint_dir(path: Path | str) -> Path:
    """A run directory, its `checkpoints/` folder or a checkpoint directory -> the checkpoint directory."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir() and (path / META_FILE).is_file():
        return path
    for root in (path / CHECKPOINTS_DIR, path):
        name = read_pointer(root, LATEST) if root.is_dir() else None
        if name is not None:
            target = root / name
            if not (target / META_FILE).is_file():
                raise CheckpointError(f"{root / LATEST} names {name}, which is missing or incomplete")
            return target
    raise CheckpointError(f"{path} holds no checkpoint (expected a run directory, or a folder with {META_FILE})")


def read_meta(checkpoint_dir: Path) -> dict[str, Any]:
    """The checkpoint's meta.json, checked for a supported format version."""
    try:
        meta = json.loads((checkpoint_dir / META_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {checkpoint_dir / META_FILE}: {exc}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{checkpoint_dir / META_FILE} is damaged (not a JSON object)")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{checkpoint_dir}: unsupported checkpoint format {version} (this acgan reads {FORMAT_VERSION})"
        )
    return dict(meta)


@dataclass(frozen=True)
class WeightsFile:
    """A safetensors file's tensors and the configs stored in its metadata."""

    tensors: dict[str, torch.Tensor]
    model_config: ModelConfig
    info: DatasetInfo
    step: int
    training_facts: dict[str, Any] = field(default_factory=dict)  # empty in files written before it was recorded
    network: str = "generator"  # or "discriminator"


def read_weights(path: Path) -> WeightsFile:
    """Read a safetensors weights file written by acgan; CheckpointError naming the file on any problem."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    try:
        tensors = load_safetensors_bytes(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        metadata = header.get("__metadata__") or {}
    except (SafetensorError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    try:
        if metadata.get("format_version") != str(FORMAT_VERSION):
            raise KeyError("format_version")
        model_config = ModelConfig.from_dict(json.loads(metadata["model_config"]))
        info = DatasetInfo.from_dict(json.loads(metadata["dataset_info"]))
        step = int(metadata.get("step", 0))
        training = json.loads(metadata.get("training", "{}"))
        if not isinstance(training, dict):
            raise TypeError("training facts are not a JSON object")
    except KeyError as exc:
        raise CheckpointError(f"{path} lacks acgan metadata ({exc}); was it written by acgan?") from None
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} has invalid acgan metadata: {exc}") from None
    shape = (model_config.num_classes, model_config.channels, model_config.resolution)
    if (info.num_classes, info.channels, info.resolution) != shape or len(info.class_names) != info.num_classes:
        raise CheckpointError(f"{path} has inconsistent metadata: the model has {shape[0]} classes of "
                              f"{shape[1]}x{shape[2]}x{shape[2]} images, the data set {info.num_classes} "
                              f"({len(info.class_names)} class names) of "
                              f"{info.channels}x{info.resolution}x{info.resolution}")  # fmt: skip
    if WEIGHTS_CHECKSUM in metadata:
        intact = weights_sha256(data) == metadata[WEIGHTS_CHECKSUM]
    else:  # older files: the tensor bytes only; files from before checksums: nothing to check
        legacy = metadata.get(LEGACY_CHECKSUM)
        intact = legacy is None or hashlib.sha256(data[8 + header_len :]).hexdigest() == legacy
    if not intact:
        raise CheckpointError(f"{path} is damaged: its weights do not match the checksum recorded when it was "
                              "written")  # fmt: skip
    # Files written before the network was recorded: a discriminator is the one with a source head.
    network = metadata.get("network") or (
        "discriminator" if any(k.startswith("adv_head.") for k in tensors) else "generator"
    )
    return WeightsFile(tensors, model_config, info, step, training, str(network))


def load_state(module: nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Load `tensors` into `module` strictly; a config/weights mismatch becomes a one-line CheckpointError."""
    check_state(module, tensors, source)
    module.load_state_dict(tensors, strict=True)


def check_state(module: nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """CheckpointError unless `tensors` have exactly `module`'s names and shapes. `module` may live on the meta
    device: a configuration can then be checked against the weights before its memory is allocated."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [k for k in expected if k in tensors and tuple(tensors[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or mismatched:
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing[:3])}" if missing else "",
                f"unexpected {', '.join(unexpected[:3])}" if unexpected else "",
                f"shape mismatch for {', '.join(mismatched[:3])}" if mismatched else "",
            )
            if part
        )
        raise CheckpointError(f"{source}: weights do not match the configuration stored with them ({detail})")


def load_train_state(checkpoint_dir: Path) -> dict[str, Any]:
    """Optimizer/RNG state of a checkpoint, checked against meta.json's checksum and loaded with weights_only=True
    (no pickled code runs, and no advice to run it)."""
    path = checkpoint_dir / TRAIN_STATE_FILE
    damaged = (f"{path} is damaged or was not written by acgan; this checkpoint cannot resume training (its weights "
               "can still be sampled from)")  # fmt: skip
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    checksums = read_meta(checkpoint_dir).get("sha256")
    expected = checksums.get(TRAIN_STATE_FILE) if isinstance(checksums, dict) else None
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(damaged)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:  # torch raises several unrelated types for damaged files; its text advises unsafe loading
        raise CheckpointError(damaged) from None
    if not isinstance(state, dict):
        raise CheckpointError(damaged)
    return state
