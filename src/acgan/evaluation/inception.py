"""The FID Inception-v3 network (Szegedy et al. 2016; Heusel et al. 2017's FID graph), for numbers in the feature
space papers report: FID, KID and the Inception Score.

The network is the TensorFlow graph `pt_inception-2015-12-05` that FID's reference code uses, in the layout of its
PyTorch conversion (the weights file torch-fidelity and pytorch-fid publish: `weights-inception-2015-12-05-
6726825d.pth`, 2048 pooled features and 1008 logits). It differs from torchvision's Inception-v3 where that graph
does: average pools ignore padding, the last block's pool branch takes a max, inputs are resized with TensorFlow
1.x's bilinear rule (no half-pixel offset) to 299 x 299 and scaled as (x - 128) / 128 from 8-bit pixels.
Nothing is downloaded: the weights come from a file the user provides, verified by its SHA-256.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from acgan.data.dataset import ImageDataset, data_fingerprint
from acgan.data.locate import cache_root
from acgan.errors import AcganError
from acgan.files import written_aside
from acgan.progress import bar

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_FILE}"
WEIGHTS_ENV = "ACGAN_INCEPTION_WEIGHTS"
INPUT_SIZE = 299
FEATURES = 2048
LOGITS = 1008


class BasicConv2d(nn.Module):
    """Convolution without bias, BatchNorm (eps 1e-3, TensorFlow's), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0) -> None:  # fmt: skip
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def average_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3 average over the pixels inside the image (TensorFlow's pooling ignores the padding)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def max_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, stride=1, padding=1)


class InceptionA(nn.Module):
    """The 35 x 35 block: 1x1, 5x5, double 3x3 and pooled branches (Mixed_5b-d)."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)), double,
                          self.branch_pool(average_pool(x))], dim=1)  # fmt: skip


class InceptionB(nn.Module):
    """35 -> 17 px: a strided 3x3, a strided double 3x3 and a max pool (Mixed_6a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), double, F.max_pool2d(x, 3, stride=2)], dim=1)


class InceptionC(nn.Module):
    """The 17 x 17 block with factorised 7x7 convolutions (Mixed_6b-e)."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):  # fmt: skip
            double = layer(double)
        return torch.cat([self.branch1x1(x), single, double, self.branch_pool(average_pool(x))], dim=1)


class InceptionD(nn.Module):
    """17 -> 8 px: strided 3x3 after 1x1, strided 3x3 after a 7x7 pair, and a max pool (Mixed_7a)."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), seven, F.max_pool2d(x, 3, stride=2)], dim=1)


class InceptionE(nn.Module):
    """The 8 x 8 block with split 1x3 / 3x1 outputs (Mixed_7b averages its pool branch, Mixed_7c takes a max)."""

    def __init__(self, in_channels: int, pool: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(single), self.branch3x3_2b(single),
                          self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
                          self.branch_pool(self.pool(x))], dim=1)  # fmt: skip


class FidInception(nn.Module):
    """Inception-v3 as FID's graph computes it: 8-bit images in, (N, 2048) pooled features and (N, 1008) logits
    without the last layer's bias (the Inception Score's reference code multiplies by the weights only)."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool=average_pool)
        self.Mixed_7c = InceptionE(2048, pool=max_pool)
        self.fc = nn.Linear(FEATURES, LOGITS)

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) pixel values in [0, 255] -> (N, 2048) features, (N, 1008) logits without bias."""
        x = (resize_bilinear_tf1(pixels.float(), INPUT_SIZE) - 128) / 128  # (N, 3, 299, 299)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (N, 64, 147, 147)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))  # (N, 192, 71, 71)
        x = F.max_pool2d(x, 3, stride=2)  # (N, 192, 35, 35)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):  # fmt: skip
            x = block(x)  # ... (N, 768, 17, 17) ... (N, 2048, 8, 8)
        features = x.mean(dim=(2, 3))  # (N, 2048)
        return features, features @ self.fc.weight.T


