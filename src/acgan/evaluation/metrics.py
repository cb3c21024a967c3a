"""Metric math as pure functions of tensors/arrays (no I/O, no models), each tested on known answers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def feature_stats(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of (N, D) features, in float64."""
    x = features.double().cpu().numpy()
    return x.mean(axis=0), np.cov(x, rowvar=False)


def cholesky_factor(sigma: torch.Tensor) -> torch.Tensor | None:
    """F = L^T with F^T F = sigma for a positive definite (D, D) float64 sigma; None when sigma is singular (or
    rounding put an eigenvalue just below zero)."""
    lower, failed = torch.linalg.cholesky_ex(sigma)
    return None if int(failed) else lower.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1^1/2 S2 S1^1/2)^1/2) for (D, D) positive semi-definite S1, S2: the sum of the square roots of the
    eigenvalues of S1 S2, which equal those of the symmetric F S2 F^T for any F with F^T F = S1 (and, the product's
    eigenvalues being those of S2 S1, the same with the roles swapped). F is a Cholesky factor of whichever matrix
    is positive definite (cheap: no eigenvectors); the symmetric square root only when neither is (fewer samples
    than dimensions on both sides). In torch, not numpy: numpy's BLAS threads and torch's contend for the cores
    when a bootstrap alternates between them (three times slower on 2 cores)."""
    first, second = torch.from_numpy(np.asarray(sigma1, np.float64)), torch.from_numpy(np.asarray(sigma2, np.float64))
    factor, other = cholesky_factor(first), second
    if factor is None:
        factor, other = cholesky_factor(second), first
    if factor is None:
        eigvals, eigvecs = torch.linalg.eigh(first)
        factor, other = (eigvecs * eigvals.clamp(min=0).sqrt()) @ eigvecs.T, second
    middle = factor @ other @ factor.T
    return float(torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2): the Frechet distance of two Gaussians (no complex
    square roots arise: see trace_sqrt_product)."""
    diff = mu1 - mu2
    trace_sqrt = trace_sqrt_product(sigma1, sigma2)
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt, 0.0))


