"""COCO JSON (``instances_*.json``) person annotations.

Rules: only the category named "person" (case-insensitive) is read, other annotations are dropped; ``iscrowd``
boxes are kept as ignored; ``bbox`` is [x, y, w, h] in pixels; an image without person boxes stays (a negative).
Errors are one line naming the file and the field, e.g. ``ann.json: annotations[3].bbox: expected 4 numbers``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.base import DatasetError
from .base import PERSON, DetectionData, DetSample, register_detection_dataset


def _err(path: Path, field: str, msg: str) -> DatasetError:
    return DatasetError(f"{path}: {field}: {msg}")


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _image_folder(json_path: Path) -> Path:
    """Where ``file_name`` is relative to: an ``images`` folder beside the JSON file, else its own folder."""
    d = json_path.parent / "images"
    return d if d.is_dir() else json_path.parent


def parse_coco(json_path: str | os.PathLike, image_root: str | os.PathLike | None = None,
               category: str = PERSON) -> list[DetSample]:
    """The images of a COCO JSON file with their ``category`` boxes (see the module docstring)."""
    path = Path(json_path)
    if not path.is_file():
        raise DatasetError(f"COCO annotation file not found: {path}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DatasetError(f"{path}: not a readable JSON file ({type(e).__name__}: {str(e)[:80]})") from None
    if not isinstance(doc, dict):
        raise _err(path, "(top level)", "expected an object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(doc.get(key), list):
            raise _err(path, key, "missing or not a list")
    cats = set()
    for i, c in enumerate(doc["categories"]):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or not isinstance(c.get("name"), str):
            raise _err(path, f"categories[{i}]", "expected an object with an integer id and a name")
        if c["name"].lower() == category.lower():
            cats.add(c["id"])
    if not cats:
        names = [c["name"] for c in doc["categories"]][:8]
        raise _err(path, "categories", f"no category named {category!r} (found {names})")
    root = Path(image_root) if image_root is not None else _image_folder(path)
    images: dict[int, dict[str, Any]] = {}
    for i, im in enumerate(doc["images"]):
        where = f"images[{i}]"
        if not isinstance(im, dict):
            raise _err(path, where, "not an object")
        if not isinstance(im.get("id"), int) or isinstance(im.get("id"), bool):
            raise _err(path, f"{where}.id", f"expected an integer, got {im.get('id')!r:.40}")
        if not isinstance(im.get("file_name"), str) or not im["file_name"]:
            raise _err(path, f"{where}.file_name", "missing or empty")
        for k in ("width", "height"):
            v = im.get(k)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise _err(path, f"{where}.{k}", f"expected a positive integer, got {v!r:.40}")
        if im["id"] in images:
            raise _err(path, f"{where}.id", f"duplicate image id {im['id']}")
        images[im["id"]] = {"im": im, "boxes": [], "ignore": []}
    for i, a in enumerate(doc["annotations"]):
        where = f"annotations[{i}]"
        if not isinstance(a, dict):
            raise _err(path, where, "not an object")
        if a.get("category_id") not in cats:
            continue
        if a.get("image_id") not in images:
            raise _err(path, f"{where}.image_id", f"{a.get('image_id')!r:.40} names no image")
        b = a.get("bbox")
        if not isinstance(b, list) or len(b) != 4 or not all(_num(v) for v in b):
            raise _err(path, f"{where}.bbox", f"expected 4 numbers [x, y, w, h], got {b!r:.60}")
        if b[2] < 0 or b[3] < 0:
            raise _err(path, f"{where}.bbox", f"negative width or height {b}")
        crowd = a.get("iscrowd", 0)
        if crowd not in (0, 1) or isinstance(crowd, float):
            raise _err(path, f"{where}.iscrowd", f"expected 0 or 1, got {crowd!r:.20}")
        entry = images[a["image_id"]]
        entry["boxes"].append([b[0], b[1], b[0] + b[2], b[1] + b[3]])
        entry["ignore"].append(bool(crowd))
    out = []
    for iid, e in images.items():
        im = e["im"]
        out.append(DetSample(str(root / im["file_name"]), im["width"], im["height"],
                             np.asarray(e["boxes"], np.float32).reshape(-1, 4), np.asarray(e["ignore"], bool), iid))
    return out


def _find(root: Path, names: tuple[str, ...], what: str) -> Path:
    for n in names:
        for p in (root / n, root / "annotations" / n):
            if p.is_file():
                return p
    raise DatasetError(f"{root}: no {what} annotation file (looked for {', '.join(names)}, also under "
                       "annotations/)")


TRAIN_FILES = ("train.json", "instances_train2017.json", "instances_train.json")
TEST_FILES = ("test.json", "val.json", "instances_val2017.json", "instances_val.json", "instances_test.json")


@register_detection_dataset("coco")
def build_coco(root: str | os.PathLike, eval_only: bool = False) -> DetectionData:
    """A COCO-format folder: ``train.json`` and ``test.json`` (or ``val.json``, or ``instances_train2017.json`` /
    ``instances_val2017.json``, also under ``annotations/``); images relative to an ``images/`` folder beside each
    file, or to the file's folder."""
    r = Path(root)
    if not r.is_dir():
        raise DatasetError(f"COCO data set folder not found: {r}")
    test = parse_coco(_find(r, TEST_FILES, "test"))
    train = [] if eval_only else parse_coco(_find(r, TRAIN_FILES, "training"))
    return DetectionData("coco", train, test)