def resize_bilinear_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, size, size) by TensorFlow 1.x's `resize_bilinear` (align_corners=False): output pixel
    i reads input position i * H / size (no half-pixel offset, unlike PyTorch's), between the two nearest rows and
    columns (the last repeated at the edge)."""

    def weights(length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        position = torch.arange(size, dtype=torch.float64) * (length / size)
        low = position.floor().long().clamp(max=length - 1)
        return low, (low + 1).clamp(max=length - 1), (position - low).to(x.dtype)

    top, bottom, dy = weights(x.shape[2])
    left, right, dx = weights(x.shape[3])
    rows = x[:, :, top] + (x[:, :, bottom] - x[:, :, top]) * dy[:, None]  # (N, C, size, W)
    return rows[..., left] + (rows[..., right] - rows[..., left]) * dx  # (N, C, size, size)


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> (N, 3, H, W) 8-bit values as float (what a saved PNG holds; grey repeated)."""
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round()
    return pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels


def weights_path(given: str | Path | None = None) -> Path:
    """The weights file, verified: `given`, else $ACGAN_INCEPTION_WEIGHTS; AcganError saying which file and where it
    is published when neither names an existing file, or when its SHA-256 is not the published one."""
    where = given or os.environ.get(WEIGHTS_ENV)
    if not (where and Path(where).expanduser().is_file()):
        missing = f"{where} is not a file; " if where else ""
        raise AcganError(f"{missing}the Inception metrics need {WEIGHTS_FILE} (SHA-256 {WEIGHTS_SHA256}), published "
                         f"at {WEIGHTS_URL}: download it and pass --inception-weights PATH or set {WEIGHTS_ENV}")  # fmt: skip
    path = Path(where).expanduser()
    check_sha256(path)
    return path


def check_sha256(path: Path, expected: str = WEIGHTS_SHA256) -> None:
    """AcganError when the file at `path` is not the published weights file (by its SHA-256)."""
    if (found := file_sha256(path)) != expected:
        raise AcganError(f"{path}: SHA-256 {found} is not that of {WEIGHTS_FILE} ({expected}); download the file "
                         f"again from {WEIGHTS_URL}")  # fmt: skip


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_inception(path: Path, expected_sha256: str | None = WEIGHTS_SHA256) -> FidInception:
    """The network with the weights of `path` (a PyTorch state dict), in eval mode; AcganError when the file's
    SHA-256 is not the published one (`expected_sha256` None skips the check: tests with random weights) or its
    tensors do not fit the architecture."""
    if expected_sha256 is not None:
        check_sha256(path, expected_sha256)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file gets the same one-line refusal
        raise AcganError(f"{path}: not a PyTorch weights file ({type(exc).__name__})") from None
    network = FidInception()
    expected = {k for k in network.state_dict() if not k.endswith("num_batches_tracked")}
    given = {k for k in state if not k.endswith("num_batches_tracked")} if isinstance(state, dict) else set()
    if given != expected:
        raise AcganError(f"{path}: not the FID Inception-v3's weights ({len(expected - given)} tensors missing, "
                         f"{len(given - expected)} unexpected)")  # fmt: skip
    network.load_state_dict(state, strict=False)
    return network.eval().requires_grad_(False)


@torch.inference_mode()
def inception_outputs(network: FidInception, images: torch.Tensor, batch_size: int = 100,
                      progress: Callable[[int], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(N, C, H, W) images in [-1, 1] -> (N, 2048) features and (N, 1008) logits, in batches (fp32, CPU)."""
    features, logits = [], []
    for start in range(0, images.shape[0], batch_size):
        f, g = network(to_pixels(images[start : start + batch_size]))
        features.append(f)
        logits.append(g)
        if progress is not None:
            progress(f.shape[0])
    return torch.cat(features), torch.cat(logits)


IS_SPLITS = 10  # the Inception Score's reference code: the mean and spread over 10 splits of the samples
INCEPTION_KID_SUBSETS, INCEPTION_KID_SIZE = 100, 1000  # KID as Binkowski et al. 2018 and torch-fidelity compute it


def inception_score(logits: torch.Tensor, splits: int = IS_SPLITS) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) of (N, 1008) logits (softmax inside), in `splits` equal parts: (mean, std)."""
    from acgan.evaluation.metrics import classifier_score

    probs = torch.softmax(logits.double(), dim=1)
    size = probs.shape[0] // splits
    scores = torch.tensor([classifier_score(probs[i * size : (i + 1) * size]) for i in range(splits)])
    return float(scores.mean()), float(scores.std(unbiased=False))


def inception_metrics(generated: tuple[torch.Tensor, torch.Tensor], reference: torch.Tensor) -> dict[str, float]:
    """FID, KID (as torch-fidelity reports it; papers often print KID x 1000) and IS of generated (features (N, 2048),
    logits (N, 1008)) against (M, 2048) reference features."""
    from acgan.evaluation.metrics import frechet_distance_of, kernel_distance

    features, logits = generated
    kid, kid_std = kernel_distance(features, reference, INCEPTION_KID_SUBSETS, INCEPTION_KID_SIZE)
    score, score_std = inception_score(logits) if logits.shape[0] >= IS_SPLITS * 2 else (float("nan"),) * 2
    return {"fid": frechet_distance_of(features, reference), "kid": kid, "kid_std": kid_std,
            "inception_score": score, "inception_score_std": score_std}  # fmt: skip


def inception_report(network: FidInception, weights_id: str, images: torch.Tensor, train: ImageDataset,
                     test: ImageDataset, show_progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """FID, KID and IS of (N, C, H, W) images in [-1, 1] against the Inception features of every training image
    (as papers do for CIFAR-10: the training set's statistics), beside the same for the real test images. The real
    images' outputs are cached per data set and weights (`weights_id`: the weights file's SHA-256)."""
    reference, _ = _cached_outputs(network, weights_id, train, show_progress)
    real = _cached_outputs(network, weights_id, test, show_progress)
    with bar(total=images.shape[0], show=show_progress, desc="Inception-v3, samples", unit="image") as progress:
        generated = inception_outputs(network, images, progress=progress.update)
    return {"generated": inception_metrics(generated, reference), "real": inception_metrics(real, reference),
            "reference_images": int(reference.shape[0]), "real_images": int(real[0].shape[0]),
            "samples": int(images.shape[0]), "weights_sha256": weights_id}  # fmt: skip


def _cached_outputs(network: FidInception, weights_id: str, data: ImageDataset,
                    show_progress: bool) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The network's (features, logits) of every image of `data`, computed once per data set and weights."""
    path = cache_root() / "eval" / f"{data.info.name}-{data_fingerprint(data)}-inception-{weights_id[:16]}.safetensors"
    if path.is_file():
        try:
            stored = load_file(path)
            return stored["features"], stored["logits"]
        except (OSError, KeyError, SafetensorError):
            pass  # damaged: computed again
    chunk = 1000
    outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
    with bar(total=len(data), show=show_progress, desc=f"Inception-v3, {data.info.name} images", unit="image") as shown:
        for start in range(0, len(data), chunk):
            images = data.batch(slice(start, start + chunk))  # (chunk, C, H, W) in [-1, 1]
            outputs.append(inception_outputs(network, images, progress=shown.update))
    features, logits = torch.cat([f for f, _ in outputs]), torch.cat([g for _, g in outputs])
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_aside(path) as tmp:
        save_file({"features": features.contiguous(), "logits": logits.contiguous()}, tmp)
    return features, logits
