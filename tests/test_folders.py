"""Labelled image folders, CIFAR-10 binary files and colour end to end.

Everything here runs on a fresh machine: the folders and binary files are generated. Tests on the real
CIFAR-10 images in ../shared/data skip where those are absent.
"""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from acgan.config import TrainConfig
from acgan.data import load_dataset
from acgan.data.batches import step_indices
from acgan.data.cifar import RECORD_BYTES
from acgan.data.folders import decode_folder, scan_folder
from acgan.errors import AcganError, DataError
from acgan.models.dcgan import stage_plan
from acgan.models.networks import ModelConfig
from acgan.models.presets import PRESETS, build_discriminator, build_generator
from acgan.training import train
from tests.conftest import REPO_ROOT, assert_same_weights
from tests.helpers import cli_output, make_folder, make_image

SHARED = REPO_ROOT.parent / "shared" / "data"


def png_with_size(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height (a decompression bomb's header), with a tiny body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )


# --- folders -------------------------------------------------------------------------------------------------


def test_folder_gives_sorted_classes_colour_and_a_stratified_holdout(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "shapes")
    train_set = load_dataset(str(root), "train")
    test_set = load_dataset(str(root), "test")
    info = train_set.info
    assert info.class_names == ("circle", "square", "triangle")
    assert (info.num_classes, info.channels, info.resolution, info.holdout) == (3, 3, 32, 0.1)
    assert info.source == str(root.resolve())
    assert train_set.labels.bincount().tolist() == [18, 18, 18]  # 10% of each class held out
    assert test_set.labels.bincount().tolist() == [2, 2, 2]
    images = train_set.images
    assert images.shape == (54, 3, 32, 32) and images.min() >= -1 and images.max() <= 1
    # The class colour survives decoding: the centre of a "square" image is green.
    centre = train_set.batch(torch.tensor([int((train_set.labels == 1).nonzero()[0])]))[0, :, 12, 12]
    assert centre[1] > 0.4 and centre[0] < -0.4


def test_grey_folders_give_one_channel_and_resolution_resizes(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "grey", grey=True, size=40)
    data = load_dataset(str(root), "train", resolution=16)
    assert (data.info.channels, data.info.resolution) == (1, 16)
    assert data.images.shape[1:] == (1, 16, 16)


def test_mixed_sizes_default_to_64_and_are_centre_cropped(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "mixed", per_class=4)
    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, 20:40] = 255  # a white centre square between black side bands
    Image.fromarray(wide).save(root / "circle" / "wide.png")
    data = load_dataset(str(root), "train", holdout=0)
    assert data.info.resolution == 64  # the images do not share one size
    picture = data.batch(torch.arange(len(data)))[data.labels == 0]
    # The centre crop of the wide image is white (its edges blend a little with the bands: Lanczos' support).
    assert any(bool((image[:, 4:-4, 4:-4] > 0.9).all()) for image in picture)


def test_train_and_test_folders_are_used_as_given(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "split", split=True)
    train_set, test_set = load_dataset(str(root), "train"), load_dataset(str(root), "test")
    assert (len(train_set), len(test_set), train_set.info.holdout) == (45, 15, 0.0)


def test_bad_files_are_skipped_with_one_summary(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "messy", per_class=6)
    (root / "circle" / "empty.png").write_bytes(b"")
    good = (root / "circle" / "000.png").read_bytes()
    (root / "circle" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "square" / "fake.jpg").write_text("this is not a JPEG")
    (root / "square" / "notes.txt").write_text("labels by hand")
    (root / "square" / ".DS_Store").write_bytes(b"\0\1")
    (root / "triangle" / "bomb.png").write_bytes(png_with_size(40_000, 40_000))
    (root / "README.md").write_text("a file beside the class folders")
    (root / "empty-class").mkdir()
    data = load_dataset(str(root), "train", holdout=0)
    assert data.info.class_names == ("circle", "square", "triangle")  # the empty class folder is left out
    assert len(data) == 18
    summary = data.notes[0]
    assert summary.startswith("skipped 7 of 25 files")
    for reason in ("empty (0 bytes)", "truncated or damaged", "not a readable image", "not an image file",
                   "hidden", "too large to decode safely", "not in a class folder"):  # fmt: skip
        assert reason in summary, summary
    assert "class folder(s) without usable images left out: empty-class" in data.notes[1]


def test_files_that_vanish_during_the_scan_are_skipped(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "vanish", per_class=4)
    scan = scan_folder(root)
    (root / "square" / "002.png").unlink()
    decoded = decode_folder(scan, 32, tmp_path / "cache", show_progress=False)
    assert decoded.pixels.shape[0] == 11
    assert ("square/002.png", "vanished during the scan") in decoded.skipped


@pytest.mark.parametrize("layout", ["one class", "nothing usable", "no class folders"])
def test_unusable_folders_fail_with_one_line(tmp_path: Path, layout: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "bad"
    if layout == "one class":
        make_folder(root, classes=("only",), per_class=3)
        expected = "an AC-GAN needs at least two"
    elif layout == "nothing usable":
        for name in ("a", "b"):
            (root / name).mkdir(parents=True)
            (root / name / "x.png").write_text("not an image")
        expected = "no usable training images"
    else:
        root.mkdir()
        (root / "x.png").write_bytes(b"")
        expected = "has no class folders"
    with pytest.raises(DataError, match=expected):
        load_dataset(str(root), "train")
    code, output = cli_output(
        ["train", "--dataset", str(root), "--steps", "1", "--run-dir", str(tmp_path / "r")], capsys
    )
    assert code == 1 and expected in output and "Traceback" not in output
    assert [line.startswith("acgan: error:") for line in output.strip().splitlines()][-1:] == [True]
    assert sum("acgan: error:" in line for line in output.splitlines()) == 1


def test_decode_cache_is_reused_and_follows_the_content(tmp_path: Path, isolated_cache: Path) -> None:
    root = make_folder(tmp_path / "cached", per_class=5)
    first = load_dataset(str(root), "train", holdout=0)
    caches = sorted((isolated_cache / "folders").glob("cached-*px"))
    assert len(caches) == 1
    again = load_dataset(str(root), "train", holdout=0)
    assert np.array_equal(np.asarray(first.pixels), np.asarray(again.pixels))
    assert sorted((isolated_cache / "folders").glob("cached-*px")) == caches  # no second decode
    make_image(0, 99).save(root / "circle" / "new.png")
    grown = load_dataset(str(root), "train", holdout=0)
    assert len(grown) == len(first) + 1
    assert len(list((isolated_cache / "folders").glob("cached-*px"))) == 2


def test_an_unwritable_decode_cache_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_folder(tmp_path / "shapes", per_class=4)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(blocker))
    with pytest.raises(DataError, match=r"cannot write the decode cache .*ACGAN_CACHE_DIR"):
        load_dataset(str(root), "train", resolution=16)


def test_unknown_names_and_missing_paths_fail_clearly() -> None:
    with pytest.raises(DataError, match=r"not a registered name .*cifar10.*no such file or folder"):
        load_dataset("no-such-dataset", "train")


# --- CIFAR-10 binary -----------------------------------------------------------------------------------------


def write_cifar(folder: Path, per_file: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Tiny CIFAR-10-format files (5 train batches, 1 test batch); returns the train pixels (N, 32, 32, 3) and labels."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    all_pixels, all_labels = [], []
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = np.arange(per_file, dtype=np.uint8) % 10
        pixels = rng.integers(0, 256, (per_file, 32, 32, 3), dtype=np.uint8)
        planes = pixels.transpose(0, 3, 1, 2).reshape(per_file, -1)  # R, G, B planes
        (folder / name).write_bytes(np.concatenate([labels[:, None], planes], axis=1).tobytes())
        if name != "test_batch.bin":
            all_pixels.append(pixels)
            all_labels.append(labels)
    (folder / "batches.meta.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n\n")
    return np.concatenate(all_pixels), np.concatenate(all_labels)


def test_cifar_files_that_are_not_official_are_refused_unless_told(tmp_path: Path) -> None:
    pixels, labels = write_cifar(tmp_path / "mine")
    with pytest.raises(DataError, match=r"not the official CIFAR-10 binary release.*--skip-checksums"):
        load_dataset(str(tmp_path / "mine"), "train")
    data = load_dataset(str(tmp_path / "mine"), "train", verify_checksums=False)
    assert (data.info.name, data.info.channels, data.info.resolution, data.info.checksums_verified) == (
        "mine", 3, 32, False)  # fmt: skip
    assert data.info.class_names[:2] == ("class0", "class1")
    assert np.array_equal(np.asarray(data.pixels), pixels)  # R, G, B planes read in the right order
    assert data.labels.tolist() == labels.tolist()
    assert len(load_dataset(str(tmp_path / "mine"), "test", verify_checksums=False)) == 6


def test_cifar_is_read_from_the_archive_without_extracting(tmp_path: Path) -> None:
    pixels, _ = write_cifar(tmp_path / "src" / "cifar-10-batches-bin")
    archive = tmp_path / "packed" / "cifar-10-binary.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    with pytest.raises(DataError, match="not the official"):
        load_dataset(str(archive.parent), "train")
    data = load_dataset(str(archive.parent), "train", verify_checksums=False)
    assert np.array_equal(np.asarray(data.pixels), pixels)
    assert sorted(p.name for p in archive.parent.iterdir()) == ["cifar-10-binary.tar.gz"]


def test_truncated_cifar_files_fail_clearly(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cut")
    path = tmp_path / "cut" / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[: RECORD_BYTES * 2 + 100])
    with pytest.raises(DataError, match="not a whole number of 3073-byte CIFAR-10 records"):
        load_dataset(str(tmp_path / "cut"), "train", verify_checksums=False)


def test_cifar10_by_name_offline_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        load_dataset("cifar10", "train", data_dir=tmp_path, download=False)
    message = str(error.value)
    assert str(tmp_path / "cifar10") in message and "cifar-10-binary.tar.gz" in message and "--data-dir" in message


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "cifar10-subset").is_dir(), reason="../shared/data/cifar10-subset absent")
def test_real_cifar_subset_binary_and_folders_hold_the_same_images() -> None:
    with pytest.raises(DataError, match="not the official"):
        load_dataset(str(SHARED / "cifar10-subset"), "train")
    binary = load_dataset(str(SHARED / "cifar10-subset"), "test", verify_checksums=False)
    folders = load_dataset(str(SHARED / "cifar10-subset-folders"), "test")
    assert len(binary) == len(folders) == 1017
    assert binary.info.class_names == folders.info.class_names
    assert (folders.info.channels, folders.info.resolution) == (3, 32)

    # Folders are sorted by class, binary files are not: compare as multisets of (label, image hash).
    def keyed(data):  # type: ignore[no-untyped-def]
        pixels = np.asarray(data.pixels)
        return sorted((int(label), hash(pixels[i].tobytes())) for i, label in enumerate(data.labels))

    assert keyed(binary) == keyed(folders)


