"""Decode one image file into a square uint8 RGB array, the one resize policy every data source shares.

Policy (documented in the README): EXIF orientation applied; transparent pixels composited onto white;
16-bit grey scaled to 8 bits; the largest centred square cropped; resized with Pillow's Lanczos filter
(antialiased when shrinking). JPEGs are decoded at the smallest DCT scale that keeps at least twice the
target size, which keeps Lanczos' quality and decodes large photos several times faster.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"})
RESIZE_FILTER = Image.Resampling.LANCZOS
_SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})


class UnusableImage(Exception):
    """A file that cannot be used as an image; the message is a short reason ("truncated", ...)."""


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) read from the file's header only; UnusableImage when it is not a safe image."""
    with _open(path) as image:
        return image.size


def decode_image(path: Path, resolution: int) -> tuple[np.ndarray, bool]:
    """Decode `path` as a (resolution, resolution, 3) uint8 RGB array and say whether it is grey (R == G == B).

    Raises UnusableImage with a short reason for anything that is not a readable, safely sized image.
    """
    with _open(path) as image:
        if image.format == "JPEG":
            image.draft("RGB", (2 * resolution, 2 * resolution))
        try:
            image = ImageOps.exif_transpose(image)
            rgb = _to_rgb(image)
            square = ImageOps.fit(rgb, (resolution, resolution), method=RESIZE_FILTER, centering=(0.5, 0.5))
            array = np.asarray(square, dtype=np.uint8)
        except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError) as exc:
            raise UnusableImage(_reason(exc)) from None
    grey = bool((array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all())
    return array, grey


def resize_square(pixels: np.ndarray, resolution: int) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N, resolution, resolution, C) uint8 by the same crop-and-Lanczos policy."""
    if pixels.shape[1] == pixels.shape[2] == resolution:
        return pixels
    channels = pixels.shape[3]
    out = np.empty((pixels.shape[0], resolution, resolution, channels), dtype=np.uint8)
    for i, image in enumerate(pixels):
        picture = Image.fromarray(image[..., 0] if channels == 1 else image)
        fitted = np.asarray(ImageOps.fit(picture, (resolution, resolution), method=RESIZE_FILTER))
        out[i] = fitted.reshape(resolution, resolution, channels)
    return out


def _open(path: Path) -> Image.Image:
    """Image.open with Pillow's decompression-bomb limit enforced as an error (not a warning)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except FileNotFoundError:
        raise UnusableImage("vanished during the scan") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UnusableImage("too large to decode safely") from None
    except Image.UnidentifiedImageError:
        raise UnusableImage("not a readable image") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as exc:
        raise UnusableImage(_reason(exc)) from None
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and image.size[0] * image.size[1] > limit:
        image.close()
        raise UnusableImage(f"too large to decode safely ({image.size[0]}x{image.size[1]} pixels)")
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB: alpha over white, 16-bit grey scaled down, palettes expanded."""
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.int64)
        top = 65535 if values.max(initial=0) > 255 else 255
        grey = np.clip(values * 255 // top, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "F":
        return Image.fromarray(np.clip(np.asarray(image), 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _reason(exc: BaseException) -> str:
    text = str(exc).lower()
    if "truncated" in text or isinstance(exc, EOFError | struct.error | zlib.error):
        return "truncated or damaged"
    if "cannot identify" in text:
        return "not a readable image"
    return f"cannot decode ({str(exc).splitlines()[0][:60] if str(exc) else type(exc).__name__})"
