"""Synthetic set: which images exist (identities x cameras x counts, distractors, junk) and their file names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .knobs import _DISTRACTOR, _JUNK, _S_PLAN, _TEST, _TRAIN
from .people import Camera
from .render import _track


@dataclass(frozen=True)
class _Item:
    folder: str
    name: str
    split: int  # _TRAIN, _TEST, _DISTRACTOR, _JUNK
    idx: int  # identity index within its split (distractor / junk number)
    cam: int  # 0-based
    k: int  # image number within (identity, camera)
    pid: int


def _name(pid: int, cam: int, seq: int, frame: int) -> str:
    p = "-1" if pid < 0 else f"{pid:04d}"
    return f"{p}_c{cam + 1}s{seq}_{frame:06d}_01.jpg"


def _plan(prm: dict[str, Any], cams: list[Camera]) -> list[_Item]:
    """Which images exist: identities x cameras x counts, distractors and junk (all seeded)."""
    seed, nc, k = prm["seed"], prm["num_cameras"], prm
    items: list[_Item] = []
    frame = 0

    def seq_of(split: int, idx: int, cam: int) -> int:
        return _track(seed, split, idx, cam, cams[cam], k)["seq"]

    for i in range(prm["num_train_ids"]):
        rng = np.random.default_rng([seed, _S_PLAN, _TRAIN, i])
        n = int(rng.integers(k["train_images_min"], k["train_images_max"] + 1))
        ncam = int(rng.integers(2, min(nc, max(2, n // 2), 5) + 1))
        chosen = sorted(int(c) for c in rng.choice(nc, ncam, replace=False))
        counts = dict.fromkeys(chosen, 1)
        for c in rng.choice(chosen, n - ncam):
            counts[int(c)] += 1
        for c in chosen:
            for j in range(counts[c]):
                frame += 1
                items.append(_Item("bounding_box_train", _name(i + 1, c, seq_of(_TRAIN, i, c), frame), _TRAIN,
                                   i, c, j, i + 1))
    frame = 0
    t0 = prm["num_train_ids"]
    for i in range(prm["num_test_ids"]):
        rng = np.random.default_rng([seed, _S_PLAN, _TEST, i])
        ncam = int(rng.integers(2, min(nc, 4) + 1))
        chosen = [int(c) for c in rng.choice(nc, ncam, replace=False)]
        nq = min(ncam, int(rng.integers(2, 4)))
        pid = t0 + i + 1
        for c in sorted(chosen):
            j = 0
            if c in chosen[:nq]:  # Market style: one query per camera in some of the cameras
                frame += 1
                items.append(_Item("query", _name(pid, c, seq_of(_TEST, i, c), frame), _TEST, i, c, 0, pid))
                j = 1
            for _ in range(int(rng.integers(1, 4))):  # gallery images in every camera (query ones too)
                frame += 1
                items.append(_Item("bounding_box_test", _name(pid, c, seq_of(_TEST, i, c), frame), _TEST, i, c,
                                   j, pid))
                j += 1
    nt = prm["num_test_ids"]
    for split, count, pid in ((_DISTRACTOR, round(k["distractor_ratio"] * nt), 0),
                              (_JUNK, round(k["junk_ratio"] * nt), -1)):
        for i in range(count):
            rng = np.random.default_rng([seed, _S_PLAN, split, i])
            c = int(rng.integers(0, nc))
            frame += 1
            items.append(_Item("bounding_box_test", _name(pid, c, int(rng.integers(1, 7)), frame), split, i, c,
                               0, pid))
    return items
