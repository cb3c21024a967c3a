"""Watching a run: quick evaluations, the best checkpoint, and warnings for known AC-GAN failure signals."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from acgan.evaluation.evaluate import HIGHER_IS_BETTER, Evaluator
from acgan.models.networks import Generator
from acgan.training.run_writer import RunWriter
from acgan.visualize import pyplot, read_jsonl, save_figure

SOURCE_COLLAPSE_LOSS = 0.05  # D's real and fake source losses both below this: D wins outright
ACCURACY_DROP = 0.05  # conditional accuracy this far below its best so far is worth a warning


def source_collapse_warning(d_real_source: float, d_fake_source: float, step: int) -> str | None:
    """A warning when the discriminator's source losses collapse towards zero (G gets no useful gradient)."""
    if d_real_source < SOURCE_COLLAPSE_LOSS and d_fake_source < SOURCE_COLLAPSE_LOSS:
        return (f"step {step}: the discriminator's source loss is collapsing towards zero (real {d_real_source:.3f}, "
                f"fake {d_fake_source:.3f}); the generator may stop learning")  # fmt: skip
    return None


def is_better(metric: str, value: float, best: float | None) -> bool:
    """Whether `value` improves on `best` for `metric` (direction from HIGHER_IS_BETTER)."""
    if best is None:
        return True
    return value > best if HIGHER_IS_BETTER[metric] else value < best


@dataclass
class EvalTracker:
    """Runs quick evaluations; the run writer logs them, plots them and keeps `checkpoints/best`."""

    evaluator: Evaluator
    writer: RunWriter
    metric: str
    num: int
    seed: int
    best_accuracy: float | None = None

    def __call__(self, generator: Generator, step: int, epoch: int, checkpoint_dir: Path) -> list[str]:
        """Evaluate `generator` (saved as `checkpoint_dir`); return the warnings it raises."""
        report = self.evaluator.evaluate(generator, num=self.num, seed=self.seed)
        values = {name: row["generated"] for name, row in report["metrics"].items()}
        self.writer.record_evaluation(
            {"kind": "eval", "step": step, "epoch": epoch, **{k: round(v, 6) for k, v in values.items()},
             "real": {k: round(row["real"], 6) for k, row in report["metrics"].items()},
             "collapsed_classes": report["collapsed_classes"], "seconds": report["seconds"]}
        )  # fmt: skip
        warnings = []
        if report["collapsed_classes"]:
            warnings.append(f"epoch {epoch}: classes collapsed (their samples are as alike as the 10% most alike "
                            f"real pairs, MS-SSIM): {', '.join(report['collapsed_classes'])}")  # fmt: skip
        accuracy = values["conditional_accuracy"]
        if self.best_accuracy is not None and accuracy < self.best_accuracy - ACCURACY_DROP:
            warnings.append(f"epoch {epoch}: conditional accuracy dropped to {accuracy:.3f} "
                            f"(best so far {self.best_accuracy:.3f})")  # fmt: skip
        self.best_accuracy = max(accuracy, self.best_accuracy or 0.0)
        best = self.writer.best()
        value = values[self.metric]
        if is_better(self.metric, value, best["value"] if best and best.get("metric") == self.metric else None):
            self.writer.mark_best(checkpoint_dir, {"metric": self.metric, "value": value, "step": step, "epoch": epoch})
        return warnings


def plot_eval(metrics_path: Path, output: Path) -> None:
    """Evaluation metrics over training, each with its real-data reference as a dashed line."""
    plt = pyplot()
    evals = [r for r in read_jsonl(metrics_path) if r.get("kind") == "eval"]
    if not evals:
        return
    names = ["conditional_accuracy", "intra_fd", "fd", "ms_ssim", "precision", "recall"]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    steps = [r["step"] for r in evals]
    for ax, name in zip(axes.flat, names, strict=True):
        ax.plot(steps, [r[name] for r in evals], marker="o", markersize=3, label="generated")
        ax.axhline(evals[-1]["real"][name], color="gray", linestyle="--", label="real data")
        ax.set(title=name.replace("_", " "), xlabel="step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, output, dpi=90)
