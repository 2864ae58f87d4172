"""Detection batches: images resized to the model input (``data.height`` x ``data.width``), normalised, and
their CenterNet targets (``bireid.boxes.encode``, ignored boxes left out). Training flips horizontally with
``data.flip_prob``. Batches are ``(images, targets (N, 6, H/4, W/4), zeros, indices)``, the re-ID loaders' shape,
through the same :class:`~bireid.data.loader.ReIDLoader` (bad-file policy, per-epoch worker seeding)."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, get_worker_info

from ...boxes import encode
from ...images import IMAGENET_MEAN, IMAGENET_STD, preprocess
from ..datasets.base import BadImageError
from ..loader import BAD_IMAGE_POLICIES, BadSample, ReIDLoader, _Collated
from ..samplers import ShuffleBatchSampler
from ..transforms import load_image
from .base import DetSample


def scaled_boxes(s: DetSample, height: int, width: int) -> np.ndarray:
    """``s``'s boxes in the pixels of the image resized to ``height`` x ``width``."""
    return s.boxes * np.asarray([width / s.width, height / s.height] * 2, np.float32)


class DetectionImages(Dataset):
    """Item ``i``: ``(input (3, H, W), targets (6, H/stride, W/stride), 0, i)``, or a :class:`BadSample`."""

    def __init__(self, samples: Sequence[DetSample], height: int, width: int, stride: int, train: bool,
                 flip_prob: float = 0.5, bad_images: str = "skip") -> None:
        if bad_images not in BAD_IMAGE_POLICIES:
            raise ValueError(f"bad_images must be one of {', '.join(BAD_IMAGE_POLICIES)}, got {bad_images!r}")
        self.samples, self.size, self.stride = list(samples), (height, width), stride
        self.train, self.flip_prob, self.bad_images = train, flip_prob, bad_images

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int, int] | BadSample:
        s = self.samples[i]
        try:
            img = load_image(s.path)
        except BadImageError as e:
            if self.bad_images == "error" and get_worker_info() is None:
                raise
            return BadSample(int(i), e.path, e.reason)
        h, w = self.size
        # Boxes follow the file's real size (a sample's stated size may be stale).
        boxes = s.boxes[~s.ignore] * np.asarray([w / img.width, h / img.height] * 2, np.float32)
        x = preprocess(img, self.size, IMAGENET_MEAN, IMAGENET_STD)
        if self.train and random.random() < self.flip_prob:
            x = np.ascontiguousarray(x[:, :, ::-1])
            boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
        t = encode(boxes, h // self.stride, w // self.stride, self.stride)
        return torch.from_numpy(x), torch.from_numpy(t), 0, int(i)


def collate_detection(items: list) -> _Collated:
    """The re-ID collate with the targets stacked where re-ID has pids."""
    good = [it for it in items if not isinstance(it, BadSample)]
    bad = [it for it in items if isinstance(it, BadSample)]
    return _Collated(torch.stack([g[0] for g in good]) if good else None,
                     torch.stack([g[1] for g in good]) if good else torch.zeros(0),
                     torch.tensor([g[2] for g in good], dtype=torch.long),
                     torch.tensor([g[3] for g in good], dtype=torch.long), bad)


def build_detection_train_loader(samples: Sequence[DetSample], height: int, width: int, stride: int,
                                 batch_size: int, flip_prob: float, workers: int, bad_images: str, seed: int,
                                 rank: int = 0, world_size: int = 1) -> ReIDLoader:
    sampler = ShuffleBatchSampler(len(samples), batch_size, seed=seed, rank=rank, world_size=world_size)
    ds = DetectionImages(samples, height, width, stride, True, flip_prob, bad_images)
    return ReIDLoader(ds, batch_sampler=sampler, num_workers=workers, persistent_workers=False, seed=seed, rank=rank,
                      collate_fn=collate_detection)


def build_detection_test_loader(samples: Sequence[DetSample], height: int, width: int, stride: int, batch_size: int,
                                workers: int, bad_images: str, rank: int = 0, world_size: int = 1) -> ReIDLoader:
    ds: Dataset = DetectionImages(samples, height, width, stride, False, 0.0, bad_images)
    if world_size > 1:
        ds = Subset(ds, list(range(rank, len(samples), world_size)))
        ds.bad_images = bad_images  # type: ignore[attr-defined]  (the loader reads the policy off its data set)
    return ReIDLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers, persistent_workers=False,
                      collate_fn=collate_detection)


__all__ = ["DetectionImages", "build_detection_test_loader", "build_detection_train_loader",
           "scaled_boxes"]
