"""The built-in synthetic pedestrian-scene set: street scenes drawn with the synthetic re-ID person renderer
(``bireid.data.synth``), written as a COCO-format folder and read back through the COCO parser.

A scene is one camera of the re-ID generator (its background scheme, illumination, optics and sensor) with
1..``max_people`` random people at varied scales (figure height 18%..80% of the image) and positions, drawn far
to near (people lower in the frame are nearer, so they occlude the ones behind), and occluders (boxes, poles) in
front of some. Boxes are the full figure extent (amodal, as pedestrian benchmarks label); a person less than 30%
visible, or under 8 pixels tall, is an ``iscrowd`` (ignored) box.

Determinism: scene ``i`` of a split has its own ``numpy.random.Generator`` seeded from (seed, stream, split, i):
the same parameters give the same files. A set is written into a hidden sibling folder and renamed into place;
``scenes.json`` holds the parameters, and a folder with other parameters is regenerated.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ...config import ConfigError
from ..datasets.base import DatasetError
from ..synth.figure import Pose, _background, _shade
from ..synth.knobs import SS, resolve_knobs
from ..synth.people import Person, _camera, _clip_rgb, _sample_person_raw
from ..synth.render import _camera_effects, _figure
from .base import DetectionData, register_detection_dataset
from .coco import build_coco

GENERATOR = "bireid.scenes"
VERSION = 1
MANIFEST = "scenes.json"
DEFAULT_ROOT = "runs/_data/synthetic_scenes"
_S_SCENE = 11  # an RNG stream of its own (the re-ID set uses 1..7)
_CAMERAS = 6
MIN_VISIBLE = 0.3
MIN_HEIGHT = 8.0


def _occluder(size: tuple[int, int], rng: np.random.Generator, img: Image.Image) -> np.ndarray:
    """A box (bin, car) standing on the floor or a pole, drawn on ``img``; returns its mask."""
    w, h = size
    col = _clip_rgb(rng.uniform(20, 230, 3))
    if rng.random() < 0.5:
        y0 = h * (1.0 - rng.uniform(0.12, 0.3))
        x0 = rng.uniform(-0.1, 0.9) * w
        rect = [x0, y0, x0 + rng.uniform(0.1, 0.3) * w, h]
    else:
        x, pw = rng.uniform(0.05, 0.95) * w, rng.uniform(0.02, 0.05) * w
        rect = [x - pw / 2, 0, x + pw / 2, h]
        col = _shade(col, 1.1)
    ImageDraw.Draw(img).rectangle(rect, fill=col)
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle(rect, fill=255)
    return np.asarray(mask) > 0


def render_scene(seed: int, split: int, index: int, width: int, height: int, max_people: int,
                 knobs: dict[str, Any]) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """Scene ``index`` of ``split``: (RGB image, boxes float32 (n, 4) xyxy in output pixels, ignore flags)."""
    rng = np.random.default_rng([seed, _S_SCENE, split, index])
    cam = _camera(seed, int(rng.integers(_CAMERAS)), knobs)
    w, h = width * SS, height * SS
    img = _background(cam, rng, w, h).convert("RGBA")
    n = int(rng.integers(1, max_people + 1))
    poses = []
    for _ in range(n):
        u = h * float(np.exp(rng.uniform(np.log(0.18), np.log(0.8))))
        foot = float(rng.uniform(u + 0.02 * h, 1.03 * h))
        poses.append(Pose(view=("front", "back", "side")[int(rng.integers(3))], flip=bool(rng.random() < 0.5),
                          u=u, cx=float(rng.uniform(0.05, 0.95)) * w, foot=foot, swing=float(rng.uniform(-1, 1)),
                          arm_out=float(rng.uniform(0.06, 0.16)), tilt=0.0))
    poses.sort(key=lambda p: p.foot)  # far (higher in the frame) first: nearer people are pasted over them
    owner = np.full((h, w), -1, np.int32)
    boxes, areas = [], []
    for i, pose in enumerate(poses):
        person = Person(**_sample_person_raw(rng, knobs))
        patch, (x0, y0) = _figure(person, pose, cam, rng, w, h)
        alpha = np.asarray(patch.getchannel("A")) > 0
        ys, xs = np.nonzero(alpha)
        if not len(xs):
            continue
        img.alpha_composite(patch, dest=(x0, y0))
        ph, pw = alpha.shape
        region = owner[y0:y0 + ph, x0:x0 + pw]
        region[alpha[:region.shape[0], :region.shape[1]]] = i
        boxes.append((i, [x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1]))
        areas.append(int(alpha.sum()))
    for _ in range(int(rng.random() < knobs["occlusion_prob"]) + int(rng.random() < 0.5 * knobs["occlusion_prob"])):
        owner[_occluder((w, h), rng, img)] = -2
    out = _camera_effects(img, cam, rng, width, height, knobs)
    vis = np.bincount(owner[owner >= 0].ravel(), minlength=len(poses))
    b = np.asarray([bx for _, bx in boxes], np.float32).reshape(-1, 4) / SS
    b[:, 0::2] = b[:, 0::2].clip(0, width)
    b[:, 1::2] = b[:, 1::2].clip(0, height)
    frac = np.asarray([vis[i] / max(a, 1) for (i, _), a in zip(boxes, areas)], np.float32)
    ignore = (frac < MIN_VISIBLE) | (b[:, 3] - b[:, 1] < MIN_HEIGHT)
    return out, b, ignore


def _params(num_train: int, num_test: int, seed: int, height: int, width: int, max_people: int,
            difficulty: float) -> dict[str, Any]:
    for name, v, lo in (("num_train", num_train, 0), ("num_test", num_test, 1), ("seed", seed, 0),
                        ("height", height, 32), ("width", width, 32), ("max_people", max_people, 1)):
        if isinstance(v, bool) or int(v) != v or v < lo:
            raise DatasetError(f"synthetic scenes: {name} must be an integer >= {lo}, got {v!r}")
    return {"generator": GENERATOR, "version": VERSION, "num_train": int(num_train), "num_test": int(num_test),
            "seed": int(seed), "height": int(height), "width": int(width), "max_people": int(max_people),
            "difficulty": float(difficulty)}


def _coco_doc(entries: list[tuple[str, np.ndarray, np.ndarray]], width: int, height: int) -> dict[str, Any]:
    images, anns = [], []
    for i, (name, boxes, ignore) in enumerate(entries):
        images.append({"id": i + 1, "file_name": name, "width": width, "height": height})
        for b, ig in zip(boxes.tolist(), ignore.tolist()):
            bw, bh = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "bbox": [b[0], b[1], bw, bh],
                         "area": bw * bh, "iscrowd": int(ig)})
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}


def generate_scenes(root: str | os.PathLike, num_train: int = 300, num_test: int = 100, seed: int = 0,
                    height: int = 128, width: int = 128, max_people: int = 6, difficulty: float = 0.5) -> Path:
    """Write the scene set to ``root`` (replacing a scene set of other parameters); returns ``root``."""
    prm = _params(num_train, num_test, seed, height, width, max_people, difficulty)
    knobs = resolve_knobs(difficulty=difficulty)
    root = Path(root)
    man = root / MANIFEST
    if root.exists() and not man.is_file() and any(root.iterdir()):
        raise DatasetError(f"{root} exists and is not a synthetic scene set ({MANIFEST} missing); refusing to "
                           "overwrite it")
    tmp = root.parent / f".{root.name}.partial-{uuid.uuid4().hex[:8]}"
    (tmp / "images").mkdir(parents=True)
    try:
        for split, name, count in ((0, "train", num_train), (1, "test", num_test)):
            entries = []
            for i in range(count):
                img, boxes, ignore = render_scene(seed, split, i, width, height, max_people, knobs)
                fname = f"{name}_{i:05d}.jpg"
                img.save(tmp / "images" / fname, quality=90)
                entries.append((fname, boxes, ignore))
            (tmp / f"{name}.json").write_text(json.dumps(_coco_doc(entries, width, height)))
        (tmp / MANIFEST).write_text(json.dumps(prm, indent=1))
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def ensure_scenes(root: str | os.PathLike = DEFAULT_ROOT, num_train: int = 300, num_test: int = 100, seed: int = 0,
                  height: int = 128, width: int = 128, max_people: int = 6, difficulty: float = 0.5) -> Path:
    """``root`` holding the scene set of these parameters (generated now unless it is already there)."""
    root = Path(root)
    kw = dict(num_train=num_train, num_test=num_test, seed=seed, height=height, width=width, max_people=max_people,
              difficulty=difficulty)
    try:
        have = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        have = None
    if have != _params(**kw):
        generate_scenes(root, **kw)
    return root


def _config_options(d: Any) -> dict[str, Any]:
    n = d.synth_scenes
    if not isinstance(n, (list, tuple)) or len(n) != 2:
        raise ConfigError(f"config key 'data.synth_scenes' must be [train, test] scene counts, got {n!r}")
    return dict(num_train=d.synth_scenes[0], num_test=d.synth_scenes[1], seed=d.synth_seed, height=d.height,
                width=d.width, difficulty=d.synth_difficulty)


@register_detection_dataset("synthetic", config_options=_config_options, default_root=DEFAULT_ROOT)
def build_scenes(root: str | os.PathLike | None = DEFAULT_ROOT, eval_only: bool = False,
                 **params: Any) -> DetectionData:
    """The 'synthetic' detection set: generated into ``root`` on first use (reused after), parsed as COCO."""
    folder = ensure_scenes(root or DEFAULT_ROOT, **params)
    data = build_coco(folder, eval_only)
    data.name = "synthetic"
    return data
