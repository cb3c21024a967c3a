"""The metrics of an evaluation, each written once: its name, how it reads, which direction is better.

The evaluator's table, `--best-metric`'s choices, the run's evaluation plot and TensorBoard all read this
list; a metric added here appears in all of them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One number an evaluation reports, beside its real-data value."""

    name: str
    label: str  # as the table prints it
    higher_is_better: bool
    pick_best: bool = True  # may choose a run's `best` checkpoint (--best-metric)
    plotted: bool = False  # drawn in RUN/eval.png during training


METRICS: tuple[Metric, ...] = (
    Metric("conditional_accuracy", "conditional accuracy", True, plotted=True),
    Metric("fd", "Frechet distance (classifier features)", False, plotted=True),
    Metric("intra_fd", "intra-class FD (mean over classes)", False, plotted=True),
    Metric("kid", "kernel distance KID (classifier features)", False),
    Metric("intra_kid", "intra-class KID (mean over classes)", False),
    Metric("classifier_score", "classifier score", True),
    Metric("precision", "precision (k=5)", True, plotted=True),
    Metric("recall", "recall (k=5)", True, plotted=True),
    Metric("density", "density (k=5)", True),
    Metric("coverage", "coverage (k=5)", True),
    Metric("ms_ssim", "MS-SSIM same class (lower = more diverse)", False, pick_best=False, plotted=True),
    Metric("nn_distance_median", "nearest training image, median L2", True, pick_best=False),
)
BY_NAME = {metric.name: metric for metric in METRICS}
BEST_METRIC_CHOICES = tuple(metric.name for metric in METRICS if metric.pick_best)
DEFAULT_BEST_METRIC = "intra_fd"


def is_better(name: str, value: float, best: float | None) -> bool:
    """Whether `value` of metric `name` improves on `best` (None: nothing to beat)."""
    if best is None:
        return True
    return value > best if BY_NAME[name].higher_is_better else value < best
