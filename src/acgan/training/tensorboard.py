"""TensorBoard event files for a run (offline, the `tensorboard` package): statistics, evaluations, grids, config.

Written into RUN/tensorboard/ by the RunWriter only. A resumed run opens the log with `purge_step` set to
the step after its checkpoint, so TensorBoard drops what the interrupted run logged after it and the
curves continue without duplicates. View with `tensorboard --logdir runs/`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

NOT_PLOTTED = frozenset({"step", "epoch", "images_seen", "seconds", "kind", "real"})


class TensorBoardLog:
    """A thin adapter from the run's records to torch.utils.tensorboard.SummaryWriter."""

    def __init__(self, folder: Path, purge_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter  # deferred: importing TensorBoard takes a while

        self._writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step, flush_secs=30)

    def record(self, record: dict[str, Any]) -> None:
        """A metrics.jsonl record: training statistics under train/, evaluations under eval/ (beside real data)."""
        step = int(record.get("step", 0))
        kind = record.get("kind")
        if kind == "warning":
            self._writer.add_text("warnings", str(record.get("message", "")), step)
            return
        prefix = "eval" if kind == "eval" else "train"
        for name, value in record.items():
            if name not in NOT_PLOTTED and isinstance(value, int | float) and not isinstance(value, bool):
                self._writer.add_scalar(f"{prefix}/{name}", value, step)
        for name, value in (record.get("real") or {}).items():
            if isinstance(value, int | float):
                self._writer.add_scalar(f"eval_real/{name}", value, step)

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
