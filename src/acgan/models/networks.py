"""The generator and discriminator containers shared by every preset, and their conditioning stems."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Constructor arguments of a generator/discriminator pair (saved as JSON with every checkpoint).

    num_classes, channels and resolution come from the data set, never typed by the user.
    """

    preset: str
    z_dim: int = 100
    num_classes: int = 10
    channels: int = 1
    resolution: int = 28

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {key: data[key] for key in ("preset", "z_dim", "num_classes", "channels", "resolution")}
        return cls(**known)


class DiscriminatorOutput(NamedTuple):
    """Logits only: losses apply sigmoid/softmax themselves."""

    adv_logits: torch.Tensor  # (B,) real/fake logit
    class_logits: torch.Tensor  # (B, K) unnormalised class scores


class Generator(nn.Module):
    """G(z, y): a conditioning stem merges the latent and the label, then a trunk decodes an image.

    forward(z: (B, z_dim) float, labels: (B,) int64) -> (B, C, H, W) in [-1, 1].
    """

    def __init__(self, config: ModelConfig, stem: nn.Module, trunk: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.stem = stem
        self.trunk = trunk

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.stem(z, labels))


class Discriminator(nn.Module):
    """D(x) -> (source logit, class logits) from a shared feature trunk and two linear heads.

    forward(x: (B, C, H, W) in [-1, 1]) -> DiscriminatorOutput((B,), (B, K)).
    """

    def __init__(self, config: ModelConfig, trunk: nn.Module, feature_dim: int) -> None:
        super().__init__()
        self.config = config
        self.trunk = trunk
        self.adv_head = nn.Linear(feature_dim, 1)
        self.class_head = nn.Linear(feature_dim, config.num_classes)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        features = self.trunk(x)  # (B, F)
        return DiscriminatorOutput(self.adv_head(features).squeeze(1), self.class_head(features))


class MultiplyEmbedding(nn.Module):
    """The Keras example's conditioning: z ⊙ embedding(y), shape (B, z_dim)."""

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.embedding = embedding

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return z * self.embedding(labels)  # (B, z_dim)


class ConcatEmbedding(nn.Module):
    """[z, embedding(y)] concatenated, shape (B, z_dim + embed_dim)."""

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.embedding = embedding

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, self.embedding(labels)], dim=1)  # (B, z_dim + E)


class LabelChannelStem(nn.Module):
    """Brownlee's conditioning: Dense(z) -> (B, F, b, b) plus Dense(embedding(y)) -> (B, 1, b, b), concatenated.

    The label becomes one extra feature map: output (B, F + 1, b, b).
    """

    def __init__(self, latent_dense: nn.Linear, embedding: nn.Embedding, label_dense: nn.Linear, base: int) -> None:
        super().__init__()
        self.embedding = embedding
        self.label_dense = label_dense
        self.latent_dense = latent_dense
        self.latent_act = nn.ReLU()
        self.base = base

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        b = self.base
        label_map = self.label_dense(self.embedding(labels)).view(-1, 1, b, b)  # (B, 1, b, b)
        features = self.latent_act(self.latent_dense(z)).view(z.shape[0], -1, b, b)  # (B, F, b, b)
        return torch.cat([features, label_map], dim=1)  # (B, F + 1, b, b)
