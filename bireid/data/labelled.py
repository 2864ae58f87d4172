"""Labelled data of the classification tasks (images, point clouds): splits, the data-set record, loaders.

A :class:`LabelledData` has class names and a ``train`` and a ``test`` :class:`Split`; a split is a sequence of
samples with integer labels ``0..C-1`` whose ``load(i)`` reads sample ``i`` (a PIL image, or an (M, 3) point
array) from a file (:class:`FileSplit`) or from memory (:class:`ArraySplit`, e.g. the CIFAR-10 binary batches).
A file that cannot be read raises a :class:`BadImageError` (or subclass) naming it, and the loaders apply the
``data.bad_images`` policy of the re-ID loaders to it (``bireid.data.loader``): skip with a count, or stop.

Batches are ``(inputs, labels, zeros, indices)``: the re-ID loaders' shape, with labels where re-ID has pids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset, get_worker_info

from .datasets.base import BadImageError, DatasetError
from .loader import BAD_IMAGE_POLICIES, BadSample, ReIDLoader
from .samplers import ShuffleBatchSampler


class Split:
    """Labelled samples; ``load(i)`` reads sample ``i``, ``source(i)`` names where it comes from."""

    def __init__(self, labels: Sequence[int]) -> None:
        self.labels = [int(v) for v in labels]

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, i: int) -> Any:
        raise NotImplementedError

    def source(self, i: int) -> str:
        raise NotImplementedError


class FileSplit(Split):
    """One file per sample, read by ``reader(path)`` (picklable, so worker processes can run it)."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int], reader: Callable[[str], Any]) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        super().__init__(labels)
        self.paths = [str(p) for p in paths]
        self.reader = reader

    def load(self, i: int) -> Any:
        return self.reader(self.paths[i])

    def source(self, i: int) -> str:
        return self.paths[i]


class ArraySplit(Split):
    """Images held in memory: a uint8 (N, H, W, 3) array; ``name`` says where it was read from."""

    def __init__(self, images: np.ndarray, labels: Sequence[int], name: str) -> None:
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) != len(labels):
            raise ValueError(f"expected uint8 (N, H, W, 3) images with N labels, got {images.dtype} {images.shape} "
                             f"and {len(labels)} labels")
        super().__init__(labels)
        self.images = images
        self.name = name

    def load(self, i: int) -> Image.Image:
        return Image.fromarray(self.images[i], mode="RGB")

    def source(self, i: int) -> str:
        return f"{self.name}[{i}]"


@dataclass
class LabelledData:
    """A classification data set: ``classes`` (names, index = label), ``train`` and ``test`` splits; ``kind`` says
    what a sample is ("images", "point clouds"), for summaries."""

    name: str
    classes: list[str]
    train: Split
    test: Split
    kind: str = "images"

    def __post_init__(self) -> None:
        if not self.classes:
            raise DatasetError(f"data set '{self.name}' has no classes")
        c = len(self.classes)
        for split, s in (("train", self.train), ("test", self.test)):
            bad = next((i for i, v in enumerate(s.labels) if not 0 <= v < c), None)
            if bad is not None:
                raise DatasetError(f"data set '{self.name}' {split}: label {s.labels[bad]} of {s.source(bad)} is "
                                   f"outside 0..{c - 1}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def summary(self) -> str:
        """A small table: samples per split, classes."""
        lines = [f"data set '{self.name}': {self.num_classes} classes of {self.kind}"]
        for split, s in (("train", self.train), ("test", self.test)):
            present = len(set(s.labels))
            lines.append(f"  {split:<5} {len(s):>7} {self.kind} ({present} classes present)")
        return "\n".join(lines)


class SplitDataset(Dataset):
    """``split`` as a torch data set: item ``i`` -> ``(transform(split.load(i)), label, 0, i)``, or a
    :class:`BadSample` for an unreadable file (raised directly with ``bad_images='error'`` outside workers)."""

    def __init__(self, split: Split, transform: Callable[[Any], torch.Tensor], bad_images: str = "skip") -> None:
        if bad_images not in BAD_IMAGE_POLICIES:
            raise ValueError(f"bad_images must be one of {', '.join(BAD_IMAGE_POLICIES)}, got {bad_images!r}")
        self.split, self.transform, self.bad_images = split, transform, bad_images

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int, int] | BadSample:
        try:
            x = self.split.load(index)
        except BadImageError as e:
            if self.bad_images == "error" and get_worker_info() is None:
                raise
            return BadSample(int(index), e.path, e.reason, type(e))
        return self.transform(x), self.split.labels[index], 0, int(index)


def _pin(device: str) -> bool:
    return str(device).startswith("cuda") and torch.cuda.is_available()


def build_labelled_train_loader(split: Split, transform: Callable[[Any], torch.Tensor], batch_size: int,
                                workers: int, bad_images: str, seed: int, rank: int = 0, world_size: int = 1,
                                device: str = "cpu") -> ReIDLoader:
    """Shuffled training batches of ``split`` (global ``batch_size``; call ``loader.set_epoch(e)`` each epoch)."""
    sampler = ShuffleBatchSampler(len(split), batch_size, seed=seed, rank=rank, world_size=world_size)
    return ReIDLoader(SplitDataset(split, transform, bad_images), batch_sampler=sampler, num_workers=workers,
                      persistent_workers=False, pin_memory=_pin(device), seed=seed, rank=rank)


def build_labelled_test_loader(split: Split, transform: Callable[[Any], torch.Tensor], batch_size: int,
                               workers: int, bad_images: str, rank: int = 0, world_size: int = 1,
                               device: str = "cpu") -> ReIDLoader:
    """Batches of ``split`` in order; with several ranks, rank ``r`` reads samples ``r, r + W, ...`` (indices in
    the batches stay those of the whole split)."""
    ds: Dataset = SplitDataset(split, transform, bad_images)
    if world_size > 1:
        ds = Subset(ds, list(range(rank, len(split), world_size)))
        ds.bad_images = bad_images  # type: ignore[attr-defined]  (the loader reads the policy off its data set)
    return ReIDLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers, persistent_workers=False,
                      pin_memory=_pin(device))
