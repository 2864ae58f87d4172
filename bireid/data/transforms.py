"""Image loading and the re-ID augmentations, with PIL and torch only (no torchvision).

Decoding, resizing and normalisation are :mod:`bireid.images`' (shared with the deployed extractor): the test
pipeline is :func:`bireid.images.preprocess` itself, so a model is measured on the input it gets when deployed.

Random decisions use Python's ``random`` module, which PyTorch seeds in every DataLoader worker from the
loader's generator, so a seeded run draws the same augmentations (see ``bireid.data.loader``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .. import images
from ..images import IMAGENET_MEAN, IMAGENET_STD
from .datasets.base import BadImageError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Compose", "PadCrop", "Preprocess", "RandomErasing",
           "RandomHorizontalFlip", "Resize", "ToNormalizedTensor", "build_transforms", "config_transforms",
           "load_image"]

def load_image(path: str | Path) -> Image.Image:
    """Read an image fully and return it in RGB by :mod:`bireid.images`' rules (the deployed extractor's too).

    Raises :class:`BadImageError` (naming the path) for a missing, unreadable, corrupt, truncated or too large
    file, so that the loaders' bad-image policy can skip it.
    """
    try:
        return images.load_image(path)
    except images.ImageError as e:
        raise BadImageError(e.path, e.reason) from None


# ------------------------------------------------------------------------------------------------ transforms
class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: Any) -> Any:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


def _size(size: int | Sequence[int]) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be positive, got {(h, w)}")
    return int(h), int(w)


class Resize:
    """Resize a PIL image to ``(height, width)`` with bilinear interpolation (:func:`bireid.images.resize`)."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _size(size)

    def __call__(self, img: Image.Image) -> Image.Image:
        return images.resize(img, self.size)

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class RandomHorizontalFlip:
    """Mirror a PIL image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"flip probability must lie in [0, 1], got {p}")
        self.p = p

    def __call__(self, img: Image.Image) -> Image.Image:
        if random.random() < self.p:
            return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return img

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class PadCrop:
    """Zero-pad a PIL image by ``pad`` pixels on every side, then crop a random ``(height, width)`` window."""

    def __init__(self, pad: int, size: int | Sequence[int]) -> None:
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        self.pad = int(pad)
        self.size = _size(size)

    def __call__(self, img: Image.Image) -> Image.Image:
        h, w = self.size
        n = self.pad
        W, H = img.size[0] + 2 * n, img.size[1] + 2 * n
        if H < h or W < w:
            raise ValueError(f"PadCrop: padded image {H}x{W} is smaller than the crop {h}x{w}")
        padded = Image.new(img.mode, (W, H))  # black
        padded.paste(img, (n, n))
        top = random.randint(0, H - h)
        left = random.randint(0, W - w)
        return padded.crop((left, top, left + w, top + h))

    def __repr__(self) -> str:
        return f"PadCrop(pad={self.pad}, size={self.size})"


class ToNormalizedTensor:
    """PIL RGB image -> (3, H, W) float tensor ``(value / 255 - mean) / std`` (:func:`bireid.images.normalize`)."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return torch.from_numpy(images.normalize(img, self.mean, self.std))

    def __repr__(self) -> str:
        return f"ToNormalizedTensor(mean={list(self.mean)}, std={list(self.std)})"


class Preprocess:
    """The test pipeline: :func:`bireid.images.preprocess` (resize + normalise), as a tensor; the deployed
    extractor calls the same function."""

    def __init__(self, size: int | Sequence[int], mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        self.size = _size(size)
        self.to_tensor = ToNormalizedTensor(mean, std)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return torch.from_numpy(images.preprocess(img, self.size, self.to_tensor.mean, self.to_tensor.std))

    def __repr__(self) -> str:
        return f"Preprocess({self.size}, mean={list(self.to_tensor.mean)}, std={list(self.to_tensor.std)})"


class RandomErasing:
    """With probability ``p``, set a random rectangle of a normalized (C, H, W) tensor to ``value``.

    The rectangle covers ``area`` (fraction of the image, uniform) with aspect ratio ``h/w`` drawn
    log-uniformly from ``ratio``; up to 100 draws are tried until one fits. The default fill is 0, which after
    :class:`Normalize` is the data-set mean colour (the usual choice in re-ID baselines).
    """

    def __init__(self, p: float = 0.5, area: tuple[float, float] = (0.02, 0.4),
                 ratio: tuple[float, float] = (0.3, 3.33), value: float = 0.0) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"erasing probability must lie in [0, 1], got {p}")
        if not 0 < area[0] <= area[1] <= 1 or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"invalid erasing area {area} or ratio {ratio}")
        self.p, self.area, self.ratio, self.value = p, area, ratio, value

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if random.random() >= self.p:
            return x
        _, H, W = x.shape
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(100):
            target = random.uniform(*self.area) * H * W
            r = math.exp(random.uniform(log_lo, log_hi))
            h = int(round(math.sqrt(target * r)))
            w = int(round(math.sqrt(target / r)))
            if 0 < h < H and 0 < w < W:
                top = random.randint(0, H - h)
                left = random.randint(0, W - w)
                x = x.clone()
                x[:, top:top + h, left:left + w] = self.value
                return x
        return x

    def __repr__(self) -> str:
        return f"RandomErasing(p={self.p}, area={self.area}, ratio={self.ratio}, value={self.value})"


def build_transforms(height: int, width: int, is_train: bool, flip_prob: float = 0.5, pad: int = 10,
                     erasing_prob: float = 0.5, mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD) -> Compose:
    """The standard re-ID pipeline: resize, [flip, pad + crop], to a normalised tensor, [random erasing].

    Training steps with probability (or pad) 0 are left out; the test pipeline is :class:`Preprocess` alone
    (the deployed extractor's preprocessing).
    """
    size = (height, width)
    if not is_train:
        return Compose([Preprocess(size, mean, std)])
    steps: list[Callable[[Any], Any]] = [Resize(size)]
    if flip_prob > 0:
        steps.append(RandomHorizontalFlip(flip_prob))
    if pad > 0:
        steps.append(PadCrop(pad, size))
    steps.append(ToNormalizedTensor(mean, std))
    if erasing_prob > 0:
        steps.append(RandomErasing(erasing_prob))
    return Compose(steps)


def config_transforms(data: Any, is_train: bool, mean: Sequence[float] = IMAGENET_MEAN,
                      std: Sequence[float] = IMAGENET_STD) -> Compose:
    """:func:`build_transforms` with the settings of a config's ``data`` section (size, flip, pad, erasing): the
    image pipeline of re-ID and of image classification, whose defaults differ only in those settings."""
    return build_transforms(data.height, data.width, is_train, data.flip_prob, data.pad, data.erasing_prob, mean, std)
