"""``FeatureExtractor``: re-ID features from images with an exported ``.bnn`` model, without torch.

Preprocessing is :func:`bireid.images.preprocess` with the input size and mean/std stored in the model file:
the function bireid's evaluation transform calls, so the deployed model sees the input it was measured on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

from ..images import ImageError, load_image, preprocess, rgb_from_array, to_rgb
from ..runtime import BNNModel

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]  # noqa: UP007 (a runtime alias on 3.10)
BAD_IMAGE_POLICIES = ("error", "skip")


class BadImagesError(ImageError):
    """Some image files of a batch cannot be read; ``errors`` holds one :class:`ImageError` per file."""

    SHOWN = 20  # files named in the message; ``errors`` has them all

    def __init__(self, errors: Sequence[ImageError], total: int) -> None:
        self.errors, self.total = list(errors), total
        shown = "; ".join(f"{e.path} ({e.reason})" for e in self.errors[:self.SHOWN])
        more = f"; and {len(self.errors) - self.SHOWN} more" if len(self.errors) > self.SHOWN else ""
        super().__init__(None, f"{len(self.errors)} of {total} images cannot be read: {shown}{more}")

    def __reduce__(self):
        return (type(self), (self.errors, self.total))


class FeatureExtractor:
    """Compute features with a ``.bnn`` model: ``FeatureExtractor("model.bnn")(images) -> (N, D) float32``.

    ``images``: a file path, a PIL image, an array (H, W, 3) uint8 (0..255) or float (0..1; see
    :mod:`bireid.images` for the exact rule), an array batch (N, H, W, 3), or a list of any of these."""

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
        """One image -> normalized (3, H, W) float32 at the model's input size (:func:`bireid.images.preprocess`)."""
        if isinstance(image, (str, os.PathLike)):
            img = load_image(image)
        elif isinstance(image, Image.Image):
            img = to_rgb(image)
        elif isinstance(image, np.ndarray):
            img = rgb_from_array(image)
        else:
            raise ImageError(None, f"unsupported image type {type(image).__name__}")
        return preprocess(img, self.model.input_size, self.model.mean, self.model.std)

    def __call__(self, images: ImageLike | Sequence[ImageLike]) -> np.ndarray:
        return self.extract(images)

    def extract(self, images: ImageLike | Iterable[ImageLike]) -> np.ndarray:
        """Features (N, D) float32 of one image or a sequence of images (one row per image); the first
        unreadable image raises :class:`ImageError` (see :meth:`extract_files` for a policy)."""
        if isinstance(images, np.ndarray) and images.ndim == 4:
            items: list[ImageLike] = list(images)
        elif isinstance(images, (str, os.PathLike, Image.Image, np.ndarray)):
            items = [images]
        else:
            items = list(images)
        out = np.empty((len(items), self.feat_dim), np.float32)
        for i in range(0, len(items), self.batch_size):
            chunk = items[i:i + self.batch_size]
            out[i:i + len(chunk)] = self.model.forward(np.stack([self.preprocess(x) for x in chunk]))
        return out

    def extract_files(self, paths: Sequence[str | os.PathLike], bad_images: str = "error",
                      progress: bool = False) -> tuple[np.ndarray, list[Path], list[ImageError]]:
        """Features of image files, reading every file even when some are bad.

        Returns (features of the readable files (N, D), their paths, the errors of the unreadable ones).
        ``bad_images='error'`` raises :class:`BadImagesError` naming every unreadable file after the pass;
        ``'skip'`` leaves them out. ``progress`` shows a progress bar (on a terminal).
        """
        from tqdm import tqdm

        if bad_images not in BAD_IMAGE_POLICIES:
            raise ValueError(f"bad_images must be one of {', '.join(BAD_IMAGE_POLICIES)}, got {bad_images!r}")
        paths = [Path(p) for p in paths]
        feats: list[np.ndarray] = []
        kept: list[Path] = []
        bad: list[ImageError] = []
        with tqdm(total=len(paths), desc="features", unit="img", disable=None if progress else True) as bar:
            for i in range(0, len(paths), self.batch_size):
                batch, ok = [], []
                for p in paths[i:i + self.batch_size]:
                    try:
                        batch.append(self.preprocess(p))
                        ok.append(p)
                    except ImageError as e:
                        bad.append(e)
                if batch and not (bad and bad_images == "error"):  # once one is bad, only decode the rest
                    feats.append(self.model.forward(np.stack(batch)))
                    kept += ok
                bar.update(len(paths[i:i + self.batch_size]))
        if bad and bad_images == "error":
            raise BadImagesError(bad, len(paths))
        out = np.concatenate(feats) if feats else np.empty((0, self.feat_dim), np.float32)
        return out, kept, bad
