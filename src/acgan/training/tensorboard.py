"""TensorBoard event files for a run (offline, the `tensorboard` package): statistics, evaluations, grids, config.

Written into RUN/tensorboard/ by the RunWriter only. A resumed run opens the log with `purge_step` set to
the step after its checkpoint, so TensorBoard drops what the interrupted run logged after it and the
curves continue without duplicates. View with `tensorboard --logdir runs/`.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from acgan.evaluation.registry import METRICS

NOT_PLOTTED = frozenset({"step", "epoch", "images_seen", "seconds", "kind", "real"})


def quiet_writer_thread_errors() -> None:
    """Let TensorBoard's writer thread fail without a traceback (installed once per process).

    The thread keeps its error (a full disk) and TensorBoard raises it again in the next write, flush or close on
    the training thread, which reports it in one line; Python's default hook would print the thread's traceback
    first. Errors of every other thread still go to the hook that was there before.
    """
    previous = threading.excepthook
    if getattr(previous, "acgan_tensorboard", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if type(args.thread).__name__ == "_AsyncWriterThread" and isinstance(args.exc_value, OSError):
            return
        previous(args)

    hook.acgan_tensorboard = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class TensorBoardLog:
    """A thin adapter from the run's records to torch.utils.tensorboard.SummaryWriter."""

    def __init__(self, folder: Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter  # deferred: importing TensorBoard takes a while

        quiet_writer_thread_errors()
        self._writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step, flush_secs=30)

    def record(self, record: dict[str, Any]) -> None:
        """A metrics.jsonl record: training statistics under train/, evaluations under eval/ (beside real data)."""
        step = int(record.get("step", 0))
        kind = record.get("kind")
        if kind == "warning":
            self._writer.add_text("warnings", str(record.get("message", "")), step)
            return
        if kind == "eval":  # the registry's metrics, each beside its real-data value and its 95% interval's ends
            real, intervals = record.get("real") or {}, record.get("intervals") or {}
            for metric in METRICS:
                low, high = intervals.get(metric.name) or (None, None)
                for prefix, value in (("eval", record.get(metric.name)), ("eval_real", real.get(metric.name)),
                                      ("eval_low", low), ("eval_high", high)):  # fmt: skip
                    if _is_number(value):
                        self._writer.add_scalar(f"{prefix}/{metric.name}", value, step)
            return
        for name, value in record.items():
            if name not in NOT_PLOTTED and _is_number(value):
                self._writer.add_scalar(f"train/{name}", value, step)

    def image(self, tag: str, picture: Image.Image, step: int) -> None:
        """A sample grid, (H, W, 3) uint8."""
        self._writer.add_image(tag, np.asarray(picture.convert("RGB")), step, dataformats="HWC")

    def config(self, record: dict[str, Any], step: int) -> None:
        """The run's configuration as a JSON code block (TensorBoard's text tab renders markdown)."""
        text = "    " + json.dumps(record, indent=2).replace("\n", "\n    ")
        self._writer.add_text("config", text, step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
