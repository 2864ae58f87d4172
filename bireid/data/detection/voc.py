"""Pascal VOC XML folders (``Annotations/*.xml``, ``JPEGImages/``, ``ImageSets/Main/<split>.txt``).

Rules: only objects named "person" are read; ``difficult`` objects are kept as ignored (VOC's evaluation neither
counts them as misses nor their detections as false positives); VOC boxes are 1-based inclusive pixel indices,
so ``xmin..xmax`` covers the continuous range ``[xmin - 1, xmax]``. Errors are one line naming the file and the
field (``000005.xml: object[2]/bndbox/xmin: expected a number``).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..datasets.base import DatasetError
from .base import PERSON, DetectionData, DetSample, register_detection_dataset


def _text(el: ET.Element, tag: str, path: Path, where: str) -> str:
    child = el.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DatasetError(f"{path}: {where}{tag}: missing")
    return child.text.strip()


def _number(el: ET.Element, tag: str, path: Path, where: str) -> float:
    s = _text(el, tag, path, where)
    try:
        return float(s)
    except ValueError:
        raise DatasetError(f"{path}: {where}{tag}: expected a number, got {s!r:.30}") from None


def parse_voc_xml(path: str | os.PathLike, image_dir: str | os.PathLike, image_id: int = 0,
                  category: str = PERSON) -> DetSample:
    """One VOC annotation file: the image it names (in ``image_dir``) with its ``category`` boxes."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise DatasetError(f"{path}: not a readable XML file ({type(e).__name__}: {str(e)[:80]})") from None
    fname = _text(root, "filename", path, "")
    size = root.find("size")
    if size is None:
        raise DatasetError(f"{path}: size: missing")
    w, h = (_number(size, t, path, "size/") for t in ("width", "height"))
    if w <= 0 or h <= 0 or w != int(w) or h != int(h):
        raise DatasetError(f"{path}: size: width and height must be positive integers, got {w} x {h}")
    boxes, ignore = [], []
    for i, obj in enumerate(root.findall("object")):
        where = f"object[{i}]/"
        if _text(obj, "name", path, where).lower() != category.lower():
            continue
        diff = obj.find("difficult")
        d = 0 if diff is None or diff.text is None else diff.text.strip()
        if d not in (0, "0", "1"):
            raise DatasetError(f"{path}: {where}difficult: expected 0 or 1, got {d!r:.20}")
        bb = obj.find("bndbox")
        if bb is None:
            raise DatasetError(f"{path}: {where}bndbox: missing")
        x1, y1, x2, y2 = (_number(bb, t, path, where + "bndbox/") for t in ("xmin", "ymin", "xmax", "ymax"))
        if x2 < x1 or y2 < y1:
            raise DatasetError(f"{path}: {where}bndbox: xmax < xmin or ymax < ymin ({x1}, {y1}, {x2}, {y2})")
        boxes.append([x1 - 1.0, y1 - 1.0, x2, y2])
        ignore.append(d == "1")
    return DetSample(str(Path(image_dir) / fname), int(w), int(h), np.asarray(boxes, np.float32).reshape(-1, 4),
                     np.asarray(ignore, bool), image_id)


def _split_ids(root: Path, names: tuple[str, ...]) -> list[str]:
    for n in names:
        p = root / "ImageSets" / "Main" / f"{n}.txt"
        if p.is_file():
            return [line.split()[0] for line in p.read_text().splitlines() if line.strip()]
    raise DatasetError(f"{root}: no split list ImageSets/Main/{{{','.join(names)}}}.txt")


def parse_voc_split(root: str | os.PathLike, names: tuple[str, ...], first_id: int = 0) -> list[DetSample]:
    r = Path(root)
    out = []
    for i, stem in enumerate(_split_ids(r, names)):
        xml = r / "Annotations" / f"{stem}.xml"
        if not xml.is_file():
            raise DatasetError(f"{xml}: listed in ImageSets/Main but missing")
        out.append(parse_voc_xml(xml, r / "JPEGImages", first_id + i))
    return out


@register_detection_dataset("voc")
def build_voc(root: str | os.PathLike, eval_only: bool = False) -> DetectionData:
    """A VOC folder (VOC2007 / VOC2012 layout): training split ``trainval`` (or ``train``), test split ``test``
    (or ``val``)."""
    r = Path(root)
    if not (r / "Annotations").is_dir():
        raise DatasetError(f"{r}: not a Pascal VOC folder (no Annotations/)")
    test = parse_voc_split(r, ("test", "val"))
    train = [] if eval_only else parse_voc_split(r, ("trainval", "train"), len(test))
    return DetectionData("voc", train, test)
