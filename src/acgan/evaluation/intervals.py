"""95% confidence intervals of an evaluation's numbers, by the bootstrap (Efron 1979): the generated (and, for the
Frechet distances, the real) features are resampled with replacement, each metric recomputed on the resample, and
the 2.5th and 97.5th percentiles of its values are the interval. Features are computed once; only the statistics
are recomputed, from features centred once.

- conditional accuracy: the per-sample hits resampled;
- FD and intra-class FD: the generated features resampled, and the training features (the real side) resampled by
  blocks: split once at random into REAL_BLOCKS blocks (per class REAL_BLOCKS / K, at least MIN_CLASS_BLOCKS; a
  block per row when there are fewer rows), whose sums and second moments are computed once per evaluator and
  drawn with replacement. Blocks of independent rows are themselves independent, so a resample of blocks has the
  variance of a resample of rows; each draw then costs a (B,) x (B, D*D) product instead of a pass over 60,000
  rows;
- precision and density (means over the generated points): the generated points resampled over the k-NN
  memberships of the full sample (the balls' radii stay those of the full sets: the interval is of the sample, not
  of the radii);
- recall and coverage (means over the real points of "some generated point reaches it"): the real points'
  hits resampled. Resampling the generated points instead would read low: a resample holds only about 63% of the
  distinct points, so fewer of them reach each real point;
- KID: the spread of its subset estimates, mean +- 1.96 standard errors (it is already an average of subsets).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from acgan.evaluation.metrics import Memberships, frechet_distance

RESAMPLES = 200
LEVEL = 0.95
REAL_BLOCKS, MIN_CLASS_BLOCKS = 512, 32  # the real side's bootstrap units (all classes / per class)


def percentile_interval(values: list[float], level: float = LEVEL) -> tuple[float, float]:
    """The central `level` interval of bootstrap values (NaN ends when there are none or they are not finite)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