# --- models on colour data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("resolution", [28, 32])
def test_every_preset_builds_for_colour_at_28_and_32_px_or_says_why_not(preset: str, resolution: int) -> None:
    config = ModelConfig(preset, 100, 10, 3, resolution)
    if preset == "odena-cifar10" and resolution == 28:
        with pytest.raises(AcganError, match="divisible by 8"):
            build_generator(config)
        return
    generator, discriminator = build_generator(config), build_discriminator(config)
    images = generator(torch.randn(4, 100), torch.arange(4))
    assert images.shape == (4, 3, resolution, resolution)
    output = discriminator(images)
    assert output.adv_logits.shape == (4,) and output.class_logits.shape == (4, 10)


def test_default_preset_stages_follow_the_resolution() -> None:
    assert [stage_plan(r) for r in (28, 32, 64, 128)] == [(7, 2), (4, 3), (4, 4), (4, 5)]
    with pytest.raises(ValueError, match="--resolution"):
        stage_plan(30)
    for resolution, downsamples in ((32, 3), (64, 4), (128, 5)):
        discriminator = build_discriminator(ModelConfig("dcgan", 100, 10, 3, resolution))
        strided = [m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
        assert len(strided) == downsamples


def test_paper_preset_follows_table_1() -> None:
    config = ModelConfig("odena-cifar10", 100, 10, 3, 32)
    generator, discriminator = build_generator(config), build_discriminator(config)
    stem_input = generator.stem(torch.randn(2, 100), torch.tensor([3, 7]))
    assert stem_input.shape == (2, 110) and stem_input[0, 103] == 1 and stem_input[1, 107] == 1
    linear = generator.trunk[0]
    assert (linear.in_features, linear.out_features) == (110, 384 * 4 * 4)
    deconvs = [m for m in generator.trunk if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in deconvs] == [
        (192, (5, 5), (2, 2)), (96, (5, 5), (2, 2)), (3, (5, 5), (2, 2))]  # fmt: skip
    assert isinstance(generator.trunk[-1], torch.nn.Tanh)
    convs = [m for m in discriminator.trunk if isinstance(m, torch.nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size[0], m.stride[0]) for m in convs] == [
        (16, 3, 2), (32, 3, 1), (64, 3, 2), (128, 3, 1), (256, 3, 2), (512, 3, 1)]  # fmt: skip
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in discriminator.trunk) == 5  # all but the first
    assert {m.p for m in discriminator.trunk if type(m).__name__ == "Dropout"} == {0.5}
    assert {m.negative_slope for m in discriminator.trunk if isinstance(m, torch.nn.LeakyReLU)} == {0.2}
    config_defaults = PRESETS["odena-cifar10"]
    assert (config_defaults.lr, config_defaults.batch_size, config_defaults.objective) == (2e-4, 100, "acgan")


