"""The standard image-classification augmentation (He et al. 2016 on CIFAR): zero-pad by ``pad`` pixels, crop a
random window of the input size, flip left-right; then to tensor and normalise (ImageNet statistics, as re-ID)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Compose,
    Normalize,
    PadCrop,
    RandomHorizontalFlip,
    Resize,
    ToTensor,
)


def build_classification_transforms(height: int, width: int, is_train: bool, pad: int = 4,
                                    flip_prob: float = 0.5) -> Compose:
    """Resize to (height, width) (a no-op at the native size), [flip, pad + crop], to tensor, normalise."""
    steps: list[Callable[[Any], Any]] = [Resize((height, width))]
    if is_train:
        if flip_prob > 0:
            steps.append(RandomHorizontalFlip(flip_prob))
        if pad > 0:
            steps.append(PadCrop(pad, (height, width)))
    steps += [ToTensor(), Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return Compose(steps)
