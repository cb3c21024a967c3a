"""How a label given by a user becomes a class index: one rule for the CLI, the HTTP API, the web page and Python.

    index:N   always the class at index N
    name:X    always the class named X
    X         the class named X if there is one, else, when X is a whole number, the class at index X

So a class name wins over an index: with classes "1", "2", "3" the label "1" is the class named "1" (index 0),
and "index:1" the class at index 1. Names are compared after Unicode normalisation (NFC), exactly first, then
ignoring case (Unicode case folding) when that picks one class. Python ints are indices.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np

from acgan.data.dataset import DatasetInfo
from acgan.errors import AcganError

INDEX_PREFIX = "index:"
NAME_PREFIX = "name:"
ALL = "all"  # labels_for_request: every class in turn (a class named "all" is name:all)
MAX_LABEL_CHARS = 1000


def _normal(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


def find_class_name(text: str, info: DatasetInfo) -> int | None:
    """The index of the class named `text` (NFC, exact first, then case-folded when unambiguous), else None."""
    wanted = _normal(text)
    names = [_normal(name) for name in info.class_names]
    exact = [index for index, name in enumerate(names) if name == wanted]
    if len(exact) == 1:
        return exact[0]
    folded = [index for index, name in enumerate(names) if name.casefold() == wanted.casefold()]
    if len(folded) > 1:
        raise AcganError(f"label '{text}' matches {len(folded)} classes when case is ignored "
                         f"({', '.join(info.class_names[i] for i in folded)}); give the exact name")  # fmt: skip
    return folded[0] if folded else None


def _whole_number(text: str) -> int | None:
    body = text.strip()
    digits = body[1:] if body.startswith("-") else body
    return int(body) if digits.isascii() and digits.isdigit() else None  # "²" is a digit to str.isdigit, not to int


def _checked_index(index: int, info: DatasetInfo) -> int:
    if not 0 <= index < info.num_classes:
        raise AcganError(f"label {index} out of range: {info.name} has classes 0..{info.num_classes - 1}")
    return index


def _unknown(text: str, info: DatasetInfo) -> AcganError:
    shown = ", ".join(info.class_names[:20]) + (" ..." if info.num_classes > 20 else "")
    return AcganError(f"unknown class '{text[:80]}' for {info.name} (classes: {shown})")


def resolve_label(label: str | int, info: DatasetInfo) -> int:
    """A class index or name -> its index, by the module's rule; AcganError naming the valid values otherwise."""
    if isinstance(label, bool) or not isinstance(label, str | int | np.integer):
        raise AcganError(f"a label is a class index (int) or a class name (str), got {type(label).__name__}")
    if not isinstance(label, str):
        return _checked_index(int(label), info)
    if len(label) > MAX_LABEL_CHARS:
        raise AcganError(f"label of {len(label)} characters: class names are shorter")
    if label.strip().startswith(INDEX_PREFIX):
        index = _whole_number(label.strip()[len(INDEX_PREFIX) :])
        if index is None:
            raise AcganError(f"'{label}': {INDEX_PREFIX} takes a whole number (a class index)")
        return _checked_index(index, info)
    text = label.strip()[len(NAME_PREFIX) :] if label.strip().startswith(NAME_PREFIX) else label
    named = find_class_name(text, info)
    if named is not None:
        return named
    index = _whole_number(label) if text is label else None
    if index is None:
        raise _unknown(text, info)
    return _checked_index(index, info)


def label_note(label: str | int, info: DatasetInfo) -> str | None:
    """A note when a whole number was taken as a class name though it is also a valid index of another class."""
    if not isinstance(label, str) or label.strip().startswith((INDEX_PREFIX, NAME_PREFIX)):
        return None
    number = _whole_number(label)
    if number is None or not 0 <= number < info.num_classes:
        return None
    index = resolve_label(label, info)
    if index == number:
        return None
    return (f"label '{label.strip()}' is the class named '{info.class_names[index]}' (index {index}); "
            f"write {INDEX_PREFIX}{number} for the class at index {number}")  # fmt: skip


def labels_for_request(label: str, num: int, info: DatasetInfo, start: int = 0, stop: int | None = None) -> list[int]:
    """The labels of images start..stop (default: all) of a request for `num` images: one class repeated, or
    with 'all', equal numbers of every class in class order. Checked for the whole request, built only for
    the slice asked for, so a request of any size can be generated in chunks."""
    if num <= 0:
        raise AcganError(f"num must be > 0, got {num}")
    stop = num if stop is None else min(stop, num)
    if label.strip().lower() == ALL:
        if num % info.num_classes:
            raise AcganError(f"num must be a multiple of {info.num_classes} when every class is asked for, got {num}")
        per_class = num // info.num_classes
        return [index // per_class for index in range(start, stop)]
    return [resolve_label(label, info)] * max(0, stop - start)


def label_indices(labels: Any, num_classes: int, info: DatasetInfo | None = None) -> np.ndarray:
    """(N,) int64 class indices from what Python users pass: one int or name, a list or tuple of them, or a numpy
    array or torch tensor of any integer dtype (0-D or 1-D). Names need `info`. AcganError for anything else
    (floats, booleans, other shapes, indices out of range)."""
    import torch  # deferred: the label rule itself needs no torch

    if isinstance(labels, torch.Tensor):
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise AcganError(f"labels must be integers (class indices), got a {labels.dtype} tensor")
        labels = labels.detach().cpu().numpy()
    if isinstance(labels, np.ndarray):
        if labels.dtype.kind not in "iuUO":
            raise AcganError(f"labels must be integers (class indices) or names, got a {labels.dtype} array")
        if labels.ndim > 1:
            raise AcganError(f"labels must be one label or a 1-D sequence, got shape {labels.shape}")
        labels = labels.reshape(-1).tolist() if labels.dtype.kind in "UO" else labels.reshape(-1)
    if isinstance(labels, str | int | np.integer):
        labels = [labels]
    if isinstance(labels, np.ndarray):
        indices = labels.astype(np.int64)
    elif isinstance(labels, list | tuple | range):
        indices = np.asarray([_one_label(label, num_classes, info) for label in labels], dtype=np.int64)
    else:
        raise AcganError(f"labels must be class indices or names (a list, tuple, numpy array or tensor), got "
                         f"{type(labels).__name__}")  # fmt: skip
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= num_classes):
        raise AcganError(f"labels must be in [0, {num_classes - 1}]")
    return indices


def _one_label(label: Any, num_classes: int, info: DatasetInfo | None) -> int:
    if isinstance(label, str):
        if info is None:
            raise AcganError(f"class names such as '{label[:40]}' need the data set's facts: sample through "
                             "load_generator(...), or pass class indices")  # fmt: skip
        return resolve_label(label, info)
    if isinstance(label, bool) or not isinstance(label, int | np.integer):
        raise AcganError(f"labels must be class indices (int) or names (str), got {type(label).__name__} {label!r:.40}")
    return int(label)