# --- end to end on a colour folder -------------------------------------------------------------------------

TINY = {"batch_size": 16, "width": 8, "sample_every": 1, "metrics_every": 1, "device": "cpu", "precision": "fp32"}


def test_streamed_batches_are_a_pure_function_of_seed_and_step() -> None:
    assert np.array_equal(step_indices(100, 8, 3, 5), step_indices(100, 8, 3, 5))
    assert not np.array_equal(step_indices(100, 8, 3, 5), step_indices(100, 8, 3, 6))


@pytest.mark.slow
@pytest.mark.parametrize("data_loading", ["memory", "stream"])
def test_resume_is_exact_on_a_colour_folder(tmp_path: Path, data_loading: str) -> None:
    root = make_folder(tmp_path / "shapes")
    # one schedule length for both runs: the colour default decays its learning rates over its first bound
    options = {"dataset": str(root), "data_loading": data_loading, "schedule_steps": 100, **TINY}
    train(TrainConfig(epochs=2, **options), tmp_path / "straight", show_progress=False)
    train(TrainConfig(epochs=1, **options), tmp_path / "split", show_progress=False)
    train(TrainConfig(epochs=2, **options), tmp_path / "split", resume=True, show_progress=False)
    assert_same_weights(tmp_path / "straight", tmp_path / "split")
    config = json.loads((tmp_path / "split" / "config.json").read_text())
    assert config["runtime"]["data_loading"] == data_loading
    assert config["dataset"]["channels"] == 3 and config["dataset"]["source"] == str(root.resolve())


