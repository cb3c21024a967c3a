"""The generator and discriminator containers shared by every preset, and their conditioning stems."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import nn

EMBED_DIM = 128  # size of the "embed" head's projection and class proxies (ReACGAN)


def setting(default: Any, *, limits: tuple[int, int] | None = None, choices: tuple[str, ...] | None = None,
            required: bool = False) -> Any:  # fmt: skip
    """A ModelConfig field and what it may be: `limits` (an integer's range), `choices` (a string's values);
    `required`: checkpoints have always recorded it (a missing one is damage, not an old file)."""
    return field(default=default, metadata={"limits": limits, "choices": choices, "required": required})


@dataclass(frozen=True)
class ModelConfig:
    """Constructor arguments of a generator/discriminator pair (saved as JSON with every checkpoint).

    num_classes, channels and resolution come from the data set, never typed by the user. `heads` are the
    discriminator heads the training objective needs (HEAD_REGISTRY): "class" (K-way classifier), "twin"
    (TAC-GAN's second K-way classifier), "adc" (ADC-GAN's 2K-way classifier), "embed" (ReACGAN's embedding and
    class proxies). `width` scales presets that have a width (0: the preset's original width); `spectral_norm`
    wraps every convolution and linear layer of D in spectral normalisation. A setting a user may choose is
    declared here once, with its range, and linked from acgan.config.TrainConfig (`model=True`).
    """

    preset: str = field(metadata={"required": True})
    z_dim: int = setting(100, limits=(1, 4096), required=True)
    num_classes: int = setting(10, limits=(1, 10_000), required=True)
    channels: int = setting(1, limits=(1, 4), required=True)
    resolution: int = setting(28, limits=(4, 1024), required=True)
    width: int = setting(0, limits=(0, 1024))
    heads: tuple[str, ...] = ("class",)
    spectral_norm: bool = False
    class_input: str = setting("concat", choices=("concat", "cbn"))  # G: label concatenated to z, or every BatchNorm
    mbstd: bool = False  # D: the minibatch standard deviation feature before its last layers

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", tuple(self.heads))  # JSON gives lists
        unknown = sorted(set(self.heads) - set(HEAD_REGISTRY))
        if unknown:
            raise ValueError(f"unknown discriminator head(s) {', '.join(unknown)} (known: {', '.join(HEAD_REGISTRY)})")
        for name in SETTINGS:
            problem = setting_problem(name, getattr(self, name))
            if problem:
                raise ValueError(problem)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["heads"] = list(self.heads)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from JSON; settings added after format 1's first release default to what they meant then."""
        known = {key: data[key] for key in REQUIRED_SETTINGS}  # KeyError: damaged
        optional = {f.name: data[f.name] for f in fields(cls) if f.name not in known and f.name in data}
        return cls(**known, **optional)


# What a model may be built with: beyond these, building one from a (possibly hostile) checkpoint's metadata or a
# typo would try to allocate gigabytes before anything could say why.
SETTINGS = {f.name: f.metadata for f in fields(ModelConfig) if f.metadata.get("limits") or f.metadata.get("choices")}
LIMITS: dict[str, tuple[int, int]] = {name: meta["limits"] for name, meta in SETTINGS.items() if meta["limits"]}
REQUIRED_SETTINGS = tuple(f.name for f in fields(ModelConfig) if f.metadata.get("required"))


def setting_problem(name: str, value: Any) -> str | None:
    """Why `value` cannot be ModelConfig's setting `name` (one line), or None when it can."""
    meta = SETTINGS.get(name, {"limits": None, "choices": None})
    if meta["limits"]:
        low, high = meta["limits"]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            return f"{name} must be an integer in {low}..{high}, got {value!r}"
    if meta["choices"] and value not in meta["choices"]:
        return f"{name} must be one of {', '.join(meta['choices'])}, got {value!r}"
    return None


class DiscriminatorOutput(NamedTuple):
    """Logits only: losses apply sigmoid/softmax themselves. Optional fields are None without their head."""

    adv_logits: torch.Tensor  # (B,) real/fake logit
    class_logits: torch.Tensor  # (B, K) class scores: the class head's, or read off the adc/embed head
    twin_logits: torch.Tensor | None = None  # (B, K) TAC-GAN's twin classifier, trained on generated images
    adc_logits: torch.Tensor | None = None  # (B, 2K) ADC-GAN: class k real (k) or class k generated (K + k)
    embedding: torch.Tensor | None = None  # (B, E) ReACGAN's image embedding, unnormalised
    proxies: torch.Tensor | None = None  # (B, E) the class proxies of the labels passed to D, unnormalised


def split_output(output: DiscriminatorOutput, sizes: list[int]) -> list[DiscriminatorOutput]:
    """The outputs of one forward pass over concatenated batches, one DiscriminatorOutput per batch of `sizes`."""
    parts = [field.split(sizes) if field is not None else [None] * len(sizes) for field in output]
    return [DiscriminatorOutput(*fields) for fields in zip(*parts, strict=True)]


class ConditionalSequential(nn.Sequential):
    """nn.Sequential that also hands the class condition to the layers that take it (`takes_condition = True`, e.g.
    a block with class-conditional BatchNorm): forward(x, condition). Parameter names stay those of nn.Sequential."""

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for module in self:
            x = module(x, condition) if getattr(module, "takes_condition", False) else module(x)
        return x


class Generator(nn.Module):
    """G(z, y): a conditioning stem merges the latent and the label, then a trunk decodes an image. With a
    `condition` module (a class embedding shared by every block, as BigGAN's), the trunk's class-conditional
    layers get condition(y) times `condition_strength`; without one they get the labels.

    forward(z: (B, z_dim) float, labels: (B,) int64) -> (B, C, H, W) in [-1, 1].
    """

    fixed_precision: str | None = None  # the one precision a generator computes in (an ONNX graph's); None: any
    condition_strength = 1.0  # how much the label counts (a conditioning ramp lowers it early on)

    def __init__(self, config: ModelConfig, stem: nn.Module, trunk: nn.Sequential,
                 condition: nn.Module | None = None) -> None:  # fmt: skip
        super().__init__()
        self.config = config
        self.stem = stem
        self.trunk = trunk if isinstance(trunk, ConditionalSequential) else ConditionalSequential(*trunk)
        if condition is not None:
            self.condition = condition

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "condition"):
            return self.trunk(self.stem(z, labels), labels)
        condition = self.condition(labels)  # (B, E)
        if self.condition_strength != 1.0:
            condition = condition * self.condition_strength
        return self.trunk(self.stem(z, labels), condition)


