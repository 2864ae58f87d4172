"""``FeatureExtractor``: re-ID features from images with an exported ``.bnn`` model, without torch.

Preprocessing matches bireid's test transform: RGB, bilinear resize to the model's input size, scale to
[0, 1], normalize with the mean/std stored in the model file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..runtime import BNNModel

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]  # noqa: UP007 (a runtime alias on 3.10)


class ImageError(ValueError):
    """An input image cannot be read or has an unusable shape/dtype (the message names it)."""


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode an image file to RGB (alpha composited on black); raises ImageError / FileNotFoundError."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image not found: {p}")
    try:
        with Image.open(p) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "RGBa", "La"):
                rgba = img.convert("RGBA")
                return Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba).convert("RGB")
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(img, dtype=np.float64) / 257.0
                return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).convert("RGB")
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"bad image {p}: {type(e).__name__}: {e}") from None


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly in ``folder`` (sorted); raises NotADirectoryError / FileNotFoundError."""
    d = Path(folder)
    if not d.exists():
        raise FileNotFoundError(f"folder not found: {d}")
    if not d.is_dir():
        raise NotADirectoryError(f"not a folder: {d}")
    return sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


class FeatureExtractor:
    """Compute features with a ``.bnn`` model: ``FeatureExtractor("model.bnn")(images) -> (N, D) float32``.

    ``images``: a file path, a PIL image, an array (H, W, 3) uint8 (0..255) or float (0..1), an array batch
    (N, H, W, 3), or a list of any of these."""

    def __init__(self, model_path: str | os.PathLike, batch_size: int = 32, num_threads: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_path = Path(model_path)
        self.model = BNNModel.load(self.model_path)
        self.batch_size = batch_size
        if num_threads is not None:
            from ..runtime import set_num_threads

            set_num_threads(num_threads)

    @property
    def feat_dim(self) -> int:
        return self.model.feat_dim

    def preprocess(self, image: ImageLike) -> np.ndarray:
        """One image -> normalized (3, H, W) float32 at the model's input size."""
        h, w = self.model.input_size
        if isinstance(image, (str, os.PathLike)):
            image = load_rgb(image)
        if isinstance(image, Image.Image):
            img = image.convert("RGB") if image.mode != "RGB" else image
            arr = np.asarray(img.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
        elif isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3:
                raise ImageError(f"image arrays must be (H, W, 3), got shape {image.shape}")
            if image.dtype == np.uint8:
                pil = Image.fromarray(image, "RGB")
            elif np.issubdtype(image.dtype, np.floating):
                if not np.isfinite(image).all():
                    raise ImageError("float image array contains NaN or infinity")
                pil = Image.fromarray((np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "RGB")
            else:
                raise ImageError(f"image arrays must be uint8 (0..255) or float (0..1), got {image.dtype}")
            return self.preprocess(pil)
        else:
            raise ImageError(f"unsupported image type {type(image).__name__}")
        arr = (arr - self.model.mean) / self.model.std
        return np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32)

    def __call__(self, images: ImageLike | Sequence[ImageLike]) -> np.ndarray:
        return self.extract(images)

    def extract(self, images: ImageLike | Iterable[ImageLike]) -> np.ndarray:
        """Features (N, D) float32 of one image or a sequence of images (one row per image)."""
        if isinstance(images, np.ndarray) and images.ndim == 4:
            items: list[ImageLike] = list(images)
        elif isinstance(images, (str, os.PathLike, Image.Image, np.ndarray)):
            items = [images]
        else:
            items = list(images)
        out = np.empty((len(items), self.feat_dim), np.float32)
        for i in range(0, len(items), self.batch_size):
            chunk = items[i:i + self.batch_size]
            batch = np.stack([self.preprocess(x) for x in chunk])
            out[i:i + len(chunk)] = self.model.forward(batch)
        return out
