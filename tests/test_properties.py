"""Property-based tests (Hypothesis) of every parser of outside bytes: each returns valid data or raises the
project's own error type (AcganError and its subclasses), never anything else.

CI runs a fixed, derandomised set of examples; `HYPOTHESIS_PROFILE=explore pytest tests/test_properties.py`
searches far more widely (random seeds, 2,000 examples per property).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save as save_safetensors

from acgan.checkpoint import (
    META_FILE,
    TRAIN_STATE_FILE,
    read_best,
    read_meta,
    read_weights,
    resolve_checkpoint_dir,
    safetensors_bytes,
)
from acgan.config import CONFIG_FIELDS
from acgan.data.cifar import RECORD_BYTES, read_cifar_split
from acgan.data.dataset import DatasetInfo
from acgan.data.folders import decode_folder, scan_folder
from acgan.data.idx import parse_idx, read_idx
from acgan.data.images import UnusableImage, decode_image
from acgan.errors import AcganError
from acgan.labels import labels_for_request, resolve_label
from acgan.models import ModelConfig, build_generator
from acgan.sampling import load_generator
from acgan.training.loop import read_run_config
from acgan.training.run_writer import RunWriter
from acgan.visualize import plot_losses, read_jsonl

# JSON values of every shape: what a hand-edited or damaged file may hold.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    """`data` with bytes overwritten at (position, value) pairs and optionally truncated at `cut`."""
    buffer = bytearray(data)
    for position, value in edits:
        if buffer:
            buffer[position % len(buffer)] = value
    return bytes(buffer[:cut] if cut is not None else buffer)


edits = st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), max_size=6)
cuts = st.none() | st.integers(0, 4096)


# ---- IDX (MNIST, Fashion-MNIST) ---------------------------------------------------------------------------------


def idx_bytes(shape: tuple[int, ...], payload: bytes, type_code: int = 8) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape) + payload


@given(st.binary(max_size=200))
def test_parse_idx_on_any_bytes(data: bytes) -> None:
    try:
        array = parse_idx(data)
    except AcganError:
        return
    assert array.dtype == np.uint8 and array.size == len(data) - 4 - 4 * array.ndim


@given(
    shape=st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=6).map(tuple),
    payload=st.binary(max_size=64),
    type_code=st.sampled_from([8, 8, 8, 9, 0x0D]),
)
def test_parse_idx_on_hostile_headers(shape: tuple[int, ...], payload: bytes, type_code: int) -> None:
    """Dimensions up to 2^32 - 1 each: their product must not overflow into an accepted size."""
    data = idx_bytes(shape, payload, type_code)
    try:
        array = parse_idx(data)
    except AcganError:
        return
    assert array.shape == shape and array.nbytes == len(payload)


@given(edit=edits, cut=cuts, compress=st.booleans())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_read_idx_on_damaged_files(tmp_path: Path, edit: list[tuple[int, int]], cut: int | None,
                                   compress: bool) -> None:  # fmt: skip
    payload = idx_bytes((3, 4, 4), bytes(range(48)))
    raw = gzip.compress(payload, mtime=0) if compress else payload
    path = tmp_path / "images.idx.gz"
    path.write_bytes(mutate(raw, edit, cut))
    try:
        array = read_idx(path)
    except AcganError:
        return
    assert array.dtype == np.uint8


# ---- CIFAR-10 binary ---------------------------------------------------------------------------------------------


@given(
    records=st.lists(st.binary(min_size=RECORD_BYTES, max_size=RECORD_BYTES), min_size=0, max_size=3),
    tail=st.binary(max_size=8),
    meta=st.none() | st.text(max_size=80),
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_cifar_binary_folders(tmp_path: Path, records: list[bytes], tail: bytes, meta: str | None) -> None:
    folder = tmp_path / "cifar"
    folder.mkdir(exist_ok=True)
    (folder / "test_batch.bin").write_bytes(b"".join(records) + tail)
    meta_path = folder / "batches.meta.txt"
    meta_path.unlink(missing_ok=True)
    if meta is not None:
        meta_path.write_text(meta, errors="replace")
    try:
        split = read_cifar_split(folder, "test", verify_checksums=False)
    except AcganError:
        return
    assert split.pixels.shape == (len(split.labels), 32, 32, 3) and split.pixels.dtype == np.uint8
    assert len(split.labels) and split.labels.min() >= 0 and split.labels.max() < len(split.class_names)
    assert len(set(split.class_names)) == len(split.class_names), split.class_names


@given(edit=edits, cut=cuts, verify=st.booleans())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_cifar_archives(tmp_path: Path, edit: list[tuple[int, int]], cut: int | None, verify: bool) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("test_batch.bin", bytes(2 * RECORD_BYTES)), ("batches.meta.txt", b"a\nb\n")):
            member = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(mutate(buffer.getvalue(), edit, cut))
    try:
        split = read_cifar_split(archive, "test", verify_checksums=verify)
    except AcganError:
        return
    assert split.pixels.shape[1:] == (32, 32, 3)


# ---- image files and folders -------------------------------------------------------------------------------------


def encoded_images() -> dict[str, bytes]:
    """One small valid file per supported format (and PNG modes that take other code paths)."""
    rng = np.random.default_rng(0)
    files = {}
    for name, mode, fmt in (("rgb.png", "RGB", "PNG"), ("grey.png", "L", "PNG"), ("alpha.png", "RGBA", "PNG"),
                            ("wide.jpg", "RGB", "JPEG"), ("photo.webp", "RGB", "WEBP"), ("old.bmp", "RGB", "BMP"),
                            ("anim.gif", "P", "GIF"), ("deep.png", "I;16", "PNG")):  # fmt: skip
        channels = {"RGB": 3, "RGBA": 4}.get(mode, 1)
        pixels = rng.integers(0, 256, (9, 13, channels) if channels > 1 else (9, 13), dtype=np.uint8)
        picture = Image.fromarray(pixels).convert(mode)
        buffer = io.BytesIO()
        picture.save(buffer, format=fmt)
        files[name] = buffer.getvalue()
    return files


ENCODED = encoded_images()


@given(name=st.sampled_from(sorted(ENCODED)), edit=edits, cut=cuts, resolution=st.sampled_from([4, 8, 17]))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_decode_image_on_damaged_files(tmp_path: Path, name: str, edit: list[tuple[int, int]], cut: int | None,
                                       resolution: int) -> None:  # fmt: skip
    path = tmp_path / name
    path.write_bytes(mutate(ENCODED[name], edit, cut))
    try:
        array, grey = decode_image(path, resolution)
    except UnusableImage as exc:
        assert str(exc)  # a reason for the summary line
        return
    assert array.shape == (resolution, resolution, 3) and array.dtype == np.uint8 and isinstance(grey, bool)


@given(data=st.binary(max_size=300), suffix=st.sampled_from([".png", ".jpg", ".gif", ".bmp", ".webp"]))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_decode_image_on_any_bytes(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"x{suffix}"
    path.write_bytes(data)
    try:
        array, _ = decode_image(path, 8)
    except UnusableImage:
        return
    assert array.shape == (8, 8, 3)


@given(
    files=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", ".hidden", "a/deeper"]),
                  st.sampled_from([*sorted(ENCODED), "empty.png", "notes.txt"]), edits),
        min_size=0, max_size=8,
    )
)  # fmt: skip
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)
def test_image_folders_with_damaged_files(tmp_path_factory: pytest.TempPathFactory,
                                          files: list[tuple[str, str, list[tuple[int, int]]]]) -> None:  # fmt: skip
    """A folder of good, damaged and stray files: a usable data set (bad files skipped) or one DataError."""
    from acgan.data import load_dataset

    root = tmp_path_factory.mktemp("folder")
    for index, (folder, name, damage) in enumerate(files):
        target = root / folder / f"{index}-{name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"" if name == "empty.png" else mutate(ENCODED.get(name, b"text"), damage, None))
    try:
        dataset = load_dataset(str(root), "train", resolution=8, holdout=0.0, show_progress=False)
    except AcganError:
        return
    info = dataset.info
    assert info.num_classes >= 2 and len(info.class_names) == info.num_classes
    assert dataset.pixels.shape[1:] == (8, 8, info.channels) and len(dataset) >= 1
    assert int(dataset.labels.min()) >= 0 and int(dataset.labels.max()) < info.num_classes


@given(index=json_values, pixels=st.binary(max_size=400))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_damaged_decode_cache_index(tmp_path_factory: pytest.TempPathFactory, index: Any, pixels: bytes) -> None:
    """The decode cache's index.json and pixel file, damaged: rebuilt or one DataError."""
    root = tmp_path_factory.mktemp("folder")
    for name, data in (("a/1.png", ENCODED["rgb.png"]), ("b/2.png", ENCODED["grey.png"])):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    cache = tmp_path_factory.mktemp("cache")
    scan = scan_folder(root)
    decode_folder(scan, 8, cache, show_progress=False)
    (target,) = cache.iterdir()
    (target / "index.json").write_text(json.dumps(index))
    (target / "pixels.u8").write_bytes(pixels)
    try:
        decoded = decode_folder(scan, 8, cache, show_progress=False)
    except AcganError:
        return
    assert decoded.pixels.shape[1:] == (8, 8, 3) and len(decoded.class_index) == len(decoded.pixels)


