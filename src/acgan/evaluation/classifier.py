"""Reference classifiers: small CNNs trained on a data set's real images, used to judge generators.

The generator's own discriminator never judges it. Each classifier gives class logits and a 128-d
feature vector (the penultimate layer) in which Frechet distance, precision/recall and the like are
measured. Weights for MNIST and Fashion-MNIST ship with the package; other data sets get a classifier
trained and cached on first use.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from acgan.data.dataset import DatasetInfo, ImageDataset, data_fingerprint
from acgan.errors import AcganError
from acgan.files import atomic_write_bytes
from acgan.progress import bar

FEATURE_DIM = 128
CLASSIFIER_VERSION = 1


ARCHITECTURES = ("small", "colour")


def default_architecture(channels: int) -> str:
    """ "small" for grey digits and clothes (the shipped MNIST/Fashion-MNIST weights); "colour" for RGB images."""
    return "colour" if channels == 3 else "small"


class ReferenceClassifier(nn.Module):
    """A CNN judge: conv trunk -> 128-d features -> K logits.

    "small" (grey 28 px data): three blocks of one 3x3 conv (32, 64, 128 channels; BatchNorm, ReLU, 2x2
    max-pool), flattened. "colour" (32-64 px photos): three blocks of two 3x3 convs (32, 64, 128 channels),
    then global average pooling, so it works at any resolution and does not overfit small data as fast.
    forward(x: (B, C, H, W) in [-1, 1]) -> (features (B, 128), logits (B, K)).
    """

    def __init__(self, num_classes: int, channels: int = 1, resolution: int = 28, arch: str = "small") -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown classifier architecture '{arch}' (known: {', '.join(ARCHITECTURES)})")

        def conv(in_ch: int, out_ch: int) -> list[nn.Module]:
            return [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU()]

        self.config: dict[str, Any] = {
            "num_classes": num_classes,
            "channels": channels,
            "resolution": resolution,
            "arch": arch,
        }
        if arch == "small":
            side = resolution // 8
            self.trunk = nn.Sequential(*conv(channels, 32), nn.MaxPool2d(2), *conv(32, 64), nn.MaxPool2d(2),
                                       *conv(64, 128), nn.MaxPool2d(2), nn.Flatten())  # fmt: skip
            trunk_dim = 128 * side * side
        else:
            self.trunk = nn.Sequential(*conv(channels, 32), *conv(32, 32), nn.MaxPool2d(2),
                                       *conv(32, 64), *conv(64, 64), nn.MaxPool2d(2),
                                       *conv(64, 128), *conv(128, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten())  # fmt: skip
            trunk_dim = 128
        self.embed = nn.Sequential(nn.Linear(trunk_dim, FEATURE_DIM), nn.ReLU())
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.embed(self.trunk(x))  # (B, 128)
        return features, self.head(self.dropout(features))  # (B, 128), (B, K)


@dataclass(frozen=True)
class Judgement:
    """A classifier's view of a set of images."""

    features: torch.Tensor  # (N, 128) float32, on the CPU
    probs: torch.Tensor  # (N, K) softmax probabilities, on the CPU


def fused_for_inference(classifier: ReferenceClassifier) -> ReferenceClassifier:
    """An eval-mode copy with each BatchNorm folded into the convolution before it (same outputs, ~30% faster)."""
    fused = copy.deepcopy(classifier).eval()
    layers: list[nn.Module] = list(fused.trunk)
    merged: list[nn.Module] = []
    for layer in layers:
        if isinstance(layer, nn.BatchNorm2d) and merged and isinstance(merged[-1], nn.Conv2d):
            merged[-1] = fuse_conv_bn_eval(merged[-1], layer)
        else:
            merged.append(layer)
    fused.trunk = nn.Sequential(*merged)
    return fused


@torch.inference_mode()
def judge(classifier: ReferenceClassifier, images: torch.Tensor | ImageDataset, batch_size: int = 256) -> Judgement:
    """Features and class probabilities of (N, C, H, W) images in [-1, 1], or of a data set (eval mode, batched).

    Small batches are faster on the CPU here (they stay in cache).
    """
    model = fused_for_inference(classifier)
    device = next(model.parameters()).device
    features, probs = [], []
    total = len(images) if isinstance(images, ImageDataset) else images.shape[0]
    for start in range(0, total, batch_size):
        chunk = slice(start, start + batch_size)
        batch = images.batch(chunk) if isinstance(images, ImageDataset) else images[chunk]
        f, logits = model(batch.to(device))
        features.append(f.float().cpu())
        probs.append(F.softmax(logits.float(), dim=1).cpu())
    if not features:
        return Judgement(torch.empty(0, FEATURE_DIM), torch.empty(0, classifier.config["num_classes"]))
    return Judgement(torch.cat(features), torch.cat(probs))


def classifier_accuracy(classifier: ReferenceClassifier, test: ImageDataset) -> float:
    """Fraction of test images whose most probable class is their label."""
    probs = judge(classifier, test).probs
    return float((probs.argmax(dim=1) == test.labels).float().mean())


def default_epochs(num_images: int) -> int:
    """Epochs for a reference classifier: 8 on MNIST-sized data, more on small data (about 300,000 images seen)."""
    return max(8, min(40, math.ceil(300_000 / max(1, num_images))))


