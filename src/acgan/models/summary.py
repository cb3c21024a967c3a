"""Keras-style model summaries: one row per layer with its output shape and parameter count."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int


def keras_param_count(module: nn.Module, recurse: bool = True) -> int:
    """Parameters plus BatchNorm moving mean/variance, which Keras counts (as non-trainable) and torch keeps as buffers."""
    count = sum(p.numel() for p in module.parameters(recurse=recurse))
    for name, buffer in module.named_buffers(recurse=recurse):
        if name.endswith(("running_mean", "running_var")) and buffer is not None:
            count += buffer.numel()
    return count


def summarize(model: nn.Module, *inputs: torch.Tensor) -> list[LayerRow]:
    """Run `model` once on `inputs` and record every leaf module's output shape and parameter count."""
    rows: list[LayerRow] = []
    hooks = []
    for name, module in model.named_modules():
        if next(module.children(), None) is not None:
            continue

        def record(mod: nn.Module, _inp: object, out: object, name: str = name) -> None:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
            rows.append(LayerRow(name, type(mod).__name__, shape, keras_param_count(mod, recurse=False)))

        hooks.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return rows


def format_summary(title: str, rows: list[LayerRow], total: int) -> str:
    """Render rows as a Keras-like table; `total` is the model's full Keras-style parameter count."""
    lines = [f'Model: "{title}"', "=" * 86, f"{'Layer (type)':<44}{'Output Shape':<28}{'Param #':>14}", "=" * 86]
    for row in rows:
        shape = "(None, " + ", ".join(str(d) for d in row.output_shape[1:]) + ")"
        lines.append(f"{row.name + ' (' + row.kind + ')':<44}{shape:<28}{row.params:>14,}")
    lines += ["=" * 86, f"Total params: {total:,}", "_" * 86]
    return "\n".join(lines)
