"""Images as every part of bireid reads them: training, evaluation and the deployed ``.bnn`` extractor.

One module, PIL and NumPy only (no torch, so the deployed runtime can use it), so that the input a model was
measured on is the input it gets when deployed. It owns the decoding of every PIL mode, the image file
extensions and folder listing, the ImageNet mean/std, and the test-time preprocessing (bilinear resize to
the model's input, scale to [0, 1], per-channel normalisation).

Decoding rules (any file or PIL image -> 8-bit RGB):

- EXIF orientation is applied first (the image comes out the way a viewer shows it);
- ``1``, ``L``, ``P`` without transparency, ``RGB``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: PIL's ``convert("RGB")``;
- alpha (``RGBA``, ``LA``, ``RGBa``, ``La``, ``PA``, ``P`` with a transparent colour): composited on black, the
  colour of the zero padding used elsewhere;
- 16-bit gray (``I;16`` in any byte order): ``value / 257`` (65535 -> 255), rounded to nearest (ties to even);
- 32-bit integers (``I``): clipped to 0..65535; an image whose values all fit in 0..255 is taken as 8-bit data,
  otherwise as 16-bit data (``/ 257``, rounded);
- floats (``F``, and float arrays given to the extractor): NaN -> 0, +inf -> 255, -inf -> 0; an image whose
  values all lie in [0, 1] is taken as 0..1 data (``* 255``), otherwise as 0..255 data; rounded, clipped.

Files PIL cannot read (missing, corrupt, truncated, over PIL's decompression-bomb limit) raise
:class:`ImageError` naming the file, one line, no PIL traceback.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

_ORIENTATION = 0x0112  # the EXIF tag


class ImageError(ValueError):
    """An image cannot be read or used; ``path`` (may be empty for in-memory images) and ``reason``."""

    def __init__(self, path: str | os.PathLike | None, reason: str) -> None:
        self.path = "" if path is None else str(path)
        self.reason = reason
        super().__init__(f"bad image {self.path}: {reason}" if self.path else reason)

    def __reduce__(self):
        # Keep the two-field constructor through pickling (worker processes send errors back).
        return (type(self), (self.path, self.reason))


class ImageNotFoundError(ImageError, FileNotFoundError):
    """The image file does not exist (also a FileNotFoundError)."""


# -------------------------------------------------------------------------------------------------- decoding
def load_image(path: str | os.PathLike) -> Image.Image:
    """Read an image file fully and return it as 8-bit RGB by the module's rules; raises :class:`ImageError`."""
    p = Path(path)
    if not p.is_file():
        if not p.exists():
            raise ImageNotFoundError(p, "file not found")
        raise ImageError(p, "not a file")
    try:
        with Image.open(p) as img:
            img.load()  # decode now: truncated or corrupt data fails here, not later in a transform
            out = to_rgb(img)
            out.load()
            return out
    except UnidentifiedImageError:
        raise ImageError(p, "not a recognised image format") from None
    except Image.DecompressionBombError as e:
        raise ImageError(p, f"too large to decode safely ({e}; raise PIL.Image.MAX_IMAGE_PIXELS if the file is "
                            "trusted)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # PIL reports truncated files as OSError ("image file is truncated") and some corrupt headers as
        # SyntaxError / ValueError / EOFError.
        raise ImageError(p, f"corrupt or truncated ({type(e).__name__}: {e})") from None


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL image -> 8-bit RGB by the module's rules (EXIF orientation, alpha on black, high-depth scaling)."""
    if img.getexif().get(_ORIENTATION, 1) != 1:
        img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_gray_to_uint8(np.asarray(img), mode), mode="L").convert("RGB")
    if (mode == "P" and "transparency" in img.info) or mode == "PA":
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return img.convert("RGB")


def rgb_from_array(arr: np.ndarray) -> Image.Image:
    """An (H, W, 3) array -> RGB image: uint8 as 0..255, floats by the float rule of the module docstring."""
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageError(None, f"image arrays must be (H, W, 3), got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return Image.fromarray(np.ascontiguousarray(arr), "RGB")
    if np.issubdtype(arr.dtype, np.floating):
        return Image.fromarray(_float_to_uint8(arr), "RGB")
    raise ImageError(None, f"image arrays must be uint8 (0..255) or float (0..1 or 0..255), got {arr.dtype}")


def _float_to_uint8(arr: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
    if a.size and a.min() >= 0.0 and a.max() <= 1.0:
        a = a * 255.0
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _gray_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """A one-channel high-depth array (PIL mode ``I;16*``, ``I`` or ``F``) -> uint8."""
    if mode == "F":
        return _float_to_uint8(arr)
    a = arr.astype(np.float64)
    if mode == "I":  # 32-bit ints usually hold 16-bit data (16-bit PNGs); 8-bit data when every value fits
        a = np.clip(a, 0, 65535)
        if a.max(initial=0) <= 255:
            return a.astype(np.uint8)
    return np.clip(np.rint(a / 257.0), 0, 255).astype(np.uint8)


# -------------------------------------------------------------------------------------------------- files
def is_image_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` has one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (and its subfolders when ``recursive``), sorted by path (a deterministic order).

    Raises FileNotFoundError / NotADirectoryError naming the folder."""
    d = Path(folder)
    if not d.exists():
        raise FileNotFoundError(f"folder not found: {d}")
    if not d.is_dir():
        raise NotADirectoryError(f"not a folder: {d}")
    found = d.rglob("*") if recursive else d.iterdir()
    return sorted(p for p in found if is_image_file(p) and p.is_file())


# -------------------------------------------------------------------------------------------------- preprocessing
def resize(img: Image.Image, size: Sequence[int]) -> Image.Image:
    """Bilinear resize to ``size = (height, width)`` (the image itself when it already has that size)."""
    h, w = int(size[0]), int(size[1])
    if img.size == (w, h):
        return img
    return img.resize((w, h), Image.Resampling.BILINEAR)


def normalize(img: Image.Image, mean: Sequence[float] = IMAGENET_MEAN,
              std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """An RGB image -> (3, H, W) float32: ``(value / 255 - mean) / std`` per channel, in float32."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    x = arr.astype(np.float32) / np.float32(255.0)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def preprocess(img: Image.Image, size: Sequence[int], mean: Sequence[float] = IMAGENET_MEAN,
               std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """The test-time input of a model: :func:`resize` to ``size`` then :func:`normalize`; (3, H, W) float32."""
    return normalize(resize(img, size), mean, std)
