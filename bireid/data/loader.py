"""Torch datasets and loaders for training (P x K batches) and evaluation, with a bad-image policy.

Bad images (missing, corrupt, truncated files) never crash a worker with an unreadable traceback: the
dataset returns a :class:`BadSample` marker, the collate function passes it along, and the
:class:`ReIDLoader` acts on it in the main process:

- ``bad_images='error'``: raises :class:`BadImageError` naming the file;
- ``bad_images='skip'``: drops the sample from its batch (a batch left empty is skipped), records the path in
  ``loader.bad_paths`` and counts it in ``loader.num_skipped``; at the end of each pass one warning gives the
  count and the first few paths.

Batches are tuples ``(images, pids, camids, indices)``; ``indices`` point into the sample list so that a
consumer can match features to samples even when some were skipped.

Reproducibility: augmentation randomness comes from Python's ``random``. With workers, PyTorch seeds each
worker from the loader's generator, which the training loader reseeds from ``(seed, rank, sampler epoch)``,
so epoch ``e`` draws the same augmentations however the run got there (resume included). With 0 workers
the main process's ``random`` state is used (seed it; the trainer checkpoints it).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from .datasets.base import BadImageError, ReIDDataset, Sample
from .samplers import RandomIdentitySampler
from .transforms import IMAGENET_MEAN, IMAGENET_STD, config_transforms, load_image

if TYPE_CHECKING:
    from bireid.config import Config

BAD_IMAGE_POLICIES = ("skip", "error")
_WARN_PATHS = 3


class BadSample(NamedTuple):
    """Stands in for a sample whose image (or other sample file) could not be read; ``error`` is the error type
    the loader raises for it under ``bad_images='error'``."""

    index: int
    path: str
    reason: str
    error: type[BadImageError] = BadImageError


class ImageDataset(Dataset):
    """``samples[i]`` -> ``(image_tensor, pid, camid, i)``; a bad image gives a :class:`BadSample` instead.

    With ``bad_images='error'`` and no worker process, the :class:`BadImageError` is raised directly.
    """

    def __init__(self, samples: Sequence[Sample], transform: Callable[[Any], torch.Tensor] | None,
                 bad_images: str = "skip") -> None:
        if bad_images not in BAD_IMAGE_POLICIES:
            raise ValueError(f"bad_images must be one of {', '.join(BAD_IMAGE_POLICIES)}, got {bad_images!r}")
        self.samples = list(samples)
        self.transform = transform
        self.bad_images = bad_images

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int, int] | BadSample:
        path, pid, camid = self.samples[index]
        try:
            img = load_image(path)
        except BadImageError as e:
            if self.bad_images == "error" and get_worker_info() is None:
                raise
            # In a worker, an exception would reach the main process as a generic re-raise; return a
            # marker so the loader raises (or counts) the real error there.
            return BadSample(int(index), e.path, e.reason)
        x = self.transform(img) if self.transform is not None else img
        return x, int(pid), int(camid), int(index)


class _Collated(NamedTuple):
    images: torch.Tensor | None
    pids: torch.Tensor
    camids: torch.Tensor
    indices: torch.Tensor
    bad: list[BadSample]


def collate_samples(items: list[tuple[torch.Tensor, int, int, int] | BadSample]) -> _Collated:
    """Stack the good items; carry the bad ones along (the loader decides what to do with them)."""
    good = [it for it in items if not isinstance(it, BadSample)]
    bad = [it for it in items if isinstance(it, BadSample)]
    images = torch.stack([g[0] for g in good]) if good else None
    return _Collated(images,
                     torch.tensor([g[1] for g in good], dtype=torch.long),
                     torch.tensor([g[2] for g in good], dtype=torch.long),
                     torch.tensor([g[3] for g in good], dtype=torch.long),
                     bad)


class ReIDLoader(DataLoader):
    """A DataLoader over an :class:`ImageDataset` that applies the bad-image policy in the main process."""

    def __init__(self, dataset: ImageDataset, *args: Any, seed: int | None = None, rank: int = 0,
                 **kw: Any) -> None:
        kw.setdefault("collate_fn", collate_samples)
        super().__init__(dataset, *args, **kw)
        self.seed, self.rank = seed, rank
        self.bad_paths: list[str] = []  # distinct paths skipped so far, in order of discovery
        self._bad_set: set[str] = set()
        self.num_skipped = 0  # skipped sample draws over all passes
        self.last_pass_skipped = 0

    def set_epoch(self, epoch: int) -> None:
        """Select epoch ``epoch`` of the sampler (``loader.batch_sampler.set_epoch`` is equivalent)."""
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)

    def _reseed_workers(self) -> None:
        # The workers' seeds are drawn from ``self.generator`` at the start of each pass; tying that generator
        # to (seed, rank, sampler epoch) makes epoch e's augmentations independent of how many passes came
        # before (a resumed run draws what the uninterrupted one drew).
        if self.seed is None:
            return
        epoch = int(getattr(self.batch_sampler, "epoch", 0))
        if self.generator is None:
            self.generator = torch.Generator()
        # The constants only spread (seed, rank, epoch) apart.
        self.generator.manual_seed((self.seed * 1_000_003 + self.rank * 10_007 + epoch) % (2**63))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        policy = getattr(self.dataset, "bad_images", "error")
        skipped: list[str] = []
        self._reseed_workers()
        try:
            for batch in super().__iter__():
                for b in batch.bad:
                    if policy == "error":
                        raise b.error(b.path, b.reason)
                    skipped.append(b.path)
                    if b.path not in self._bad_set:
                        self._bad_set.add(b.path)
                        self.bad_paths.append(b.path)
                self.num_skipped += len(batch.bad)
                if batch.images is None:
                    continue  # every image of this batch was bad
                yield batch.images, batch.pids, batch.camids, batch.indices
        finally:
            self.last_pass_skipped = len(skipped)
            if skipped:
                first = list(dict.fromkeys(skipped))[:_WARN_PATHS]
                warnings.warn(f"skipped {len(skipped)} unreadable image(s) in this pass (first: {', '.join(first)}); "
                              "set data.bad_images=error to stop on them instead", RuntimeWarning, stacklevel=2)


def _pin(cfg: Config) -> bool:
    return str(cfg.train.device).startswith("cuda") and torch.cuda.is_available()


def build_train_loader(cfg: Config, dataset: ReIDDataset, rank: int = 0, world_size: int = 1,
                       seed: int | None = None) -> ReIDLoader:
    """P x K training loader over ``dataset.train`` with the training augmentations.

    ``seed`` defaults to ``cfg.train.seed``. Call ``loader.set_epoch(e)`` before each epoch.
    """
    d = cfg.data
    seed = cfg.train.seed if seed is None else seed
    sampler = RandomIdentitySampler([s.pid for s in dataset.train], d.num_identities, d.num_instances,
                                    seed=seed, rank=rank, world_size=world_size)
    tf = config_transforms(d, True)
    return ReIDLoader(ImageDataset(dataset.train, tf, d.bad_images), batch_sampler=sampler, num_workers=d.workers,
                      persistent_workers=False, pin_memory=_pin(cfg), seed=seed, rank=rank)


def build_test_loaders(cfg: Config, dataset: ReIDDataset, mean: Sequence[float] = IMAGENET_MEAN,
                       std: Sequence[float] = IMAGENET_STD) -> tuple[ReIDLoader, ReIDLoader]:
    """Query and gallery loaders: test transforms (``mean``/``std``: a deployed model's own normalisation),
    ``cfg.data.test_batch_size``, data-set order."""
    d = cfg.data
    tf = config_transforms(d, False, mean, std)
    loaders = tuple(ReIDLoader(ImageDataset(samples, tf, d.bad_images), batch_size=d.test_batch_size, shuffle=False,
                               num_workers=d.workers, persistent_workers=False, pin_memory=_pin(cfg))
                    for samples in (dataset.query, dataset.gallery))
    return loaders[0], loaders[1]
