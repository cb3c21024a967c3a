"""Watching a run: quick evaluations, the best checkpoint, and warnings for known AC-GAN failure signals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from acgan.evaluation.evaluate import Evaluator
from acgan.evaluation.registry import is_better
from acgan.models.networks import Generator

SOURCE_COLLAPSE_LOSS = 0.05  # D's real and fake source losses both below this: D wins outright
ACCURACY_DROP = 0.05  # conditional accuracy this far below its best so far is worth a warning


def source_collapse_warning(d_real_source: float, d_fake_source: float, step: int) -> str | None:
    """A warning when the discriminator's source losses collapse towards zero (G gets no useful gradient)."""
    if d_real_source < SOURCE_COLLAPSE_LOSS and d_fake_source < SOURCE_COLLAPSE_LOSS:
        return (f"step {step}: the discriminator's source loss is collapsing towards zero (real {d_real_source:.3f}, "
                f"fake {d_fake_source:.3f}); the generator may stop learning")  # fmt: skip
    return None


@dataclass(frozen=True)
class Evaluation:
    """What a quick evaluation during training gives the run writer: its metrics.jsonl line, the warnings it
    raises, and the best.json record when it beats the run's best so far."""

    record: dict[str, Any]
    warnings: list[str]
    new_best: dict[str, Any] | None


@dataclass
class EvalTracker:
    """Runs quick evaluations and follows the run's best checkpoint and conditional accuracy."""

    evaluator: Evaluator
    metric: str
    num: int
    seed: int
    best_accuracy: float | None = None

    def __call__(self, generator: Generator, step: int, epoch: int, best: dict[str, Any] | None) -> Evaluation:
        """Evaluate `generator` at `step`; `best` is the run's best.json record so far (or None)."""
        report = self.evaluator.evaluate(generator, num=self.num, seed=self.seed)
        values = {name: row["generated"] for name, row in report["metrics"].items()}
        record = {"kind": "eval", "step": step, "epoch": epoch, **{k: round(v, 6) for k, v in values.items()},
                  "real": {k: round(row["real"], 6) for k, row in report["metrics"].items()},
                  "intervals": {k: [round(v, 6) for v in row["interval"]] for k, row in report["metrics"].items()
                                if "interval" in row},
                  "collapsed_classes": report["collapsed_classes"], "seconds": report["seconds"]}  # fmt: skip
        warnings = []
        if report["collapsed_classes"]:
            warnings.append(f"epoch {epoch}: classes collapsed (their samples are as alike as the 10% most alike "
                            f"real pairs, MS-SSIM): {', '.join(report['collapsed_classes'])}")  # fmt: skip
        accuracy = values["conditional_accuracy"]
        if self.best_accuracy is not None and accuracy < self.best_accuracy - ACCURACY_DROP:
            warnings.append(f"epoch {epoch}: conditional accuracy dropped to {accuracy:.3f} "
                            f"(best so far {self.best_accuracy:.3f})")  # fmt: skip
        self.best_accuracy = max(accuracy, self.best_accuracy or 0.0)
        value = values[self.metric]
        beaten = is_better(self.metric, value, best["value"] if best and best.get("metric") == self.metric else None)
        interval = {"interval": record["intervals"][self.metric]} if self.metric in record["intervals"] else {}
        new_best = {"metric": self.metric, "value": value, **interval, "step": step, "epoch": epoch} if beaten else None
        return Evaluation(record, warnings, new_best)
