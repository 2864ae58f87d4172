"""RandomIdentitySampler: P x K composition, epoch coverage, determinism and rank sharding."""

from __future__ import annotations

from collections import Counter

import pytest

from bireid.data import DatasetError, RandomIdentitySampler

# 10 identities with 1..5 images each, interleaved so indices of one identity are not contiguous
PIDS = [pid for n in range(5) for pid in range(10) if n < (pid % 5) + 1]


def test_pk_composition():
    s = RandomIdentitySampler(PIDS, num_identities=4, num_instances=3, seed=0)
    batches = list(s)
    assert len(batches) == len(s) == 10 // 4
    for b in batches:
        assert len(b) == 12
        counts = Counter(PIDS[i] for i in b)
        assert len(counts) == 4 and set(counts.values()) == {3}
        for pid in counts:
            idx = [i for i in b if PIDS[i] == pid]
            # identities with >= K images give K distinct images; smaller ones repeat (with replacement)
            if PIDS.count(pid) >= 3:
                assert len(set(idx)) == 3
            else:
                assert set(idx) <= {i for i, p in enumerate(PIDS) if p == pid}


def test_each_identity_at_most_once_per_epoch_and_all_over_epochs():
    s = RandomIdentitySampler(PIDS, num_identities=3, num_instances=2, seed=5)
    seen_over_epochs: set[int] = set()
    for epoch in range(6):
        s.set_epoch(epoch)
        pids_in_epoch = [PIDS[b[j]] for b in s for j in range(0, len(b), 2)]
        assert len(pids_in_epoch) == 9 and len(set(pids_in_epoch)) == 9  # 3 batches x 3 distinct identities
        seen_over_epochs |= set(pids_in_epoch)
    assert seen_over_epochs == set(range(10))


def test_determinism_and_epoch_reseed():
    a = RandomIdentitySampler(PIDS, 4, 2, seed=1)
    b = RandomIdentitySampler(PIDS, 4, 2, seed=1)
    assert list(a) == list(b) == list(a)  # same seed and epoch -> same batches, repeatable
    a.set_epoch(1)
    e1 = list(a)
    assert e1 != list(b)
    b.set_epoch(1)
    assert list(b) == e1
    assert list(RandomIdentitySampler(PIDS, 4, 2, seed=2)) != list(RandomIdentitySampler(PIDS, 4, 2, seed=1))


@pytest.mark.parametrize("world_size", [2, 4])
def test_rank_shards_partition_the_global_batch(world_size):
    P, K = 4, 3
    single = RandomIdentitySampler(PIDS, P, K, seed=7)
    ranks = [RandomIdentitySampler(PIDS, P, K, seed=7, rank=r, world_size=world_size) for r in range(world_size)]
    for epoch in (0, 3):
        for s in [single, *ranks]:
            s.set_epoch(epoch)
        global_batches = list(single)
        per_rank = [list(r) for r in ranks]
        assert all(len(r) == len(single) == len(pr) for r, pr in zip(ranks, per_rank))
        for bi, gb in enumerate(global_batches):
            shards = [pr[bi] for pr in per_rank]
            assert all(len(sh) == P // world_size * K for sh in shards)
            assert sum(shards, []) == gb  # the concatenation over ranks is exactly the single-process batch
            pid_sets = [{PIDS[i] for i in sh} for sh in shards]
            for i, ps in enumerate(pid_sets):  # whole identities per rank, disjoint across ranks
                assert len(ps) == P // world_size
                assert all(ps.isdisjoint(q) for q in pid_sets[i + 1:])


def test_errors():
    with pytest.raises(DatasetError, match="has 10 identities, fewer than the 11"):
        RandomIdentitySampler(PIDS, 11, 2)
    with pytest.raises(ValueError, match="divisible"):
        RandomIdentitySampler(PIDS, 3, 2, world_size=2)
    with pytest.raises(ValueError, match="invalid rank"):
        RandomIdentitySampler(PIDS, 4, 2, rank=2, world_size=2)
    with pytest.raises(ValueError, match=">= 1"):
        RandomIdentitySampler(PIDS, 4, 0)
