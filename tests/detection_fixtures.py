"""Generated detection fixtures: tiny VOC and COCO folders, tiny synthetic scene sets, tiny detection configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, w: int = 64, h: int = 48, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def voc_xml(filename: str, w: int, h: int, objects: list[tuple[str, int, tuple]]) -> str:
    objs = "".join(f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                   f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, d, b in objects)
    return (f"<annotation><filename>{filename}</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size>{objs}</annotation>")


def write_voc(root: Path) -> Path:
    """Two training images and one test image; people, a difficult person and a dog."""
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    ann = {"a": [("person", 0, (11, 6, 30, 40)), ("dog", 0, (1, 1, 5, 5))],
           "b": [("Person", 1, (2, 3, 12, 20)), ("person", 0, (30, 5, 60, 45))],
           "c": []}
    for i, (stem, objs) in enumerate(ann.items()):
        write_image(root / "JPEGImages" / f"{stem}.jpg", seed=i)
        (root / "Annotations" / f"{stem}.xml").write_text(voc_xml(f"{stem}.jpg", 64, 48, objs))
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("a\nb\n")
    (root / "ImageSets" / "Main" / "test.txt").write_text("c\n")
    return root


def coco_doc() -> dict:
    return {"images": [{"id": 7, "file_name": "x.jpg", "width": 64, "height": 48},
                       {"id": 8, "file_name": "y.jpg", "width": 64, "height": 48}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [10, 5, 20, 30], "iscrowd": 0},
                            {"id": 2, "image_id": 7, "category_id": 3, "bbox": [40, 0, 10, 10], "iscrowd": 1},
                            {"id": 3, "image_id": 8, "category_id": 5, "bbox": [0, 0, 5, 5], "iscrowd": 0}],
            "categories": [{"id": 3, "name": "person"}, {"id": 5, "name": "car"}]}


def write_coco(root: Path, doc: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(("x.jpg", "y.jpg")):
        write_image(root / "images" / name, seed=i)
    text = json.dumps(doc or coco_doc())
    (root / "train.json").write_text(text)
    (root / "test.json").write_text(text)
    return root


def tiny_det_config(root: Path, out: Path, **over):
    """A detection config that trains a width-8 detector on 64x64 synthetic scenes in seconds."""
    from bireid.config import set_key
    from bireid.tasks import new_config

    cfg = new_config("detection")
    base = {"data.root": str(root), "data.workers": 0, "data.batch_size": 4, "data.test_batch_size": 8,
            "data.height": 64, "data.width": 64, "data.synth_scenes": [8, 4], "train.epochs": 1,
            "train.output_dir": str(out), "train.progress": False, "optim.warmup_epochs": 0, "model.width": 8}
    for k, v in {**base, **over}.items():
        set_key(cfg, k, v)
    return cfg
