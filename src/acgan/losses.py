"""Loss terms as pure functions of discriminator logits (sigmoid/softmax applied here, never in the models).

Each objective in acgan.objectives is a weighted sum of these terms; every one works in fp32 even when the
networks ran under bf16 autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def source_bce(adv_logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean binary cross-entropy of (B,) logits against a constant target in [0, 1] (1 real, 0 generated).

    -mean(t log sigmoid(l) + (1 - t) log(1 - sigmoid(l))). A target of 0.95 is the Keras example's one-sided
    soft label (Salimans et al. 2016, section 3.4).
    """
    adv_logits = adv_logits.float()
    return F.binary_cross_entropy_with_logits(adv_logits, torch.full_like(adv_logits, target))


def source_loss(adv_logits: torch.Tensor, is_real: bool) -> torch.Tensor:
    """Mean BCE of (B,) logits against an all-real (1) or all-generated (0) hard target."""
    return source_bce(adv_logits, 1.0 if is_real else 0.0)


def hinge_discriminator(adv_logits: torch.Tensor, is_real: bool) -> torch.Tensor:
    """D's hinge loss on (B,) logits (Lim & Ye 2017; Miyato et al. 2018): mean relu(1 - l) real, relu(1 + l) fake."""
    adv_logits = adv_logits.float()
    return F.relu(1.0 - adv_logits).mean() if is_real else F.relu(1.0 + adv_logits).mean()


def hinge_generator(adv_logits: torch.Tensor) -> torch.Tensor:
    """G's hinge loss on (B,) logits of its images: -mean(l)."""
    return -adv_logits.float().mean()


def relativistic_pairing(better: torch.Tensor, worse: torch.Tensor) -> torch.Tensor:
    """The relativistic pairing loss of R3GAN (Huang et al. 2024, arXiv 2501.05441, eq. 2), mean over pairs:
    E[f(worse - better)] with f = softplus, i.e. -log sigmoid(better - worse): `better` should score above `worse`.

    D minimises relativistic_pairing(D(real), D(fake)), G minimises relativistic_pairing(D(fake), D(real)).
    (B,) logits each, paired in order.
    """
    return F.softplus(worse.float() - better.float()).mean()


def paired_with(logits: torch.Tensor, count: int) -> torch.Tensor:
    """(count,) logits from (N,) logits repeated in order: a partner for each of `count` others."""
    return logits.repeat((count + len(logits) - 1) // len(logits))[:count]


def class_loss(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (B, K) logits against (B,) int64 labels in [0, K) (softmax applied here)."""
    return F.cross_entropy(class_logits.float(), labels)


def data_to_data_cross_entropy(
    embedding: torch.Tensor, proxies: torch.Tensor, labels: torch.Tensor, margin: float, temperature: float
) -> torch.Tensor:
    """ReACGAN's data-to-data cross-entropy (Kang et al. 2021, arXiv 2111.01118, eq. 6), mean over the batch.

    embedding: (B, E) image embeddings; proxies: (B, E) the proxies of each image's class; labels: (B,).
    With f, v the L2-normalised embedding and proxy, m_p = margin, m_n = 1 - margin, tau = temperature:

        -log( exp([f_i.v_i - m_p]_- / tau) /
              (exp([f_i.v_i - m_p]_- / tau) + sum_{j: y_j != y_i} exp([f_i.f_j - m_n]_+ / tau)) )

    Positives are pulled to the proxy until their cosine passes m_p; only images of *other* classes are
    repelled (false-negative removal), and only while their cosine exceeds m_n.
    """
    f = F.normalize(embedding.float(), dim=1)  # (B, E)
    v = F.normalize(proxies.float(), dim=1)  # (B, E)
    positive = torch.clamp((f * v).sum(dim=1) - margin, max=0.0) / temperature  # (B,) [.]_-
    similarities = torch.clamp(f @ f.T - (1.0 - margin), min=0.0) / temperature  # (B, B) [.]_+
    other_class = labels[:, None] != labels[None, :]  # (B, B), False on the diagonal
    negatives = similarities.masked_fill(~other_class, float("-inf"))  # (B, B)
    logits = torch.cat([positive[:, None], negatives], dim=1)  # (B, 1 + B)
    return (torch.logsumexp(logits, dim=1) - positive).mean()


def source_accuracy(adv_logits: torch.Tensor, is_real: bool) -> torch.Tensor:
    """Fraction of (B,) logits on the correct side of 0, as a scalar tensor."""
    return ((adv_logits > 0) == is_real).float().mean()


def class_accuracy(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of (B, K) logits whose argmax equals the (B,) label, as a scalar tensor."""
    return (class_logits.argmax(dim=1) == labels).float().mean()