@pytest.mark.slow
def test_colour_folder_end_to_end_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Train on a folder, resume, generate PNG/NPZ/folders in colour, evaluate, and serve the API."""
    root = make_folder(tmp_path / "shapes", per_class=24)
    run = tmp_path / "run"
    flags = ["--batch-size", "16", "--width", "8", "--device", "cpu", "--precision", "fp32", "--no-progress"]
    code, output = cli_output(["train", "--dataset", str(root), "--steps", "4", "--run-dir", str(run), *flags], capsys)
    assert code == 0, output
    code, output = cli_output(["train", "--resume", str(run), "--steps", "6", "--no-progress"], capsys)
    assert code == 0, output
    grid = Image.open(next((run / "samples").glob("*.png")))
    assert grid.mode == "RGB"

    code, output = cli_output(["generate", "--checkpoint", str(run), "--label", "square", "--num", "5",
                                 "--output", str(tmp_path / "out.npz")], capsys)  # fmt: skip
    assert code == 0, output
    arrays = np.load(tmp_path / "out.npz")
    assert arrays["images"].shape == (5, 32, 32, 3) and set(arrays["labels"].tolist()) == {1}
    assert arrays["class_names"].tolist() == ["circle", "square", "triangle"]
    code, output = cli_output(
        ["generate", "--checkpoint", str(run), "--num", "6", "--output", str(tmp_path / "each") + "/"], capsys
    )
    assert code == 0, output
    assert json.loads((tmp_path / "each" / "class_names.json").read_text()) == ["circle", "square", "triangle"]
    assert Image.open(next((tmp_path / "each").glob("*_2_triangle.png"))).mode == "RGB"

    code, output = cli_output(["evaluate", "--checkpoint", str(run), "--num", "60", "--json"], capsys)
    assert code == 0, output
    report = json.loads(next(line for line in output.splitlines() if line.startswith("{")))  # stdout: one JSON line
    assert report["dataset"] == "shapes" and report["classifier"]["arch"] == "colour"
    assert 0 <= report["classifier"]["test_accuracy"] <= 1 and report["classifier"]["test_images"] == 6
    assert len(report["per_class"]) == 3

    moved = tmp_path / "moved"
    os.rename(root, moved)
    code, output = cli_output(["evaluate", "--checkpoint", str(run), "--num", "60"], capsys)
    assert code == 1 and "--dataset PATH" in output and "Traceback" not in output
    code, output = cli_output(["evaluate", "--checkpoint", str(run), "--num", "60", "--dataset", str(moved)], capsys)
    assert code == 0, output

    from fastapi.testclient import TestClient

    from acgan.sampling import load_generator
    from acgan.serving import ServeOptions, create_app

    with TestClient(create_app(load_generator(run), ServeOptions(max_images=16))) as client:
        info = client.get("/api/v1/info").json()
        assert info["class_names"] == ["circle", "square", "triangle"] and info["image_shape"] == [3, 32, 32]
        picture = Image.open(io.BytesIO(client.get("/api/v1/generate", params={"label": "triangle", "n": 4}).content))
        assert picture.mode == "RGB"
        page = client.get("/").text
        assert "/api/v1/info" in page  # the page takes class names from the API (the browser test renders it)


@pytest.mark.skipif(not (SHARED / "cifar10-subset").is_dir(), reason="../shared/data/cifar10-subset absent")
def test_real_cifar_subset_trains_from_the_cli_with_skip_checksums(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    base = ["train", "--dataset", str(SHARED / "cifar10-subset"), "--steps", "3", "--limit", "64", "--batch-size", "16",
            "--width", "8", "--device", "cpu", "--no-progress", "--run-dir", str(run)]  # fmt: skip
    code, output = cli_output(base, capsys)
    assert code == 1 and "--skip-checksums" in output and not run.exists()
    code, output = cli_output([*base, "--skip-checksums"], capsys)
    assert code == 0, output
    code, output = cli_output(["info", "--checkpoint", str(run)], capsys)
    assert "cifar10-subset from" in output and "checksums skipped" in output and "3x32x32" in output
    code, output = cli_output(["generate", "--checkpoint", str(run), "--label", "horse", "--num", "4",
                            "--output", str(tmp_path / "horses.png")], capsys)  # fmt: skip
    assert code == 0 and Image.open(tmp_path / "horses.png").mode == "RGB"


def test_a_run_without_a_preset_gets_the_default_chosen_for_its_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from acgan.config import resolve_config
    from acgan.models import presets

    monkeypatch.setattr(presets, "COLOUR_PRESET", "resnet")  # tell the two defaults apart whatever they are
    colour = make_folder(tmp_path / "colour", per_class=4)
    grey = make_folder(tmp_path / "grey", per_class=4, grey=True)
    grey_rgb = tmp_path / "grey-rgb"  # grey images stored as RGB files load as one channel: the grey default
    for path in grey.rglob("*.png"):
        (grey_rgb / path.parent.name).mkdir(parents=True, exist_ok=True)
        Image.open(path).convert("RGB").save(grey_rgb / path.parent.name / path.name)
    chosen = {name: resolve_config(TrainConfig(dataset=str(root))).preset
              for name, root in (("colour", colour), ("grey", grey), ("grey-rgb", grey_rgb))}  # fmt: skip
    assert chosen == {"colour": "resnet", "grey": "dcgan", "grey-rgb": "dcgan"}
    assert resolve_config(TrainConfig(dataset="cifar10")).preset == "resnet"  # known without reading any file
    assert resolve_config(TrainConfig(dataset="mnist")).preset == "dcgan"
    assert resolve_config(TrainConfig(dataset=str(colour), preset="brownlee")).preset == "brownlee"  # named: kept
    code, output = cli_output(["train", "--dataset", str(colour), "--steps", "1", "--run-dir", str(tmp_path / "r"),
                               "--dry-run"], capsys)  # fmt: skip
    assert code == 0 and json.loads(output)["train"]["preset"] == "resnet"
    code, output = cli_output(["presets"], capsys)
    assert "[the default for grey images]" in output and "[the default for colour images]" in output
