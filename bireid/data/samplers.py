"""Batch samplers, shardable across distributed ranks: P x K identities (re-ID metric learning) and plain shuffled
batches (classification)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator, Sequence

from torch.utils.data import Sampler

from .datasets.base import DatasetError


class RandomIdentitySampler(Sampler[list[int]]):
    """A batch sampler: each global batch holds ``num_identities`` (P) identities x ``num_instances`` (K) images.

    One epoch visits each identity at most once, in a shuffled order, giving ``floor(num_pids / P)`` batches
    (the remaining identities wait for a later epoch's shuffle). An identity with at least K images gives K
    distinct ones; one with fewer is sampled with replacement.

    The order depends only on ``seed + epoch`` (call :meth:`set_epoch` every epoch), so every rank draws the
    same global batches; with ``world_size > 1`` rank ``r`` yields identities ``r*P/W .. (r+1)*P/W - 1`` of each
    global batch (whole identities, so triplet mining stays valid per rank), and the union over ranks is
    exactly the single-process batch. Yields lists of dataset indices.
    """

    def __init__(self, pids: Sequence[int], num_identities: int, num_instances: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        if num_identities < 1 or num_instances < 1:
            raise ValueError(f"num_identities (P) and num_instances (K) must be >= 1, got P={num_identities}, "
                             f"K={num_instances}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"invalid rank {rank} for world_size {world_size}")
        if num_identities % world_size:
            raise ValueError(f"num_identities (P={num_identities}) must be divisible by the number of processes "
                             f"({world_size}) so each rank gets whole identities")
        by_pid: dict[int, list[int]] = defaultdict(list)
        for i, pid in enumerate(pids):
            by_pid[int(pid)].append(i)
        self.index_by_pid: dict[int, list[int]] = dict(by_pid)
        self.pids = sorted(self.index_by_pid)
        if len(self.pids) < num_identities:
            raise DatasetError(f"the training set has {len(self.pids)} identities, fewer than the {num_identities} "
                               "per batch asked (data.num_identities, P); lower it or use more identities")
        self.P, self.K = num_identities, num_instances
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose (deterministic) batch order the next iteration yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pids) // self.P

    def global_batches(self) -> list[list[int]]:
        """All global (unsharded) batches of the current epoch."""
        rng = random.Random(self.seed + self.epoch)
        order = list(self.pids)
        rng.shuffle(order)
        batches = []
        for b in range(len(self)):
            batch: list[int] = []
            for pid in order[b * self.P:(b + 1) * self.P]:
                idxs = self.index_by_pid[pid]
                batch += rng.sample(idxs, self.K) if len(idxs) >= self.K else rng.choices(idxs, k=self.K)
            batches.append(batch)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        per_rank = self.P // self.world_size * self.K
        lo = self.rank * per_rank
        for batch in self.global_batches():
            yield batch[lo:lo + per_rank]


class ShuffleBatchSampler(Sampler[list[int]]):
    """Shuffled fixed-size batches over ``n`` items (classification), shardable across distributed ranks.

    ``batch_size`` is the global batch: epoch ``e`` shuffles all items with ``random.Random(seed + e)`` and cuts
    ``n // batch_size`` batches (the incomplete last one is dropped: every step has the same batch size, and a
    batch of one would break BatchNorm); with ``world_size > 1`` rank ``r`` yields the ``r``-th contiguous
    ``batch_size / world_size`` slice of each, so the union over ranks is exactly the single-process batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"invalid rank {rank} for world_size {world_size}")
        if batch_size % world_size:
            raise ValueError(f"the batch size ({batch_size}) must be divisible by the number of processes "
                             f"({world_size})")
        if n < batch_size:
            raise DatasetError(f"the training set has {n} samples, fewer than one batch of {batch_size} "
                               "(data.batch_size); lower it")
        self.n, self.batch_size = n, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose (deterministic) order the next iteration yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        order = list(range(self.n))
        random.Random(self.seed + self.epoch).shuffle(order)
        per_rank = self.batch_size // self.world_size
        lo = self.rank * per_rank
        for b in range(len(self)):
            yield order[b * self.batch_size + lo:b * self.batch_size + lo + per_rank]
