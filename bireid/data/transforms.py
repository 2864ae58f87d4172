"""Image loading and the re-ID augmentations, with PIL and torch only (no torchvision).

Random decisions use Python's ``random`` module, which PyTorch seeds in every DataLoader worker from the
loader's generator, so a seeded run draws the same augmentations (see ``bireid.data.loader``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .datasets.base import BadImageError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


# ------------------------------------------------------------------------------------------------ load_image
def _to_uint8_gray(arr: np.ndarray, mode: str) -> Image.Image:
    """Scale a one-channel high-depth array to 8 bits."""
    if mode.startswith("I;16"):
        arr = arr.astype(np.float64) / 257.0  # 65535 -> 255
    elif mode == "I":
        # 32-bit ints usually hold 16-bit data (e.g. 16-bit PNGs); treat them as 8-bit only when they fit.
        arr = np.clip(arr.astype(np.float64), 0, 65535)
        if arr.max(initial=0) > 255:
            arr = arr / 257.0
    else:  # "F": floats in [0, 1] are scaled up, otherwise values are taken as 0..255
        arr = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        if arr.size and arr.min() >= 0.0 and arr.max() <= 1.0:
            arr = arr * 255.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _to_uint8_gray(np.asarray(img), mode).convert("RGB")
    if (mode == "P" and "transparency" in img.info) or mode == "PA":
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "RGBa", "La"):
        # Transparent pixels become black, the same as the zero padding used elsewhere.
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, ...


def load_image(path: str | Path) -> Image.Image:
    """Read an image fully and return it in RGB, whatever its mode.

    16-bit grayscale is scaled to 8 bits (value / 257); alpha is composited on black. Raises
    :class:`BadImageError` (naming the path) for a missing, unreadable, corrupt or truncated file.
    """
    p = Path(path)
    if not p.is_file():
        raise BadImageError(p, "file not found" if not p.exists() else "not a file")
    try:
        with Image.open(p) as img:
            img.load()  # decode now: truncated or corrupt data fails here, not later in a transform
            out = _to_rgb(img)
            out.load()
            return out
    except UnidentifiedImageError:
        raise BadImageError(p, "not a recognised image format") from None
    except Image.DecompressionBombError as e:
        raise BadImageError(p, f"image too large ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # PIL reports truncated files as OSError ("image file is truncated") and some corrupt headers as
        # SyntaxError / ValueError / EOFError.
        raise BadImageError(p, f"corrupt or truncated ({type(e).__name__}: {e})") from None


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
    """Resize a PIL image to ``(height, width)`` with bilinear interpolation."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _size(size)

    def __call__(self, img: Image.Image) -> Image.Image:
        h, w = self.size
        if img.size == (w, h):
            return img
        return img.resize((w, h), Image.Resampling.BILINEAR)

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


class ToTensor:
    """PIL RGB image (H, W, 3 uint8) -> float tensor (3, H, W) in [0, 1]."""

    def __call__(self, img: Image.Image) -> torch.Tensor:
        arr = np.asarray(img, dtype=np.uint8)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """Per-channel ``(x - mean) / std`` on a (C, H, W) tensor."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


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
                     erasing_prob: float = 0.5) -> Compose:
    """The standard re-ID pipeline: resize, [flip, pad + crop], to tensor, normalize, [random erasing].

    Training steps with probability (or pad) 0 are left out; the test pipeline is resize + to tensor + normalize.
    """
    size = (height, width)
    steps: list[Callable[[Any], Any]] = [Resize(size)]
    if is_train:
        if flip_prob > 0:
            steps.append(RandomHorizontalFlip(flip_prob))
        if pad > 0:
            steps.append(PadCrop(pad, size))
    steps += [ToTensor(), Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if is_train and erasing_prob > 0:
        steps.append(RandomErasing(erasing_prob))
    return Compose(steps)