# ---- checkpoints: safetensors metadata, meta.json, train state ----------------------------------------------------

TINY_MODEL = ModelConfig("dcgan", z_dim=4, num_classes=2, channels=1, resolution=16, width=2)
TINY_INFO = DatasetInfo("tiny", 2, 1, 16, ("a", "b"))


def tiny_weights() -> bytes:
    return safetensors_bytes(build_generator(TINY_MODEL), TINY_MODEL, TINY_INFO, step=3)


TINY_WEIGHTS = tiny_weights()


def header_of(data: bytes) -> dict[str, Any]:
    return dict(json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")]))


@given(
    field=st.sampled_from(["model_config", "dataset_info", "step", "training", "format_version", "weights_sha256"]),
    replacement=json_values,
    as_json=st.booleans(),
    merge=st.booleans(),
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_safetensors_metadata(tmp_path: Path, field: str, replacement: Any, as_json: bool, merge: bool) -> None:
    """Any value in any metadata field: a working generator or one CheckpointError (before allocating)."""
    from safetensors.torch import load

    metadata = dict(header_of(TINY_WEIGHTS)["__metadata__"])
    original = metadata[field]
    if merge and isinstance(replacement, dict) and field in ("model_config", "dataset_info", "training"):
        value: Any = {**json.loads(original), **replacement}
    else:
        value = replacement
    metadata[field] = json.dumps(value) if as_json or not isinstance(value, str) else value
    metadata.pop("weights_sha256", None) if field != "weights_sha256" else None
    path = tmp_path / "g.safetensors"
    path.write_bytes(save_safetensors(load(TINY_WEIGHTS), metadata=metadata))
    try:
        trained = load_generator(path)
    except AcganError:
        return
    config = trained.generator.config
    assert trained.info.num_classes == config.num_classes == len(trained.info.class_names)
    images = trained.sample(torch.arange(config.num_classes) % config.num_classes, seed=0)
    assert images.shape == (config.num_classes, config.channels, config.resolution, config.resolution)


@given(edit=edits, cut=st.none() | st.integers(0, len(TINY_WEIGHTS)))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_safetensors_bytes_damaged(tmp_path: Path, edit: list[tuple[int, int]], cut: int | None) -> None:
    path = tmp_path / "g.safetensors"
    damaged = mutate(TINY_WEIGHTS, edit, cut)
    path.write_bytes(damaged)
    try:
        weights = read_weights(path)
    except AcganError:
        return
    # The tensors are checksummed: they pass only intact (or when an edit removed the checksum's very key).
    from safetensors.torch import load

    original = load(TINY_WEIGHTS)
    intact = weights.tensors.keys() == original.keys() and all(
        torch.equal(weights.tensors[k], original[k]) for k in original
    )
    assert intact or "weights_sha256" not in header_of(damaged).get("__metadata__", {})


@given(meta=json_values, latest=st.text(max_size=30), state=st.binary(max_size=64))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_checkpoint_folder_files(
    tmp_path_factory: pytest.TempPathFactory, meta: Any, latest: str, state: bytes
) -> None:
    """meta.json, the `latest` pointer and train_state.pt with any content: readable or one CheckpointError."""
    from acgan.checkpoint import load_train_state

    run = tmp_path_factory.mktemp("run")
    folder = run / "checkpoints" / "step_00000001"
    folder.mkdir(parents=True)
    (folder / META_FILE).write_text(json.dumps(meta))
    (folder / TRAIN_STATE_FILE).write_bytes(state)
    (run / "checkpoints" / "latest").write_text(latest, errors="replace")
    for action in (lambda: resolve_checkpoint_dir(run), lambda: read_meta(folder), lambda: load_train_state(folder),
                   lambda: load_generator(run)):  # fmt: skip
        with contextlib.suppress(AcganError):
            action()


# ---- the run's JSON files ----------------------------------------------------------------------------------------


@given(
    config=json_values,
    merge=st.dictionaries(
        st.sampled_from(["train", "steps", "seed", "batch_size", "lr_g", "preset", "dataset", "epochs"]), json_values
    ),
)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_run_config_json(tmp_path: Path, config: Any, merge: dict[str, Any]) -> None:
    """config.json (what --resume reads): a valid TrainConfig or one AcganError."""
    train = {"dataset": "mnist", "preset": "dcgan", "steps": 5, "epochs": None, **merge}
    for content in (config, {"train": train}, {"train": {**train, **(config if isinstance(config, dict) else {})}}):
        (tmp_path / "config.json").write_text(json.dumps(content))
        with contextlib.suppress(AcganError):
            read_run_config(tmp_path)


@given(lines=st.lists(json_values.map(json.dumps) | st.text(max_size=30), max_size=8))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
def test_metrics_jsonl(tmp_path: Path, lines: list[str]) -> None:
    """metrics.jsonl with any lines: records are dicts; resume can trim it; the plots draw or skip."""
    from acgan.visualize import plot_eval

    path = tmp_path / "metrics.jsonl"
    text = "\n".join(line.replace("\n", " ") for line in lines)
    path.write_text(text, errors="replace")
    assert all(isinstance(record, dict) for record in read_jsonl(path))
    writer = RunWriter(tmp_path)
    writer.truncate_metrics(after_step=3)
    assert all(isinstance(record.get("step", 0), int | float) for record in read_jsonl(path))
    path.write_text(text, errors="replace")
    plot_losses(path, tmp_path / "losses.png")
    plot_eval(path, tmp_path / "eval.png")


@given(best=json_values)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_best_json(tmp_path: Path, best: Any) -> None:
    (tmp_path / "checkpoints").mkdir(exist_ok=True)
    (tmp_path / "checkpoints" / "best.json").write_text(json.dumps(best))
    record = read_best(tmp_path)
    assert record is None or (isinstance(record, dict) and isinstance(record.get("value"), int | float))


# ---- labels and HTTP query parameters ----------------------------------------------------------------------------


@given(
    label=st.text(max_size=12)
    | st.text(st.characters(categories=["Nd", "No"]), max_size=3)
    | st.integers(-(2**70), 2**70).map(str),
    num=st.integers(-5, 50),
)
@example(label="²", num=1)  # str.isdigit() is true for it, int() refuses it
def test_labels_from_any_text(label: str, num: int) -> None:
    info = DatasetInfo("digits", 10, 1, 8, tuple(str(k) for k in range(10)))
    try:
        index = resolve_label(label, info)
    except AcganError:
        pass
    else:
        assert 0 <= index < 10
    try:
        labels = labels_for_request(label, num, info)
    except AcganError:
        return
    assert len(labels) == num and all(0 <= k < 10 for k in labels)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from fastapi.testclient import TestClient

    from acgan.serving import ServeOptions, create_app

    path = tmp_path_factory.mktemp("served") / "g.safetensors"
    path.write_bytes(TINY_WEIGHTS)
    with TestClient(create_app(load_generator(path), ServeOptions(max_images=32)),
                    raise_server_exceptions=False) as test_client:  # fmt: skip
        yield test_client


query_values = (
    st.text(max_size=10)
    | st.integers(-(2**70), 2**70).map(str)
    | st.floats().map(str)
    | st.sampled_from(["png", "npz", "a", "b", "0", "1", "", "all", "1e3", "0x10", "-0", " 1"])
)
query_names = st.sampled_from(["label", "n", "seed", "format", "columns", "scale", "seed_a", "seed_b", "steps",
                               "rows", "x"])  # fmt: skip


@given(
    path=st.sampled_from(["/api/v1/generate", "/api/v1/interpolate", "/api/v1/class-sweep", "/api/v1/info",
                          "/healthz", "/", "/api/v1/nothing"]),
    query=st.lists(st.tuples(query_names, query_values), max_size=5),
    headers=st.dictionaries(st.sampled_from(["content-length", "accept", "x-forwarded-for"]),
                            st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12), max_size=2),
)  # fmt: skip
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_http_query_parameters(client: Any, path: str, query: list[tuple[str, str]], headers: dict[str, str]) -> None:
    """Any query string and headers: an answer (200) or a client error (4xx) with a JSON reason, never a 5xx."""
    from urllib.parse import urlencode

    url = path + ("?" + urlencode(query) if query else "")
    response = client.get(url, headers=headers)
    assert response.status_code < 500, (url, headers, response.status_code, response.text[:200])
    if response.status_code >= 400:
        assert "detail" in response.json()


@given(report=json_values, merge=st.booleans())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_eval_json_beside_served_weights(tmp_path: Path, report: Any, merge: bool) -> None:
    """eval.json (shown by the server's /api/v1/info): its summary, or nothing, whatever the file holds."""
    from acgan.serving.app import read_metrics

    path = tmp_path / "g.safetensors"
    path.write_bytes(TINY_WEIGHTS)
    content = {"num_samples": 10, "metrics": report} if merge else report
    (tmp_path / "eval.json").write_text(json.dumps(content))
    summary = read_metrics(load_generator(path))
    assert summary is None or (isinstance(summary, dict) and "metrics" in summary)
    json.dumps(summary)  # served as JSON


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained 2 steps with options that differ from every default the reader could fall back to."""
    from acgan.config import TrainConfig
    from acgan.training import train
    from tests.helpers import make_folder

    root = tmp_path_factory.mktemp("edited")
    folder = make_folder(root / "data", per_class=8, size=16)
    train(TrainConfig(dataset=str(folder), batch_size=8, width=4, steps=2, epochs=None, device="cpu", precision="fp32",
                      tensorboard=False, lr_g=5e-4, lr_d=3e-4, r1=0.5, seed=3, ema_decay=0.99),
          root / "run", show_progress=False)  # fmt: skip
    return root / "run"


@given(removed=st.sets(st.sampled_from(sorted(CONFIG_FIELDS)), min_size=1))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
def test_a_config_json_with_fields_removed_reads_what_the_run_used(
    trained_run: Path, tmp_path_factory: pytest.TempPathFactory, removed: set[str]
) -> None:
    """Any fields removed from config.json come back as the run trained with them (the checkpoint's record), or
    reading fails with one AcganError: never as a default."""
    import shutil

    run = tmp_path_factory.mktemp("copy") / "run"
    shutil.copytree(trained_run, run)
    record = json.loads((run / "config.json").read_text())
    original = dict(record["train"])
    record["train"] = {k: v for k, v in original.items() if k not in removed}
    (run / "config.json").write_text(json.dumps(record))
    try:
        config = read_run_config(run)
    except AcganError:
        return
    assert config.to_dict() == original


@given(names=st.lists(st.text(alphabet="eé\u0301aA\u0300 -", min_size=1, max_size=4), min_size=2, max_size=5))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
def test_class_folder_names_are_distinct_after_normalisation_or_refused(
    tmp_path_factory: pytest.TempPathFactory, names: list[str]
) -> None:
    """Folder names written with and without combining accents: scanned classes are distinct once NFC-normalised
    (so each can be asked for by name), or the scan refuses them in one DataError."""
    import unicodedata

    from acgan.errors import DataError

    root = tmp_path_factory.mktemp("names")
    for name in dict.fromkeys(name for name in names if name.strip(" .-") and not name.startswith(".")):
        (root / name).mkdir(exist_ok=True)
        Image.new("RGB", (8, 8)).save(root / name / "a.png")
    try:
        scan = scan_folder(root)
    except DataError:
        return
    normalised = [unicodedata.normalize("NFC", name) for name in scan.class_names]
    assert len(set(normalised)) == len(normalised)