def train_classifier(
    train: ImageDataset,
    epochs: int | None = None,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    show_progress: bool = True,
) -> ReferenceClassifier:
    """Train a ReferenceClassifier deterministically (fixed seed, fixed order, no data-dependent randomness).

    Adam with a one-cycle learning-rate schedule; light augmentation by random 2-pixel shifts, and horizontal
    flips for colour images. `epochs` defaults to `default_epochs(len(train))`.
    """
    info = train.info
    epochs = epochs or default_epochs(len(train))
    flip = info.channels == 3
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        arch = default_architecture(info.channels)
        classifier = ReferenceClassifier(info.num_classes, info.channels, info.resolution, arch)
        rng = torch.Generator().manual_seed(seed)
        batch_size = min(batch_size, len(train))
        steps_per_epoch = max(1, len(train) // batch_size)
        optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
        classifier.train()
        with bar(
            total=epochs * steps_per_epoch, show=show_progress, unit="step", desc=f"classifier {info.name}"
        ) as progress:
            for _ in range(epochs):
                order = torch.randperm(len(train), generator=rng)
                for step in range(steps_per_epoch):
                    index = order[step * batch_size : (step + 1) * batch_size]
                    images = _random_shift(train.batch(index), rng)  # (B, C, H, W)
                    if flip:
                        mirrored = torch.rand(len(index), generator=rng) < 0.5  # (B,)
                        images = torch.where(mirrored[:, None, None, None], images.flip(3), images)
                    _, logits = classifier(images)
                    loss = F.cross_entropy(logits, train.labels[index])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    progress.update(1)
                    if step % 50 == 0:
                        progress.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return classifier.eval()


def _random_shift(images: torch.Tensor, rng: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Shift each (B, C, H, W) image by up to `max_shift` pixels in x and y, filling with the background -1."""
    batch, _, height, width = images.shape
    padded = F.pad(images, (max_shift,) * 4, value=-1.0)  # (B, C, H + 2s, W + 2s)
    offsets = torch.randint(0, 2 * max_shift + 1, (batch, 2), generator=rng)  # (B, 2): dy, dx
    rows = (offsets[:, :1] + torch.arange(height))[:, None, :, None]  # (B, 1, H, 1)
    cols = (offsets[:, 1:] + torch.arange(width))[:, None, None, :]  # (B, 1, 1, W)
    return padded[
        torch.arange(batch)[:, None, None, None], torch.arange(images.shape[1])[None, :, None, None], rows, cols
    ]


def save_classifier(classifier: ReferenceClassifier, path: Path, info: DatasetInfo, extra: dict[str, Any]) -> None:
    """Write the classifier as safetensors with its config and provenance in the metadata."""
    metadata = {
        "classifier_version": str(CLASSIFIER_VERSION),
        "config": json.dumps(classifier.config),
        "dataset_info": json.dumps(info.to_dict()),
        **{key: json.dumps(value) for key, value in extra.items()},
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in classifier.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, save_safetensors_bytes(tensors, metadata=metadata))


def read_classifier(data: bytes, source: str) -> tuple[ReferenceClassifier, dict[str, Any]]:
    """Rebuild a classifier from safetensors bytes; return it with its metadata (values JSON-decoded)."""
    try:
        tensors = load_safetensors_bytes(data)
        header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
        metadata = {k: json.loads(v) for k, v in (header.get("__metadata__") or {}).items()}
        classifier = ReferenceClassifier(**metadata["config"])
        classifier.load_state_dict(tensors)
    except Exception as exc:  # damaged file, foreign file or wrong shapes: all mean "not usable"
        raise AcganError(f"cannot load reference classifier {source}: {str(exc).splitlines()[0]}") from None
    return classifier.eval(), metadata


def shipped_classifier_bytes(dataset: str) -> bytes | None:
    """The classifier weights shipped inside the package for a built-in data set, if any."""
    resource = resources.files("acgan.evaluation").joinpath("weights", f"{dataset}.safetensors")
    return resource.read_bytes() if resource.is_file() else None


def classifier_cache_path(train: ImageDataset, cache_dir: Path | None = None) -> Path:
    """Where the reference classifier trained on `train` is cached (keyed by the data's content)."""
    from acgan.data.locate import cache_root

    info = train.info
    folder = cache_dir or cache_root() / "classifiers"
    return folder / f"{info.name}-{info.resolution}px-{data_fingerprint(train)}.safetensors"


def load_reference_classifier(
    info: DatasetInfo, train: ImageDataset | None = None, cache_dir: Path | None = None,
    test: ImageDataset | None = None, show_progress: bool = True,
) -> tuple[ReferenceClassifier, dict[str, Any]]:  # fmt: skip
    """The shipped classifier for `info.name`, else a cached one, else one trained now on `train` and cached.

    Returns the classifier and its metadata (test_accuracy when known, train_seconds when trained here).
    """
    shipped = shipped_classifier_bytes(info.name) if info.checksums_verified and not info.source else None
    if shipped is not None:
        classifier, metadata = read_classifier(shipped, f"(shipped) {info.name}")
        if classifier.config["resolution"] == info.resolution:  # else (--resolution 32) one is trained below
            return classifier, metadata
    if train is None:
        raise AcganError(f"no reference classifier for '{info.name}' and no training data to train one")
    path = classifier_cache_path(train, cache_dir)
    if path.is_file():
        return read_classifier(path.read_bytes(), str(path))
    start = time.monotonic()
    classifier = train_classifier(train, show_progress=show_progress)
    extra: dict[str, Any] = {"train_seconds": round(time.monotonic() - start, 1), "train_images": len(train)}
    if test is not None:
        extra["test_accuracy"] = classifier_accuracy(classifier, test)
    save_classifier(classifier, path, info, extra)
    return classifier, {**extra, "config": classifier.config}
