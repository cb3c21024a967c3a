"""Judge a generator with a reference classifier: every metric next to its real-data value.

The real-data reference is the same metric computed on held-out real test images against the training
images, so each number can be read ("0.93 conditional accuracy, where real test images score 0.99").
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from acgan.data.dataset import DatasetInfo, ImageDataset, data_fingerprint
from acgan.data.locate import cache_root
from acgan.errors import AcganError
from acgan.evaluation.classifier import FEATURE_DIM, Judgement, ReferenceClassifier, judge
from acgan.evaluation.intervals import (
    BlockMoments,
    class_blocks,
    frechet_interval,
    intra_frechet_interval,
    kernel_interval,
    mean_interval,
    membership_intervals,
    real_blocks,
)
from acgan.evaluation.metrics import (
    Memberships,
    classifier_score,
    conditional_accuracy,
    diversity_verdict,
    frechet_distance_of,
    kernel_distance,
    kth_neighbour_radius,
    nearest_neighbour_distances,
    pairwise_ms_ssim,
    prdc_memberships,
    precision_recall_density_coverage,
)
from acgan.evaluation.registry import METRICS
from acgan.files import atomic_write_bytes, written_aside
from acgan.memory import require_memory, sampling_bytes
from acgan.models.networks import Generator
from acgan.sampling import sample
from acgan.visualize import pyplot, save_figure

PRDC_REAL_SIZE = 10_000  # training images forming the real manifold for precision/recall/density/coverage
MS_SSIM_PAIRS = 200  # random same-class pairs per class
MEMORISATION_SIZE = 1000  # samples (and test images) whose nearest training image is searched
REFERENCE_VERSION = 3  # what a cached real-data reference holds (2: MS-SSIM pair values per class; 3: KID)
KID_SUBSETS, KID_SIZE = 50, 1000  # KID's random subsets (Binkowski et al. 2018 use 100 of 1,000)
CLASS_KID_SUBSETS, CLASS_KID_SIZE = 10, 500  # per class: fewer, smaller subsets (a class has about N/K images)


@dataclass
class Evaluator:
    """Holds what every evaluation of one data set shares: the classifier, the real data and their features."""

    info: DatasetInfo
    classifier: ReferenceClassifier
    train: ImageDataset
    test: ImageDataset
    seed: int = 0
    classifier_facts: dict[str, Any] = field(default_factory=dict)  # the classifier's metadata (test_accuracy, ...)
    _train_features: torch.Tensor | None = None
    _real_manifold: tuple[torch.Tensor, torch.Tensor] | None = None
    _real_blocks: tuple[BlockMoments, list[BlockMoments]] | None = None
    _references: dict[int, dict[str, Any]] = field(default_factory=dict)

    def cache_key(self) -> str:
        """Changes with the data, the classifier weights and the reference settings."""
        digest = hashlib.sha256()
        digest.update(
            json.dumps(
                [self.info.to_dict(), PRDC_REAL_SIZE, MS_SSIM_PAIRS, MEMORISATION_SIZE, self.seed, REFERENCE_VERSION]
            ).encode()
        )
        digest.update(f"{data_fingerprint(self.train)}-{data_fingerprint(self.test)}".encode())
        for value in self.classifier.state_dict().values():
            digest.update(value.cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    def train_features(self) -> torch.Tensor:
        """(N_train, 128) classifier features of the training images, cached on disk by `cache_key`."""
        if self._train_features is None:
            path = cache_root() / "eval" / f"{self.info.name}-{self.cache_key()}-train-features.safetensors"
            if path.is_file():
                self._train_features = load_file(path)["features"]
            else:
                self._train_features = judge(self.classifier, self.train).features
                path.parent.mkdir(parents=True, exist_ok=True)
                with written_aside(path) as tmp:
                    save_file({"features": self._train_features.contiguous()}, tmp)
        return self._train_features

    def real_manifold(self) -> tuple[torch.Tensor, torch.Tensor]:
        """PRDC_REAL_SIZE training features and their 5-NN radii (computed once)."""
        if self._real_manifold is None:
            order = torch.randperm(len(self.train), generator=torch.Generator().manual_seed(self.seed))
            real = self.train_features()[order[:PRDC_REAL_SIZE]]
            self._real_manifold = (real, kth_neighbour_radius(real, 5))
        return self._real_manifold

    def real_blocks(self) -> tuple[BlockMoments, list[BlockMoments]]:
        """The training features' bootstrap blocks, overall and per class (computed once: acgan.evaluation.intervals)."""
        if self._real_blocks is None:
            features, labels = self.train_features(), self.train.labels
            self._real_blocks = (real_blocks(features, self.seed),
                                 class_blocks(features, labels, self.info.num_classes, self.seed))  # fmt: skip
        return self._real_blocks

    def reference(self, num: int) -> dict[str, Any]:
        """The metrics of `num` real test images against the training images (cached per `num`)."""
        num = min(num, len(self.test))
        if num not in self._references:
            path = cache_root() / "eval" / f"{self.info.name}-{self.cache_key()}-reference-{num}.json"
            if path.is_file():
                self._references[num] = json.loads(path.read_text())
            else:
                index = torch.randperm(len(self.test), generator=torch.Generator().manual_seed(self.seed))[:num]
                report = self._measure(self.test.batch(index), self.test.labels[index])
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(path, json.dumps(report).encode())
                self._references[num] = report
        return self._references[num]

    def evaluate(self, generator: Generator, num: int = 10_000, seed: int = 0, precision: str = "fp32",
                 intervals: bool = True) -> dict[str, Any]:  # fmt: skip
        """Generate `num` class-balanced samples (at `precision`, see acgan.sample) and report every metric beside its
        real-data value (with 95% bootstrap intervals unless `intervals` is False)."""
        start = time.monotonic()
        report = self.evaluate_images(*self.samples_of(generator, num, seed, precision), intervals=intervals)
        report.update(seed=seed, sampling_precision=precision, seconds=round(time.monotonic() - start, 2))
        return report

    def samples_of(self, generator: Generator, num: int, seed: int = 0,
                   precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """`num` (rounded down to a multiple of the classes) class-balanced samples of `generator`: (N, C, H, W) images
        in [-1, 1] on the CPU and their (N,) labels, a function of (weights, seed)."""
        k = self.info.num_classes
        per_class = num // k
        if per_class < 2:
            raise AcganError(f"evaluation needs at least 2 samples per class: num >= {2 * k} for {self.info.name}")
        num = per_class * k
        need = sampling_bytes(generator.config, num, 256) + self.measuring_bytes(num)
        require_memory(need, torch.device("cpu"), f"evaluating {num} samples", "use a smaller --num")
        labels = torch.arange(k).repeat_interleave(per_class)  # (K * per_class,)
        return sample(generator, labels, seed=seed, precision=precision).cpu(), labels

    def views(self, images: torch.Tensor, labels: torch.Tensor, seed: int = 0, cas: bool = False,
              inception_weights: Path | None = None, show_progress: bool = True) -> dict[str, Any]:  # fmt: skip
        """The optional views of the same (N, C, H, W) samples: the Classification Accuracy Score (`cas`) and FID, KID
        and IS in the FID Inception-v3's feature space (`inception_weights`: its verified weights file)."""
        found: dict[str, Any] = {}
        if cas:
            found["cas"] = self.cas_of(images, labels, seed, show_progress)
        if inception_weights is not None:
            from acgan.evaluation.inception import file_sha256, inception_report, load_inception

            network = load_inception(inception_weights)
            found["inception"] = inception_report(network, file_sha256(inception_weights), images, self.train,
                                                  self.test, show_progress)  # fmt: skip
        return found

    def cas_of(self, images: torch.Tensor, labels: torch.Tensor, seed: int, show_progress: bool = True
               ) -> dict[str, float]:  # fmt: skip
        """The Classification Accuracy Score of (N, C, H, W) samples made for (N,) labels."""
        from acgan.evaluation.cas import classification_accuracy_score

        return classification_accuracy_score(images, labels, self.train, self.test, seed, show_progress)

    def measuring_bytes(self, num: int) -> int:
        """Memory to judge `num` images beyond the images: features and the (N, PRDC_REAL_SIZE) distances."""
        return num * (FEATURE_DIM * 4 + min(PRDC_REAL_SIZE, len(self.train)) * 6)

    def evaluate_images(self, images: torch.Tensor, labels: torch.Tensor, intervals: bool = True) -> dict[str, Any]:
        """Report every metric of (N, C, H, W) images in [-1, 1] made for (N,) labels beside its real-data value: the
        same for a checkpoint's samples and for any other generator's (acgan.evaluate_samples)."""
        start = time.monotonic()
        generated = self._measure(images, labels, intervals)
        reference = self.reference(len(labels))
        report = _combine(generated, reference, self.info)
        report["classifier"] = {
            "arch": self.classifier.config.get("arch", "small"),
            "test_accuracy": reference["conditional_accuracy"],  # on the real test images the reference used
            "test_images": min(len(labels), len(self.test)),
            **{k: self.classifier_facts[k] for k in ("train_seconds", "train_images") if k in self.classifier_facts},
        }
        report.update(num_samples=len(labels), seed=0, seconds=round(time.monotonic() - start, 2))
        return report

    def _intervals(self, judged: Judgement, labels: torch.Tensor, members: Memberships | None,
                   kid: tuple[float, float]) -> dict[str, tuple[float, float]]:  # fmt: skip
        """The 95% bootstrap intervals of the headline metrics (acgan.evaluation.intervals)."""
        hits = (judged.probs.argmax(dim=1) == labels).double()
        found = {
            "conditional_accuracy": mean_interval(hits, seed=self.seed),
            "fd": frechet_interval(judged.features, self.real_blocks()[0], seed=self.seed),
            "intra_fd": intra_frechet_interval(judged.features, labels, self.real_blocks()[1], seed=self.seed),
            "kid": kernel_interval(*kid, KID_SUBSETS),
        }
        return found | (membership_intervals(members, seed=self.seed) if members else {})

    def _nearest_training_distances(self, queries: torch.Tensor, chunk: int = 10_000) -> torch.Tensor:
        """(N,) pixel distance from each query to its nearest training image, reading the training set in chunks."""
        best = torch.full((queries.shape[0],), math.inf)
        for start in range(0, len(self.train), chunk):
            reference = self.train.batch(slice(start, start + chunk))  # (chunk, C, H, W)
            best = torch.minimum(best, nearest_neighbour_distances(queries, reference))
        return best

    def _measure(self, images: torch.Tensor, labels: torch.Tensor, intervals: bool = False) -> dict[str, Any]:
        """Every metric of a labelled image set (real or generated) against the training set, with the 95% bootstrap
        intervals of the headline metrics when asked (acgan.evaluation.intervals)."""
        k = self.info.num_classes
        judged = judge(self.classifier, images)
        train_features = self.train_features()
        accuracy, per_class_accuracy, confusion = conditional_accuracy(judged.probs, labels, k)
        per_class_fd, per_class_kid, per_class_ms_ssim = [], [], []
        rng = torch.Generator().manual_seed(self.seed)
        for c in range(k):
            mine, theirs = judged.features[labels == c], train_features[self.train.labels == c]
            per_class_fd.append(frechet_distance_of(mine, theirs))
            per_class_kid.append(kernel_distance(mine, theirs, CLASS_KID_SUBSETS, CLASS_KID_SIZE, self.seed)[0])
            per_class_ms_ssim.append(pairwise_ms_ssim(images[labels == c], MS_SSIM_PAIRS, rng).tolist())
        real, real_radius = self.real_manifold()
        members = prdc_memberships(real, judged.features, 5, real_radius) if min(len(real), len(labels)) > 5 else None
        prdc = members.values() if members else precision_recall_density_coverage(real, judged.features)
        kid, kid_std = kernel_distance(judged.features, train_features, KID_SUBSETS, KID_SIZE, self.seed)
        memorisation_index = torch.randperm(len(images), generator=rng)[:MEMORISATION_SIZE]
        nn_distances = self._nearest_training_distances(images[memorisation_index])
        found = {"intervals": self._intervals(judged, labels, members, (kid, kid_std)) if intervals else {}}
        return {
            **found,
            "conditional_accuracy": accuracy,
            "fd": frechet_distance_of(judged.features, train_features),
            "intra_fd": sum(per_class_fd) / k,
            "kid": kid,
            "intra_kid": sum(per_class_kid) / k,
            "classifier_score": classifier_score(judged.probs),
            **prdc,
            "ms_ssim": sum(_mean(pairs) for pairs in per_class_ms_ssim) / k,
            "nn_distance_median": float(nn_distances.median()),
            "nn_distance_p01": float(torch.quantile(nn_distances.double(), 0.01)),
            "per_class_accuracy": per_class_accuracy,
            "per_class_fd": per_class_fd,
            "per_class_kid": per_class_kid,
            "per_class_ms_ssim": [_mean(pairs) for pairs in per_class_ms_ssim],
            "per_class_ms_ssim_pairs": per_class_ms_ssim,  # (K, MS_SSIM_PAIRS): the verdicts' evidence
            "confusion": confusion,
            "nn_distances": nn_distances.tolist(),
        }


def _combine(generated: dict[str, Any], reference: dict[str, Any], info: DatasetInfo) -> dict[str, Any]:
    """Lay out generated and real values side by side, flag collapsed classes, summarise memorisation."""
    metrics = {m.name: {"generated": generated[m.name], "real": reference.get(m.name, math.nan)} for m in METRICS}
    for name, (low, high) in generated.get("intervals", {}).items():
        if name in metrics:
            metrics[name]["interval"] = [low, high]
    per_class = []
    for c, name in enumerate(info.class_names):
        ms_gen, ms_real = generated["per_class_ms_ssim"][c], reference["per_class_ms_ssim"][c]
        pairs_gen, pairs_real = (torch.tensor(report["per_class_ms_ssim_pairs"][c], dtype=torch.float64)
                                 for report in (generated, reference))  # fmt: skip
        diversity = diversity_verdict(pairs_gen, pairs_real)
        per_class.append({
            "class": name,
            "accuracy": generated["per_class_accuracy"][c], "real_accuracy": reference["per_class_accuracy"][c],
            "fd": generated["per_class_fd"][c], "real_fd": reference["per_class_fd"][c],
            "kid": generated["per_class_kid"][c], "real_kid": reference.get("per_class_kid", [math.nan] * len(info.class_names))[c],
            "ms_ssim": ms_gen, "real_ms_ssim": ms_real,
            "real_ms_ssim_p90": float(torch.quantile(pairs_real, 0.9)) if pairs_real.numel() else math.nan,
            "diversity": diversity, "collapsed": diversity == "collapsed",
        })  # fmt: skip
    threshold = reference["nn_distance_p01"]  # 1% of real test images are this close to a training image
    close = sum(d < threshold for d in generated["nn_distances"]) / max(1, len(generated["nn_distances"]))
    return {
        "dataset": info.name,
        "metrics": metrics,
        "per_class": per_class,
        "collapsed_classes": [row["class"] for row in per_class if row["diversity"] == "collapsed"],
        "less_varied_classes": [row["class"] for row in per_class if row["diversity"] == "less varied"],
        "confusion": generated["confusion"],
        "memorisation": {
            "nn_distance_median": generated["nn_distance_median"],
            "real_nn_distance_median": reference["nn_distance_median"],
            "fraction_closer_than_real_p01": close,
            "real_p01": threshold,
        },
    }


def format_report(report: dict[str, Any]) -> str:
    """A readable table: each metric beside the real-data value, then per-class rows."""
    lines = []
    judge_facts = report.get("classifier")
    if judge_facts:
        lines += [f"reference classifier ({judge_facts['arch']}): test accuracy {judge_facts['test_accuracy']:.3f} on "
                  f"{judge_facts['test_images']} real test images; read every metric beside its real-data value", ""]  # fmt: skip
    lines += [f"{'metric':<44}{'generated (95% interval)':>22}{'real data':>12}", "-" * 78]
    for metric in METRICS:
        row = report["metrics"][metric.name]
        lines.append(f"{metric.label:<44}{_with_interval(row):>22}{row['real']:>12.4f}")
    lines += _view_rows(report)
    lines += [
        "",
        f"{'class':<14}{'accuracy':>10}{'(real)':>8}{'FD':>9}{'(real)':>8}{'MS-SSIM':>9}{'(real)':>8}",
        "-" * 66,
    ]
    for row in report["per_class"]:
        flag = f"  {row['diversity']}" if row.get("diversity", "as varied") not in ("as varied", "n/a") else ""
        lines.append(f"{row['class'][:13]:<14}{row['accuracy']:>10.3f}{row['real_accuracy']:>8.3f}{row['fd']:>9.2f}"
                     f"{row['real_fd']:>8.2f}{row['ms_ssim']:>9.3f}{row['real_ms_ssim']:>8.3f}{flag}")  # fmt: skip
    if report.get("collapsed_classes") or report.get("less_varied_classes"):
        lines.append("MS-SSIM verdicts: 'collapsed' = the average pair of samples is as alike as the 10% most alike "
                     "pairs of real images of the class; 'less varied' = more alike than real pairs beyond sampling "
                     "noise (3 standard errors)")  # fmt: skip
    memo = report["memorisation"]
    lines += ["", f"memorisation: {memo['fraction_closer_than_real_p01']:.1%} of samples are closer to a training image "
              f"than 99% of real test images are (real data: 1%)"]  # fmt: skip
    lines.append(f"{report['num_samples']} samples, seed {report['seed']}, {report['seconds']:.1f} s")
    return "\n".join(lines)


def _view_rows(report: dict[str, Any]) -> list[str]:
    """The table's rows of the optional views: the CAS, and FID, KID and IS in Inception-v3's feature space."""
    rows = []
    if "cas" in report:
        rows.append(f"{'classification accuracy score (CAS)':<44}{report['cas']['generated']:>22.4f}"
                    f"{report['cas']['real']:>12.4f}")  # fmt: skip
    if "inception" in report:
        found = report["inception"]
        generated, real = found["generated"], found["real"]
        rows.append(f"Inception-v3 (vs {found['reference_images']:,} training images; real: "
                    f"{found['real_images']:,} test images):")  # fmt: skip
        for key, label in (("fid", "FID"), ("kid", "KID"), ("inception_score", "Inception Score")):
            spread = generated.get(f"{key}_std")
            shown = f"{generated[key]:.4f}" + (f" (sd {spread:.4f})" if spread is not None else "")  # over subsets
            rows.append(f"{'  ' + label:<44}{shown:>22}{real[key]:>12.4f}")
    return rows


def _with_interval(row: dict[str, Any]) -> str:
    """'0.9300 ± 0.0040' (half the 95% interval's width) or the value alone."""
    low, high = row.get("interval") or (math.nan, math.nan)
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{row['generated']:.4f}"
    return f"{row['generated']:.4f} ± {(high - low) / 2:.4f}"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def save_confusion_plot(report: dict[str, Any], path: Path) -> None:
    """Heat map of the confusion matrix, rows normalised: requested class (rows) vs predicted (columns)."""
    plt = pyplot()
    confusion = torch.tensor(report["confusion"], dtype=torch.float64)
    rates = confusion / confusion.sum(dim=1, keepdim=True).clamp(min=1)
    names = [row["class"] for row in report["per_class"]]
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(rates.numpy(), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set(xlabel="classified as", ylabel="requested class",
           title=f"Conditional accuracy {report['metrics']['conditional_accuracy']['generated']:.3f}")  # fmt: skip
    for i in range(len(names)):
        for j in range(len(names)):
            if rates[i, j] >= 0.01:
                ax.text(j, i, f"{rates[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="black" if rates[i, j] > 0.5 else "white")  # fmt: skip
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    save_figure(fig, path)


def load_evaluator(info: DatasetInfo, data_dir: Path | str | None = None, seed: int = 0,
                   source: str | None = None, show_progress: bool = True) -> Evaluator:  # fmt: skip
    """An Evaluator for the data a generator was trained on: its real splits and its reference classifier.

    The data is found again from `info` (its registered name or recorded path, resolution, held-out share);
    `source` overrides the path (a folder that has moved).
    """
    from acgan.data.dataset import load_dataset
    from acgan.evaluation.classifier import load_reference_classifier

    where = source or info.locator
    if info.source and not source and not Path(info.source).exists():
        raise AcganError(f"the data set folder {info.source} the generator was trained on is gone; "
                         "pass its new place with --dataset PATH")  # fmt: skip
    options: dict[str, Any] = {"data_dir": data_dir, "resolution": info.resolution, "holdout": info.holdout,
                               "verify_checksums": info.checksums_verified, "show_progress": show_progress}  # fmt: skip
    train = load_dataset(where, "train", **options)
    test = load_dataset(where, "test", **options)
    if (train.info.num_classes, train.info.channels) != (info.num_classes, info.channels):
        raise AcganError(f"{where} has {train.info.num_classes} classes of {train.info.channels} channel(s); the "
                         f"generator was trained on {info.num_classes} of {info.channels}")  # fmt: skip
    classifier, facts = load_reference_classifier(info, train, test=test, show_progress=show_progress)
    return Evaluator(info, classifier, train, test, seed=seed, classifier_facts=facts)


def report_folder(weights_path: Path) -> Path:
    """Where a checkpoint's evaluation goes: its run directory when it has one, else beside the weights."""
    checkpoint_dir = weights_path.parent
    run_dir = checkpoint_dir.parent.parent
    return (
        run_dir
        if (run_dir / "config.json").is_file() and checkpoint_dir.parent.name == "checkpoints"
        else checkpoint_dir
    )


REPORT_FILE = "eval.json"
CONFUSION_FILE = "confusion.png"


def json_safe(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None (JSON has no NaN: other tools refuse the token)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def better_founded(existing: Any, report: dict[str, Any]) -> bool:
    """Whether an `existing` eval.json judged the same weights at the same step on more samples than `report`."""
    if not isinstance(existing, dict):
        return False
    same = (existing.get("checkpoint"), existing.get("step")) == (report.get("checkpoint"), report.get("step"))
    samples = existing.get("num_samples")
    return same and isinstance(samples, int) and samples > report.get("num_samples", 0)


def write_report(report: dict[str, Any], folder: Path) -> list[str]:
    """eval.json and confusion.png into `folder`, and eval.json beside the weights that were judged; what was done.

    An eval.json of the same weights on more samples is kept: this report then goes to eval-nNUM.json (and
    confusion-nNUM.png). An eval.json of other weights or another step is replaced, and the lines say so.
    """
    done = []
    checkpoint_dir = Path(report["checkpoint"]).parent if "checkpoint" in report else None
    targets = [folder] + (
        [checkpoint_dir] if checkpoint_dir and checkpoint_dir != folder and checkpoint_dir.is_dir() else []
    )
    data = json.dumps(json_safe(report), indent=2, allow_nan=False).encode()
    for index, target in enumerate(targets):
        target.mkdir(parents=True, exist_ok=True)
        try:
            existing = json.loads((target / REPORT_FILE).read_text())
        except (OSError, ValueError):
            existing = None
        name, picture = REPORT_FILE, CONFUSION_FILE
        if better_founded(existing, report):
            name, picture = f"eval-n{report['num_samples']}.json", f"confusion-n{report['num_samples']}.png"
            done.append(f"kept {target / REPORT_FILE} ({existing['num_samples']} samples of the same weights); "
                        f"this evaluation is in {target / name}")  # fmt: skip
        elif isinstance(existing, dict) and existing.get("num_samples") is not None:
            done.append(f"replaced {target / REPORT_FILE} (step {existing.get('step')}, "
                        f"{existing.get('num_samples')} samples) with this one")  # fmt: skip
        atomic_write_bytes(target / name, data)
        if index == 0:
            save_confusion_plot(report, target / picture)
            done.append(f"wrote {target / name} and {target / picture}")
    return done
