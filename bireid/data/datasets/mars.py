"""MARS video re-ID, with every tracklet frame used as an image.

Layout: ``root/bbox_train/<pid>/0004C1T0001F001.jpg`` and optionally ``root/bbox_test/<pid>/...`` (names:
4-digit pid, ``C`` camera 1..6, ``T`` tracklet, ``F`` frame). pid ``00-1`` (junk) is dropped; pid ``0000``
(distractors) is kept in the gallery only, as for Market-1501. ``root`` may also be a parent holding ``MARS``.

Without ``bbox_test`` the data set has training images only (empty query and gallery). With it, the image
protocol used here is: for every test identity seen by at least two cameras, the first frame of its first
tracklet in each camera is a query; every other test frame (distractors included) is in the gallery.
``frame_stride`` keeps every n-th frame of each tracklet (MARS has ~1.2M frames; 1 keeps all).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from .base import (
    DatasetError,
    ReIDDataset,
    Sample,
    check_camera,
    find_layout_root,
    list_images,
    register_dataset,
    relabel,
)

NUM_CAMERAS = 6
_NAME = re.compile(r"^(\d{4}|00-1)C(\d+)T(\d+)F(\d+)")


def _parse(folder: Path, frame_stride: int) -> list[Sample]:
    """Samples (0-based camera, junk dropped) sorted by (pid, camera, tracklet, frame), every n-th frame."""
    tracklets: dict[tuple[int, int, int], list[tuple[int, Path]]] = defaultdict(list)
    for p in list_images(folder, "mars", recursive=True):
        m = _NAME.match(p.name)
        if m is None:
            raise DatasetError(f"mars: cannot parse pid and camera from file name '{p.name}' ({p.resolve()}); "
                               "expected names like 0004C1T0001F001.jpg")
        if m.group(1) == "00-1":
            continue  # junk
        pid, cam = int(m.group(1)), int(m.group(2))
        camid = check_camera(cam, NUM_CAMERAS, p.resolve(), "mars")
        tracklets[(pid, camid, int(m.group(3)))].append((int(m.group(4)), p))
    out = []
    for (pid, camid, _t), frames in sorted(tracklets.items()):
        frames.sort()
        out += [Sample(str(p), pid, camid) for _, p in frames[::frame_stride]]
    return out


@register_dataset("mars")
def mars(root: str | Path, frame_stride: int = 1, eval_only: bool = False) -> ReIDDataset:
    """Parse MARS at ``root`` (frames as images); ``eval_only``: query and gallery from ``bbox_test`` only."""
    if not isinstance(frame_stride, int) or frame_stride < 1:
        raise DatasetError(f"mars: frame_stride must be a positive integer, got {frame_stride!r}")
    folder = find_layout_root(root, "mars", ("bbox_test",) if eval_only else ("bbox_train",), subfolders=("MARS",))
    train: list[Sample] = []
    if not eval_only:
        train = [s for s in _parse(folder / "bbox_train", frame_stride) if s.pid > 0]
        if not train:
            raise DatasetError(f"mars: no usable training images in {(folder / 'bbox_train').resolve()}")
    query: list[Sample] = []
    gallery: list[Sample] = []
    test_dir = folder / "bbox_test"
    if test_dir.exists():
        if not test_dir.is_dir():
            raise DatasetError(f"mars: {test_dir.resolve()} is a file, expected a folder")
        test = _parse(test_dir, frame_stride)
        cams: dict[int, set[int]] = defaultdict(set)
        for s in test:
            cams[s.pid].add(s.camid)
        taken: set[tuple[int, int]] = set()
        # ``test`` is sorted by (pid, camera, tracklet, frame): the first hit per (pid, camera) is the query.
        for s in test:
            key = (s.pid, s.camid)
            if s.pid > 0 and len(cams[s.pid]) >= 2 and key not in taken:
                taken.add(key)
                query.append(s)
            else:
                gallery.append(s)
    return ReIDDataset("mars", relabel(train), query, gallery)