class Centred:
    """(N, D) features centred once on their mean, so each resample's statistics need only float32 products.

    A bootstrap resample's weighted mean differs from the full mean by O(1/sqrt(N)) of the spread, so the
    covariance about the full mean, corrected by that small offset, loses no accuracy in float32; converting the
    60,000 training rows to float64 for every resample (the direct way) took most of an evaluation's time."""

    def __init__(self, features: torch.Tensor) -> None:
        wide = features.double()
        self.mean = wide.mean(dim=0)  # (D,) float64
        self.rows = (wide - self.mean).float()  # (N, D) float32, centred

    def stats(self, counts: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Mean (D,) and covariance (D, D) (float64) of the features with row i taken counts[i] times (N,)."""
        drawn = counts.nonzero().squeeze(1)  # a resample leaves about 37% of the rows out: skip them
        rows, weights = self.rows[drawn], counts[drawn].float()
        total = float(counts.sum())
        offset = (weights @ rows).double() / total  # (D,) weighted mean of the centred rows
        second = ((rows * weights[:, None]).T @ rows).double()  # (D, D) sum of w c c^T
        cov = (second - total * torch.outer(offset, offset)) / (total - 1)
        return (self.mean + offset).numpy(), cov.numpy()


class BlockMoments:
    """(N, D) features split once at random into `blocks` blocks of (nearly) equal size, each kept as its row count,
    sum and second moment about the features' mean: a bootstrap draws blocks, not rows (the module docstring)."""

    def __init__(self, features: torch.Tensor, blocks: int, seed: int = 0) -> None:
        centred = Centred(features)
        order = torch.randperm(features.shape[0], generator=torch.Generator().manual_seed(seed))
        chunks = torch.tensor_split(centred.rows[order], min(blocks, features.shape[0]))
        self.mean = centred.mean  # (D,) float64
        self.counts = torch.tensor([float(len(chunk)) for chunk in chunks])  # (B,)
        self.sums = torch.stack([chunk.sum(dim=0) for chunk in chunks])  # (B, D) of centred rows
        self.seconds = torch.stack([(chunk.T @ chunk).flatten() for chunk in chunks])  # (B, D*D)

    def __len__(self) -> int:
        return self.counts.shape[0]

    def stats(self, counts: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Mean (D,) and covariance (D, D) (float64) of the rows of block b taken counts[b] times (B,)."""
        weights = counts.float()
        total = float(weights @ self.counts)
        offset = (weights @ self.sums).double() / total  # (D,) weighted mean of the centred rows
        dim = offset.shape[0]
        second = (weights @ self.seconds).double().view(dim, dim)  # (D, D) sum of w c c^T
        cov = (second - total * torch.outer(offset, offset)) / (total - 1)
        return (self.mean + offset).numpy(), cov.numpy()


def real_blocks(features: torch.Tensor, seed: int = 0) -> BlockMoments:
    """The real side of the FD interval: REAL_BLOCKS blocks of (N, D) features."""
    return BlockMoments(features, REAL_BLOCKS, seed)


def class_blocks(features: torch.Tensor, labels: torch.Tensor, classes: int, seed: int = 0) -> list[BlockMoments]:
    """The real side of the intra-class FD interval: each class's (N_c, D) features in REAL_BLOCKS / K blocks (at
    least MIN_CLASS_BLOCKS)."""
    blocks = max(MIN_CLASS_BLOCKS, REAL_BLOCKS // classes)
    return [BlockMoments(features[labels == c], blocks, seed + c) for c in range(classes)]


def weighted_stats(features: torch.Tensor, counts: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of (N, D) features with each row taken counts[i] times (float64 results)."""
    return Centred(features).stats(counts)


def resample_counts(n: int, rng: torch.Generator) -> torch.Tensor:
    """How many times each of n items is drawn in one bootstrap resample of size n: (n,) int64."""
    return torch.bincount(torch.randint(n, (n,), generator=rng), minlength=n)


def bootstrap(statistic: Callable[[torch.Generator], float], resamples: int = RESAMPLES,
              seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """The percentile interval of `statistic(rng)` over `resamples` draws."""
    rng = torch.Generator().manual_seed(seed)
    return percentile_interval([statistic(rng) for _ in range(resamples)])


def frechet_interval(generated: torch.Tensor, real: BlockMoments, resamples: int = RESAMPLES,
                     seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """The interval of FD(generated, real): the (N, D) generated features resampled, the real side's blocks too."""
    if generated.shape[0] < 2 or len(real) < 2:
        return math.nan, math.nan
    fake = Centred(generated)

    def one(rng: torch.Generator) -> float:
        return frechet_distance(*fake.stats(resample_counts(generated.shape[0], rng)),
                                *real.stats(resample_counts(len(real), rng)))  # fmt: skip

    return bootstrap(one, resamples, seed)


def intra_frechet_interval(generated: torch.Tensor, labels: torch.Tensor, real: list[BlockMoments],
                           resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """The interval of the mean over classes of FD(generated of class c, real of class c), resampled per class:
    (N, D) generated features with their (N,) labels, and each class's real blocks (class_blocks)."""
    classes = len(real)
    split = [(generated[labels == c], real[c]) for c in range(classes)]
    if any(g.shape[0] < 2 or len(r) < 2 for g, r in split):
        return math.nan, math.nan
    per_class = [(Centred(g), r) for g, r in split]

    def one(rng: torch.Generator) -> float:
        return sum(frechet_distance(*g.stats(resample_counts(g.rows.shape[0], rng)),
                                    *r.stats(resample_counts(len(r), rng))) for g, r in per_class) / classes  # fmt: skip

    return bootstrap(one, resamples, seed)


def mean_interval(hits: torch.Tensor, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """The interval of the mean of (N,) per-sample values (conditional accuracy's hits)."""
    if hits.numel() == 0:
        return math.nan, math.nan
    values = hits.double()
    return bootstrap(lambda rng: float((values * resample_counts(values.numel(), rng)).sum() / values.numel()),
                     resamples, seed)  # fmt: skip


def membership_intervals(members: Memberships, resamples: int = RESAMPLES,
                         seed: int = 0) -> dict[str, tuple[float, float]]:  # fmt: skip
    """The intervals of precision and density (the generated points resampled) and of recall and coverage (the
    real points' hits resampled)."""
    rng = torch.Generator().manual_seed(seed)
    draws = [members.values(resample_counts(members.in_real.shape[0], rng)) for _ in range(resamples)]
    intervals = {name: percentile_interval([draw[name] for draw in draws]) for name in ("precision", "density")}
    for offset, (name, hits) in enumerate(members.real_hits().items(), start=1):
        intervals[name] = mean_interval(hits, resamples, seed + offset)
    return intervals


def kernel_interval(mean: float, std: float, subsets: int) -> tuple[float, float]:
    """KID's interval from its subset estimates: mean +- 1.96 standard errors."""
    half = 1.959964 * std / math.sqrt(max(subsets, 1))
    return mean - half, mean + half
