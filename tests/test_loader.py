"""Loaders: batch format, P x K training batches, reproducible augmentation, bad-image skip / error policy."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bireid.config import Config
from bireid.data import (
    BadImageError,
    ImageDataset,
    ReIDDataset,
    build_dataset,
    build_test_loaders,
    build_train_loader,
    build_transforms,
)

torch.set_num_threads(1)


def make_market(root: Path) -> Path:
    rng = np.random.default_rng(0)
    layout = {
        "bounding_box_train": [f"{pid:04d}_c{1 + j % 6}s1_{j:06d}_01.jpg" for pid in (3, 5, 8, 11, 12)
                               for j in range(3)],
        "query": [f"{pid:04d}_c1s1_000100_00.jpg" for pid in (20, 21, 22)],
        "bounding_box_test": [f"{pid:04d}_c2s1_{j:06d}_01.jpg" for pid in (20, 21, 22, 23, 24) for j in range(2)],
    }
    for folder, names in layout.items():
        (root / folder).mkdir(parents=True)
        for n in names:
            Image.fromarray(rng.integers(0, 256, (16, 8, 3), dtype=np.uint8)).save(root / folder / n)
    return root


def corrupt(path: str, kind: str) -> None:
    if kind == "garbage":
        Path(path).write_bytes(b"\x00garbage" * 20)
    else:  # truncated JPEG of the right size
        buf = Path(path).with_suffix(".tmp.jpg")
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, quality=95)
        data = buf.read_bytes()
        buf.unlink()
        Path(path).write_bytes(data[: len(data) // 2])


def make_cfg(workers: int = 0, bad_images: str = "skip", P: int = 2, K: int = 2) -> Config:
    cfg = Config()
    d = cfg.data
    d.height, d.width, d.num_identities, d.num_instances = 32, 16, P, K
    d.workers, d.bad_images, d.test_batch_size = workers, bad_images, 4
    cfg.train.seed = 11
    return cfg


@pytest.fixture
def dataset(tmp_path) -> ReIDDataset:
    return build_dataset("market1501", make_market(tmp_path / "m"))


def collect(loader) -> list[tuple[torch.Tensor, ...]]:
    return [tuple(t.clone() for t in batch) for batch in loader]


def test_train_loader_batches(dataset):
    loader = build_train_loader(make_cfg(P=2, K=3), dataset)
    batches = collect(loader)
    assert len(batches) == len(loader) == 5 // 2
    for images, pids, camids, indices in batches:
        assert images.shape == (6, 3, 32, 16) and images.dtype == torch.float32
        assert pids.dtype == camids.dtype == indices.dtype == torch.long
        assert sorted(torch.bincount(pids).tolist())[-2:] == [3, 3]  # 2 identities x 3 images
        assert pids.tolist() == [dataset.train[i].pid for i in indices.tolist()]
        assert camids.tolist() == [dataset.train[i].camid for i in indices.tolist()]


def test_train_loader_rank_shard(dataset):
    full = build_train_loader(make_cfg(P=4, K=2), dataset)
    shards = [build_train_loader(make_cfg(P=4, K=2), dataset, rank=r, world_size=2) for r in range(2)]
    full_idx = [b[3].tolist() for b in full]
    shard_idx = [[b[3].tolist() for b in s] for s in shards]
    assert [a + b for a, b in zip(*shard_idx)] == full_idx


@pytest.mark.parametrize("workers", [0, 2])
def test_train_loader_reproducible(dataset, workers):
    calls: list[int] = []

    def epoch_batches(epoch: int, loader=None):
        if loader is None:
            loader = build_train_loader(make_cfg(workers), dataset)
            loader.set_epoch(epoch)
        else:
            loader.batch_sampler.set_epoch(epoch)  # the trainer's way: the workers' seeds follow too
        random.seed(123)  # used by the augmentations when loading in the main process (workers=0 only)
        torch.manual_seed(len(calls))  # the global torch RNG must not matter with workers
        calls.append(epoch)
        return collect(loader)

    e0 = epoch_batches(0)
    assert all(torch.equal(a, b) for x, y in zip(e0, epoch_batches(0)) for a, b in zip(x, y))
    advanced = build_train_loader(make_cfg(workers), dataset)
    epoch_batches(0, advanced)
    e1 = epoch_batches(1, advanced)
    e1_fresh = epoch_batches(1)  # a resumed run jumping straight to epoch 1 draws the same batches
    assert all(torch.equal(a, b) for x, y in zip(e1, e1_fresh) for a, b in zip(x, y))
    assert any(not torch.equal(x[0], y[0]) for x, y in zip(e0, e1))


@pytest.mark.parametrize("workers", [0, 2])
def test_test_loaders(dataset, workers):
    q, g = build_test_loaders(make_cfg(workers), dataset)
    tf = build_transforms(32, 16, False)
    for loader, samples in ((q, dataset.query), (g, dataset.gallery)):
        batches = collect(loader)
        assert [len(b[0]) for b in batches] == [min(4, len(samples) - i) for i in range(0, len(samples), 4)]
        indices = torch.cat([b[3] for b in batches])
        assert indices.tolist() == list(range(len(samples)))  # data-set order, no shuffling
        assert torch.cat([b[1] for b in batches]).tolist() == [s.pid for s in samples]
        images = torch.cat([b[0] for b in batches])
        expected = torch.stack([tf(Image.open(s.path).convert("RGB")) for s in samples])
        assert torch.equal(images, expected)  # the loader applies exactly the test transforms


@pytest.mark.parametrize("workers", [0, 2])
def test_skip_policy(dataset, workers):
    bad = [dataset.gallery[1].path, dataset.gallery[6].path]
    corrupt(bad[0], "garbage")
    corrupt(bad[1], "truncated")
    _, g = build_test_loaders(make_cfg(workers, "skip"), dataset)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        batches = collect(g)
    indices = torch.cat([b[3] for b in batches]).tolist()
    assert indices == [i for i in range(10) if i not in (1, 6)]
    assert all(len(b[0]) == len(b[1]) == len(b[3]) for b in batches)
    assert g.bad_paths == bad and g.num_skipped == 2 and g.last_pass_skipped == 2
    msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning) and "skipped" in str(x.message)]
    assert len(msgs) == 1 and "skipped 2 unreadable" in msgs[0] and bad[0] in msgs[0] and bad[1] in msgs[0]
    with pytest.warns(RuntimeWarning, match="skipped 2"):
        collect(g)  # a second pass counts again, the distinct paths stay
    assert g.num_skipped == 4 and g.bad_paths == bad


def test_skip_whole_bad_batch(dataset):
    for s in dataset.query[:2]:
        corrupt(s.path, "garbage")
    cfg = make_cfg(0, "skip")
    cfg.data.test_batch_size = 2
    q, _ = build_test_loaders(cfg, dataset)
    with pytest.warns(RuntimeWarning, match="skipped 2"):
        batches = collect(q)
    assert len(batches) == 1 and batches[0][3].tolist() == [2]


@pytest.mark.parametrize("workers", [0, 2])
def test_error_policy_names_the_file(dataset, workers):
    bad = dataset.query[2].path
    corrupt(bad, "truncated")
    q, _ = build_test_loaders(make_cfg(workers, "error"), dataset)
    with pytest.raises(BadImageError, match="truncated") as e:
        collect(q)
    assert e.value.path == bad and bad in str(e.value)
    # the training loader applies the same policy
    corrupt(dataset.train[0].path, "garbage")
    cfg = make_cfg(workers, "error", P=5, K=3)  # one batch holding every training image
    with pytest.raises(BadImageError, match="not a recognised image format") as e:
        collect(build_train_loader(cfg, dataset))
    assert e.value.path == dataset.train[0].path


def test_image_dataset_direct(dataset):
    tf = build_transforms(32, 16, False)
    ds = ImageDataset(dataset.query, tf, "error")
    x, pid, camid, idx = ds[1]
    assert x.shape == (3, 32, 16) and (pid, camid, idx) == (dataset.query[1].pid, dataset.query[1].camid, 1)
    corrupt(dataset.query[0].path, "garbage")
    with pytest.raises(BadImageError):
        ds[0]
    marker = ImageDataset(dataset.query, tf, "skip")[0]
    assert marker.path == dataset.query[0].path and marker.index == 0
    with pytest.raises(ValueError, match="bad_images must be one of"):
        ImageDataset(dataset.query, tf, "ignore")