@dataclass(frozen=True)
class Head:
    """A discriminator head: the modules it adds to D (attribute name -> builder of (feature_dim, K)) and how it
    fills the output's fields from D's features (B, F) and the labels (B,) (None when D is called without)."""

    name: str
    modules: dict[str, Callable[[int, int], nn.Module]]
    fill: Callable[[Discriminator, torch.Tensor, torch.Tensor | None, dict[str, Any]], None]


def _linear(outputs: Callable[[int], int]) -> Callable[[int, int], nn.Module]:
    return lambda features, k: nn.Linear(features, outputs(k))


def _fill_class(d: Discriminator, features: torch.Tensor, labels: torch.Tensor | None, out: dict[str, Any]) -> None:
    out["class_logits"] = d.get_submodule("class_head")(features)  # (B, K)


def _fill_twin(d: Discriminator, features: torch.Tensor, labels: torch.Tensor | None, out: dict[str, Any]) -> None:
    out["twin_logits"] = d.get_submodule("twin_head")(features)  # (B, K)


def _fill_adc(d: Discriminator, features: torch.Tensor, labels: torch.Tensor | None, out: dict[str, Any]) -> None:
    out["adc_logits"] = d.get_submodule("adc_head")(features)  # (B, 2K)
    out.setdefault("class_logits", out["adc_logits"][:, : d.config.num_classes])  # "real image of class k" scores


def _fill_embed(d: Discriminator, features: torch.Tensor, labels: torch.Tensor | None, out: dict[str, Any]) -> None:
    out["embedding"] = d.get_submodule("embed_head")(features)  # (B, E)
    if labels is not None:
        out["proxies"] = d.get_submodule("proxies")(labels)  # (B, E)
    cosines = (
        F.normalize(out["embedding"], dim=1)
        @ F.normalize(cast(torch.Tensor, d.get_submodule("proxies").weight), dim=1).T
    )  # (B, K)
    out.setdefault("class_logits", cosines)


