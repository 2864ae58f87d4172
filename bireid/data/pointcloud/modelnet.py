"""ModelNet10 / ModelNet40 (Wu et al., CVPR 2015) in their release layout::

    root/<class>/train/*.off|.pcd|.npy     training shapes of one class
    root/<class>/test/...                  test shapes

(``root`` may also be the folder holding ``ModelNet10/`` or ``ModelNet40/``.) The official release ships OFF
meshes (sampled to ``data.num_points`` points when read); the ModelNet10 copy beside this project ships 1,024-point
binary PCD files in the same layout. Classes are the class folders in sorted order. ``modelnet10`` and
``modelnet40`` check the number of classes; ``modelnet`` takes any. ``eval_only`` reads the test shapes only.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ..datasets.base import DatasetError, check_root_dir
from ..labelled import FileSplit, LabelledData
from .base import register_pointcloud_dataset
from .io import POINT_EXTENSIONS, read_points


def _options(data_cfg: Any) -> dict[str, Any]:
    return {"num_points": data_cfg.num_points}


def _shapes(folder: Path, name: str) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"{name}: missing folder {folder.resolve()} (expected <class>/train/ and <class>/test/)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in POINT_EXTENSIONS and p.is_file())
    if not files:
        raise DatasetError(f"{name}: folder {folder.resolve()} has no point clouds ({', '.join(POINT_EXTENSIONS)})")
    return files


def parse_modelnet(root: str | Path, name: str, expected_classes: int | None = None, num_points: int = 1024,
                   eval_only: bool = False) -> LabelledData:
    base = check_root_dir(root, name)
    for release in ("ModelNet40", "ModelNet10"):
        if not (base / release).is_dir():
            continue
        if not any((d / "train").is_dir() for d in base.iterdir() if d.is_dir()):
            base = base / release
        break
    classes = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DatasetError(f"{name}: {base.resolve()} has no class folders (expected <class>/train/*.off|.pcd|.npy)")
    if expected_classes is not None and len(classes) != expected_classes:
        raise DatasetError(f"{name}: found {len(classes)} class folders in {base.resolve()}, expected "
                           f"{expected_classes} (use --dataset modelnet for another number of classes)")
    reader = functools.partial(read_points, num_points=num_points)
    splits = []
    for split in ("train", "test"):
        paths, labels = [], []
        for i, c in enumerate(classes if not (eval_only and split == "train") else []):
            files = _shapes(base / c / split, name)
            paths += [str(f) for f in files]
            labels += [i] * len(files)
        splits.append(FileSplit(paths, labels, reader))
    return LabelledData(name, classes, splits[0], splits[1], kind="point clouds")


@register_pointcloud_dataset("modelnet", config_options=_options)
def modelnet(root: str | Path, num_points: int = 1024, eval_only: bool = False) -> LabelledData:
    """A ModelNet-layout folder with any number of classes."""
    return parse_modelnet(root, "modelnet", None, num_points, eval_only)


@register_pointcloud_dataset("modelnet10", config_options=_options)
def modelnet10(root: str | Path, num_points: int = 1024, eval_only: bool = False) -> LabelledData:
    """ModelNet10: 10 classes (3,991 training / 908 test shapes)."""
    return parse_modelnet(root, "modelnet10", 10, num_points, eval_only)


@register_pointcloud_dataset("modelnet40", config_options=_options)
def modelnet40(root: str | Path, num_points: int = 1024, eval_only: bool = False) -> LabelledData:
    """ModelNet40: 40 classes (9,843 training / 2,468 test shapes)."""
    return parse_modelnet(root, "modelnet40", 40, num_points, eval_only)