def frechet_distance_of(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between the Gaussian fits of two (N, D) feature sets; NaN when either has fewer than two
    rows (no covariance to fit) or non-finite values."""
    if a.shape[0] < 2 or b.shape[0] < 2 or not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return math.nan
    return frechet_distance(*feature_stats(a), *feature_stats(b))


def conditional_accuracy(
    probs: torch.Tensor, requested: torch.Tensor, num_classes: int
) -> tuple[float, list[float], list[list[int]]]:
    """How often the classifier's top class is the requested one.

    probs (N, K), requested (N,) int64 -> (overall accuracy, per-class accuracy (K,), confusion matrix
    (K, K) of counts with rows = requested class, columns = predicted class).
    """
    predicted = probs.argmax(dim=1)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    confusion.index_put_((requested, predicted), torch.ones_like(requested), accumulate=True)
    per_class = (confusion.diag().double() / confusion.sum(dim=1).clamp(min=1).double()).tolist()
    overall = float((predicted == requested).double().mean()) if requested.numel() else 0.0
    return overall, per_class, confusion.tolist()


def classifier_score(probs: torch.Tensor, eps: float = 1e-12) -> float:
    """exp(E_x KL(p(y|x) || p(y))): the Inception-score formula with any classifier's (N, K) probabilities.

    Ranges from 1 (every image gets the same distribution) to K (confident and balanced).
    """
    p = probs.double()
    marginal = p.mean(dim=0, keepdim=True)
    kl = (p * (torch.log(p + eps) - torch.log(marginal + eps))).sum(dim=1)
    return float(torch.exp(kl.mean()))


def _pairwise_distances(a: torch.Tensor, b: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """(N, M) Euclidean distances between rows of a (N, D) and b (M, D), in float32, computed in chunks."""
    b = b.float()
    return torch.cat([torch.cdist(a[i : i + chunk].float(), b) for i in range(0, a.shape[0], chunk)])


def kth_neighbour_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N,) distance from each row of x to its k-th nearest other row; NaN everywhere when N <= k."""
    if x.shape[0] <= k:
        return torch.full((x.shape[0],), math.nan)
    distances = _pairwise_distances(x, x)
    return distances.kthvalue(k + 1, dim=1).values  # +1: the point itself is at distance 0


@dataclass(frozen=True)
class Memberships:
    """Which k-NN balls hold which points, for (N, D) real and (M, D) fake features (Kynkaanniemi et al. 2019;
    Naeem et al. 2020): the manifold metrics, and their bootstrap over the fakes, are sums over these.

    in_real: (M,) how many real balls hold each fake; covering: (N, M) sparse, fake j lies in real ball i;
    recalled: (N, M) sparse, real i lies in fake ball j.
    """

    in_real: torch.Tensor
    covering: torch.Tensor
    recalled: torch.Tensor
    k: int

    def real_hits(self) -> dict[str, torch.Tensor]:
        """Per real point (N,) 0/1: recall's 'inside some fake ball' and coverage's 'its ball holds some fake',
        over all the fakes (recall and coverage are the means of these)."""
        everyone = torch.ones(self.in_real.shape[0], 1, dtype=torch.float64)
        return {"recall": ((self.recalled @ everyone).squeeze(1) > 0).double(),
                "coverage": ((self.covering @ everyone).squeeze(1) > 0).double()}  # fmt: skip

    def values(self, counts: torch.Tensor | None = None) -> dict[str, float]:
        """precision, recall, density and coverage of the fakes, each fake taken `counts[j]` times (a bootstrap
        resample; None: once each)."""
        m = self.in_real.shape[0]
        weights = torch.ones(m, dtype=torch.float64) if counts is None else counts.double()
        present = weights[:, None]  # (M, 1)
        return {
            "precision": float(((self.in_real > 0).double() * weights).sum() / m),
            "recall": float(((self.recalled @ present).squeeze(1) > 0).double().mean()),
            "density": float((self.in_real.double() * weights).sum() / (m * self.k)),
            "coverage": float(((self.covering @ present).squeeze(1) > 0).double().mean()),
        }


def prdc_memberships(real: torch.Tensor, fake: torch.Tensor, k: int = 5,
                     real_radius: torch.Tensor | None = None, chunk: int = 2048) -> Memberships:  # fmt: skip
    """The k-NN memberships of (N, D) real and (M, D) fake features (both sets need more than k rows)."""
    if real_radius is None:
        real_radius = kth_neighbour_radius(real, k)  # (N,)
    fake_radius = kth_neighbour_radius(fake, k)  # (M,)
    in_real = torch.zeros(fake.shape[0], dtype=torch.int64)
    covering, recalled = [], []
    for start in range(0, real.shape[0], chunk):
        distances = _pairwise_distances(real[start : start + chunk], fake)  # (n, M)
        inside = distances < real_radius[start : start + chunk, None]  # fake j inside real ball i
        in_real += inside.sum(dim=0)
        covering.append(inside.to_sparse())
        recalled.append((distances < fake_radius[None, :]).to_sparse())
    return Memberships(in_real, torch.cat(covering).double().coalesce(), torch.cat(recalled).double().coalesce(), k)


def precision_recall_density_coverage(
    real: torch.Tensor, fake: torch.Tensor, k: int = 5, real_radius: torch.Tensor | None = None
) -> dict[str, float]:
    """k-NN manifold metrics (Kynkaanniemi et al. 2019; Naeem et al. 2020) of (N, D) real and (M, D) fake.

    precision: fraction of fakes inside some real k-NN ball; recall: fraction of reals inside some fake
    k-NN ball; density: mean number of real balls containing each fake, divided by k; coverage: fraction of
    real balls containing at least one fake. `real_radius` (N,) may be passed in when already known.
    Every value is NaN when either set has k rows or fewer (no k-th neighbour to measure a ball by).
    """
    if min(real.shape[0], fake.shape[0]) <= k:
        return dict.fromkeys(("precision", "recall", "density", "coverage"), math.nan)
    return prdc_memberships(real, fake, k, real_radius).values()


def kernel_distance(a: torch.Tensor, b: torch.Tensor, subsets: int = 50, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """The kernel distance of (N, D) and (M, D) features (KID, Binkowski et al. 2018, section 3): the unbiased
    squared MMD with the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3, averaged over `subsets` random subsets of
    min(subset_size, N, M) rows of each set, as torch-fidelity and the paper do. Unbiased, so it can be compared
    across sample sizes (unlike FD). (mean, standard deviation over the subsets); NaN when a set has < 2 rows."""
    size = min(subset_size, a.shape[0], b.shape[0])
    if size < 2 or not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return math.nan, math.nan
    rng = torch.Generator().manual_seed(seed)
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[torch.randperm(a.shape[0], generator=rng)[:size]].double()
        y = b[torch.randperm(b.shape[0], generator=rng)[:size]].double()
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        same = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (size * (size - 1))
        values.append(float(same - 2 * kxy.mean()))
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), spread


# MS-SSIM at 28 px: three scales (28, 14, 7) with a 7-tap Gaussian; the first three of Wang et al.'s
# five scale weights, renormalised (the full five-scale version needs images of at least 161 px).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001)
_C1, _C2 = 0.01**2, 0.03**2


WINDOW_SIZE = 7


def _gaussian_window(size: int = WINDOW_SIZE, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1, 1, size, size)


def _ssim_parts(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image mean SSIM and contrast-structure terms of (B, C, H, W) images in [0, 1]."""
    channels = x.shape[1]
    w = window.expand(channels, 1, -1, -1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    cs = (2 * cov + _C2) / (var_x + var_y + _C2)
    luminance = (2 * mu_x * mu_y + _C1) / (mu_x**2 + mu_y**2 + _C1)
    return (luminance * cs).flatten(1).mean(dim=1), cs.flatten(1).mean(dim=1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, weights: tuple[float, ...] = MS_SSIM_WEIGHTS) -> torch.Tensor:
    """Multi-scale SSIM of paired (B, C, H, W) images in [-1, 1] -> (B,) values; 1 for identical images.

    Higher means more similar; the AC-GAN paper uses the mean over same-class pairs as (inverse) diversity.
    Images too small for every scale use the scales that fit the 7-tap window (16 px: two; under 7 px: one
    scale with a window the size of the image).
    """
    x, y = (x.double() + 1) / 2, (y.double() + 1) / 2
    side = min(x.shape[-2:])
    scales = sum(1 for level in range(len(weights)) if side >> level >= WINDOW_SIZE)
    weights = weights[: max(1, scales)]
    window = _gaussian_window(min(WINDOW_SIZE, side)).to(x.device)
    normalised = torch.tensor(weights, dtype=torch.float64) / sum(weights)
    result = torch.ones(x.shape[0], dtype=torch.float64)
    for level, weight in enumerate(normalised.tolist()):
        ssim, cs = _ssim_parts(x, y, window)
        value = ssim if level == len(weights) - 1 else cs
        result = result * value.clamp(min=1e-6) ** weight  # clamp: a negative cs would make the power undefined
        if level < len(weights) - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return result


def pairwise_ms_ssim(images: torch.Tensor, num_pairs: int, generator: torch.Generator) -> torch.Tensor:
    """(num_pairs,) MS-SSIM of random pairs of distinct images from (N, C, H, W) in [-1, 1]; empty when N < 2."""
    n = images.shape[0]
    if n < 2:
        return torch.empty(0, dtype=torch.float64)
    first = torch.randint(n, (num_pairs,), generator=generator)
    second = (first + torch.randint(1, n, (num_pairs,), generator=generator)) % n  # never the same index
    return ms_ssim(images[first], images[second])


def mean_pairwise_ms_ssim(images: torch.Tensor, num_pairs: int, generator: torch.Generator) -> float:
    """Mean MS-SSIM over `num_pairs` random pairs of distinct images from (N, C, H, W) in [-1, 1]; NaN when N < 2."""
    values = pairwise_ms_ssim(images, num_pairs, generator)
    return float(values.mean()) if values.numel() else math.nan


def diversity_verdict(generated: torch.Tensor, real: torch.Tensor) -> str:
    """Compare same-class pair MS-SSIM values (P,) of generated and real images -> a verdict for the class.

    "collapsed": the average generated pair is as alike as the 10% most alike real pairs (real data's own
    spread sets the bar); "less varied": more alike than real pairs beyond sampling noise (the difference of
    the means exceeds 3 standard errors); else "as varied" (or "n/a" without pairs).
    """
    if not generated.numel() or not real.numel():
        return "n/a"
    gen_mean, real_mean = float(generated.mean()), float(real.mean())
    if gen_mean > float(torch.quantile(real, 0.9)):
        return "collapsed"
    noise = math.sqrt(float(generated.var()) / generated.numel() + float(real.var()) / real.numel())
    return "less varied" if gen_mean - real_mean > 3 * noise else "as varied"


def nearest_neighbour_distances(queries: torch.Tensor, references: torch.Tensor, chunk: int = 500) -> torch.Tensor:
    """(N,) Euclidean distance from each flattened query image to its nearest reference image.

    Images (N, C, H, W) and (M, C, H, W) in [-1, 1] are compared in [0, 1] pixel units.
    """
    q = ((queries.flatten(1).float() + 1) / 2).contiguous()
    r = ((references.flatten(1).float() + 1) / 2).contiguous()
    r_sq = (r * r).sum(dim=1)  # (M,)
    out = []
    for start in range(0, q.shape[0], chunk):
        block = q[start : start + chunk]  # (b, P)
        squared = (block * block).sum(dim=1, keepdim=True) - 2 * block @ r.T + r_sq[None, :]  # (b, M)
        out.append(squared.min(dim=1).values.clamp(min=0).sqrt())
    return torch.cat(out) if out else torch.empty(0)
