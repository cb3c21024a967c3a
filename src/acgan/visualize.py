"""Pictures of results: image grids (optionally labelled per class), GIFs of training, loss curves."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from acgan.files import atomic_write_bytes, picture_bytes


def grid_image(images: np.ndarray, ncol: int, padding: int = 2, scale: int = 1, background: int = 255) -> Image.Image:
    """Tile (N, H, W, C) uint8 images into one picture, `ncol` per row, each upscaled `scale` times."""
    num, height, width, channels = images.shape
    nrow = max(1, -(-num // ncol))
    cell_h, cell_w = height * scale + padding, width * scale + padding
    canvas = np.full((nrow * cell_h + padding, ncol * cell_w + padding, channels), background, dtype=np.uint8)
    for index in range(num):
        row, col = divmod(index, ncol)
        tile = images[index].repeat(scale, axis=0).repeat(scale, axis=1)
        top, left = padding + row * cell_h, padding + col * cell_w
        canvas[top : top + height * scale, left : left + width * scale] = tile
    mode = "L" if channels == 1 else "RGB"
    return Image.fromarray(canvas[..., 0] if channels == 1 else canvas, mode=mode)


def class_grid_image(
    images: np.ndarray, class_names: Sequence[str], ncol: int, scale: int = 2, title: str | None = None
) -> Image.Image:
    """A grid with one row per class, the class name written at the left of each row (and an optional title)."""
    grid = grid_image(images, ncol, padding=2, scale=scale).convert("RGB")
    font = ImageFont.load_default()
    label_width = 8 + max(int(font.getlength(name)) for name in class_names)
    title_height = 16 if title else 0
    canvas = Image.new("RGB", (grid.width + label_width, grid.height + title_height), "white")
    canvas.paste(grid, (label_width, title_height))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((4, 2), title, fill="black", font=font)
    row_height = images.shape[1] * scale + 2
    for row, name in enumerate(class_names):
        top = title_height + 2 + row * row_height + row_height // 2 - 6
        draw.text((4, top), name, fill="black", font=font)
    return canvas


def save_gif(frames: Sequence[Path], output: Path, duration_ms: int = 400) -> None:
    """Assemble PNG frames into a looping GIF (the last frame held longer)."""
    images = [Image.open(frame).convert("P", palette=Image.Palette.ADAPTIVE) for frame in frames]
    if not images:
        return
    durations = [duration_ms] * (len(images) - 1) + [duration_ms * 4]
    gif = picture_bytes(images[0], "GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    atomic_write_bytes(output, gif)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file, skipping a line torn by a crash mid-write (or anything not an object)."""
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (imported on first use: it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, output: Path, dpi: int = 100) -> None:
    """Save a matplotlib figure atomically (temporary file, then rename) and close it."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        pyplot().close(fig)
    atomic_write_bytes(output, buffer.getvalue())


NOT_STATISTICS = frozenset({"step", "epoch", "images_seen", "seconds"})


def plot_losses(metrics_path: Path, output: Path) -> None:
    """Plot every training statistic in metrics.jsonl against the step, by name: losses left, accuracies right."""
    plt = pyplot()
    records = [r for r in read_jsonl(metrics_path) if "kind" not in r and "step" in r]
    names = list(dict.fromkeys(k for r in records for k, v in r.items() if k not in NOT_STATISTICS
                               and isinstance(v, int | float)))  # fmt: skip
    if not records or not names:
        return
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for name in names:
        points = [(r["step"], r[name]) for r in records if name in r]
        ax = ax_acc if name.endswith("acc") else ax_loss
        ax.plot([p[0] for p in points], [p[1] for p in points], label=name, linewidth=1)
    ax_loss.set(xlabel="step", ylabel="loss", title="Losses", yscale="symlog")  # some objectives go negative
    ax_loss.legend(fontsize=7)
    ax_acc.set(xlabel="step", ylabel="accuracy", title="Discriminator accuracy", ylim=(0, 1.02))
    ax_acc.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, output)


def plot_eval(metrics_path: Path, output: Path) -> None:
    """The registry's plotted metrics over a run's quick evaluations, each with its real-data value dashed."""
    from acgan.evaluation.registry import METRICS

    plt = pyplot()
    evals = [r for r in read_jsonl(metrics_path) if r.get("kind") == "eval"]
    if not evals:
        return
    names = [metric.name for metric in METRICS if metric.plotted]
    rows = -(-len(names) // 3)
    fig, axes = plt.subplots(rows, 3, figsize=(12, 3 * rows), squeeze=False)
    steps = [r["step"] for r in evals]
    for ax, name in zip(axes.flat, names, strict=False):
        ax.plot(steps, [r.get(name) for r in evals], marker="o", markersize=3, label="generated")
        real = (evals[-1].get("real") or {}).get(name)
        if isinstance(real, int | float):
            ax.axhline(real, color="gray", linestyle="--", label="real data")
        ax.set(title=name.replace("_", " "), xlabel="step")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, output, dpi=90)