def _projection(features: int, k: int) -> nn.Module:
    embedding = nn.Embedding(k, features)
    nn.init.xavier_uniform_(embedding.weight)  # as SNGAN's projection discriminator
    return embedding


def _fill_projection(
    d: Discriminator, features: torch.Tensor, labels: torch.Tensor | None, out: dict[str, Any]
) -> None:
    """Miyato & Koyama 2018, eq. 3: the logit gains embed(y) . phi(x); every class's such score is the class scores."""
    weight = cast(torch.Tensor, d.get_submodule("projection").weight)  # (K, F), spectrally normalised under SN
    scores = features @ weight.T  # (B, K)
    if labels is not None:
        out["adv_logits"] = out["adv_logits"] + scores.gather(1, labels[:, None]).squeeze(1) * d.condition_strength
    out.setdefault("class_logits", scores)


# Heads in the order their modules are built (initialisation draws random numbers in this order).
HEAD_REGISTRY: dict[str, Head] = {head.name: head for head in (
    Head("class", {"class_head": _linear(lambda k: k)}, _fill_class),
    Head("twin", {"twin_head": _linear(lambda k: k)}, _fill_twin),
    Head("adc", {"adc_head": _linear(lambda k: 2 * k)}, _fill_adc),
    Head("embed", {"embed_head": _linear(lambda k: EMBED_DIM),
                   "proxies": lambda features, k: nn.Embedding(k, EMBED_DIM)}, _fill_embed),
    Head("projection", {"projection": _projection}, _fill_projection),
)}  # fmt: skip


class Discriminator(nn.Module):
    """D(x) -> (source logit, class logits, ...) from a shared feature trunk and the heads the objective needs
    (HEAD_REGISTRY; each adds its modules as attributes, e.g. `class_head`, and fills its output fields).

    forward(x: (B, C, H, W) in [-1, 1], labels: (B,) int64 or None) -> DiscriminatorOutput. Labels are read only by
    heads that condition on them (the class proxies of "embed"); every other head sees the image alone.
    """

    condition_strength = 1.0  # how much the label counts in D's logit (a conditioning ramp lowers it early on)

    def __init__(self, config: ModelConfig, trunk: nn.Module, feature_dim: int) -> None:
        super().__init__()
        self.config = config
        self.trunk = trunk
        self.adv_head = nn.Linear(feature_dim, 1)
        self.heads = [head for head in HEAD_REGISTRY.values() if head.name in config.heads]
        for head in self.heads:
            for attribute, build in head.modules.items():
                self.add_module(attribute, build(feature_dim, config.num_classes))
        # Whether an image's output depends on the other images of its batch (BatchNorm, the minibatch standard
        # deviation): if not, real and generated half batches may go through one forward pass together.
        self.batch_independent = not any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                         or getattr(m, "batch_dependent", False) for m in trunk.modules())  # fmt: skip

    def linear_heads(self) -> list[nn.Linear]:
        """The linear heads, in construction order (presets initialise them their own way)."""
        return [m for name, m in self.named_children() if name != "trunk" and isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> DiscriminatorOutput:
        features = self.trunk(x)  # (B, F)
        out: dict[str, Any] = {"adv_logits": self.adv_head(features).squeeze(1)}  # (B,)
        for head in self.heads:
            head.fill(self, features, labels, out)
        if "class_logits" not in out:
            raise RuntimeError(f"discriminator heads {self.config.heads} give no class scores")
        return DiscriminatorOutput(**out)


class MultiplyEmbedding(nn.Module):
    """The Keras example's conditioning: z ⊙ embedding(y), shape (B, z_dim)."""

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.embedding = embedding

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return z * self.embedding(labels)  # (B, z_dim)


class ConcatEmbedding(nn.Module):
    """[z, embedding(y) * condition_strength] concatenated, shape (B, z_dim + embed_dim)."""

    condition_strength = 1.0  # how much the label counts (a conditioning ramp lowers it early on)

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.embedding = embedding

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        embedded = self.embedding(labels)  # (B, E)
        if self.condition_strength != 1.0:
            embedded = embedded * self.condition_strength
        return torch.cat([z, embedded], dim=1)  # (B, z_dim + E)


class LatentStem(nn.Module):
    """z alone (the label enters the trunk, through class-conditional BatchNorm): (B, z_dim) -> (B, z_dim)."""

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return z


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
