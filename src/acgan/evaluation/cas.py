"""The Classification Accuracy Score (Ravuri & Vinyals 2019, "Classification Accuracy Score for Conditional
Generative Models", section 3): a classifier of the reference architecture trained only on generated samples (their
requested classes as labels) and tested on the real test images, beside the same classifier trained on as many real
training images. It falls when classes lose variety or drift from the real ones, even where precision and recall
look fine. Each classifier trains as the reference classifiers do (deterministic, about 300,000 images seen); the
result is cached per samples' hash, the real-data reference per data set and size.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch

from acgan.data.dataset import DatasetInfo, ImageDataset, data_fingerprint
from acgan.data.locate import cache_root
from acgan.evaluation.classifier import classifier_accuracy, train_classifier
from acgan.files import atomic_write_bytes
from acgan.sampling import to_uint8_hwc

CAS_VERSION = 1  # what a cached score means (the classifier's recipe)


def as_dataset(images: torch.Tensor, labels: torch.Tensor, info: DatasetInfo) -> ImageDataset:
    """(N, C, H, W) images in [-1, 1] and their (N,) labels as a training split (uint8 pixels, as real data is)."""
    return ImageDataset(torch.from_numpy(to_uint8_hwc(images)), labels.to(torch.int64), info)


def _cached(key: str, compute: Any) -> float:
    path = cache_root() / "cas" / f"{key}.json"
    if path.is_file():
        try:
            return float(json.loads(path.read_text())["accuracy"])
        except (ValueError, KeyError, TypeError):
            pass  # damaged: computed again
    accuracy = float(compute())
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps({"accuracy": accuracy}).encode())
    return accuracy


def classification_accuracy_score(images: torch.Tensor, labels: torch.Tensor, train: ImageDataset,
                                  test: ImageDataset, seed: int = 0, show_progress: bool = True) -> dict[str, float]:  # fmt: skip
    """{'generated': test accuracy of a classifier trained on the samples, 'real': of one trained on as many real
    training images (a class-balanced random subset, or all of them when there are fewer)}."""
    info = train.info
    samples = as_dataset(images, labels, info)
    digest = hashlib.sha256(np.ascontiguousarray(samples.pixels).tobytes() + labels.numpy().tobytes()).hexdigest()
    key = f"{CAS_VERSION}-{info.name}-{digest[:16]}-{seed}"
    generated = _cached(key, lambda: classifier_accuracy(train_classifier(samples, seed=seed,
                                                                          show_progress=show_progress), test))  # fmt: skip
    count = min(len(samples), len(train))
    index = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:count]
    subset = as_dataset(train.batch(index), train.labels[index], info)
    real_key = f"{CAS_VERSION}-{info.name}-real-{count}-{seed}-{data_fingerprint(train)}"
    real = _cached(real_key, lambda: classifier_accuracy(train_classifier(subset, seed=seed,
                                                                          show_progress=show_progress), test))  # fmt: skip
    return {"generated": generated, "real": real}
