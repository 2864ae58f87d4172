"""The built-in synthetic re-ID benchmark: a deterministic generator of a Market-1501-format folder.

Every identity is a person-like figure drawn with PIL (head and hair, skin tone, upper-body clothing with a
pattern, lower-body clothing of a type, shoes, body shape, bags and hats) and seen by several cameras, each
with its own illumination, colour cast, gamma, blur, resolution, background scheme and viewpoint habits.
Identity is carried by appearance only; look-alike "families" (identities that copy some attributes from a
shared base outfit) and a skewed colour palette (most people wear the common colours) keep identities
confusable, so the benchmark separates methods.

Layout written (the standard Market-1501 one, parsed by ``bireid.data.datasets.market1501``)::

    out_dir/bounding_box_train/PPPP_cCsS_FFFFFF_BB.jpg   training identities (pids 1..T)
    out_dir/query/...                                    test identities (pids T+1..T+N), 1 image per camera
    out_dir/bounding_box_test/...                        test identities + distractors (pid 0000) + junk (-1)
    out_dir/synth.json                                   manifest: generator, version, parameters, counts

Determinism: every image has its own ``numpy.random.Generator`` seeded from (seed, stream, split, identity,
camera, index), so the same parameters give byte-identical files regardless of order, and no global RNG is
touched. Sets are written into a hidden sibling folder and renamed into place, so an interrupted run never
leaves a half-written set under the requested name.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .datasets.base import DatasetError, ReIDDataset, market_style_dataset, register_dataset

GENERATOR = "bireid.synth"
GENERATOR_VERSION = 1
MANIFEST_NAME = "synth.json"
DEFAULT_ROOT = "runs/_data/synthetic"
FOLDERS = ("bounding_box_train", "query", "bounding_box_test")
_PARTIAL_MARKER = ".bireid-synth-partial"

SS = 2  # figures are drawn at SS x the output size and box-downsampled: cheap anti-aliasing

# Independent RNG streams (first words of every seed) so adding draws to one never shifts another.
_S_PERSON, _S_FAMILY, _S_CAMERA, _S_PLAN, _S_TRACK, _S_IMAGE, _S_PREVIEW = 1, 2, 3, 4, 5, 6, 7
_TRAIN, _TEST, _DISTRACTOR, _JUNK = 0, 1, 2, 3

RGB = tuple[int, int, int]


class SynthError(DatasetError):
    """A bad synthetic-set parameter or an unusable output folder (a DatasetError: the CLI prints it)."""


# --------------------------------------------------------------------------------------------- knobs

_KNOB_DEFAULTS: dict[str, Any] = {
    # 0 = easy (distinct people, mild cameras) ... 1 = hard. Sets every knob left at None below.
    "difficulty": 0.5,
    "camera_strength": None,  # scale of between-camera differences (illumination, cast, gamma, blur, res.)
    "occlusion_prob": None,  # probability that an image has an occluder in front of the person
    "pose_jitter": None,  # scale of per-image pose / scale / position / rotation variation
    "color_jitter": None,  # per-identity colour spread around the palette colours (0-255 units)
    "share_prob": None,  # probability an identity copies an attribute group from its family's base outfit
    "palette_skew": None,  # Zipf exponent of colour choice: higher = more people in the common colours
    "blur": None,  # largest camera blur radius, output pixels
    "noise": None,  # largest camera sensor-noise std, 0-255 units
    "family_size": 3,  # identities per look-alike family
    "distractor_ratio": 2.5,  # distractor (pid 0) gallery images per test identity
    "junk_ratio": 1.0,  # junk (pid -1) gallery images per test identity
    "train_images_min": 10,  # images per training identity: uniform in [min, max]
    "train_images_max": 16,
    "jpeg_quality": 90,
}


def resolve_knobs(**knobs: Any) -> dict[str, Any]:
    """Validate difficulty knobs and fill every unset one from ``difficulty``; returns the full dict."""
    unknown = sorted(set(knobs) - set(_KNOB_DEFAULTS))
    if unknown:
        raise SynthError(f"unknown synthetic-set option(s) {unknown}; valid: {sorted(_KNOB_DEFAULTS)}")
    k = {**_KNOB_DEFAULTS, **{n: v for n, v in knobs.items() if v is not None}}
    d = float(k["difficulty"])
    if not 0.0 <= d <= 1.0:
        raise SynthError(f"difficulty must lie in [0, 1], got {d}")
    derived = {
        "camera_strength": 0.5 + 1.0 * d,
        "occlusion_prob": 0.1 + 0.4 * d,
        "pose_jitter": 0.5 + 1.0 * d,
        "color_jitter": 22.0 - 16.0 * d,
        "share_prob": 0.1 + 0.5 * d,
        "palette_skew": 0.3 + 1.2 * d,
        "blur": 0.4 + 1.2 * d,
        "noise": 2.0 + 6.0 * d,
    }
    for name, value in derived.items():
        k[name] = float(value if k[name] is None else k[name])
        if k[name] < 0:
            raise SynthError(f"synthetic-set option {name} must be >= 0, got {k[name]}")
    for name in ("occlusion_prob", "share_prob"):
        if k[name] > 1:
            raise SynthError(f"synthetic-set option {name} must lie in [0, 1], got {k[name]}")
    for name in ("family_size", "train_images_min", "train_images_max", "jpeg_quality"):
        if int(k[name]) != k[name]:
            raise SynthError(f"synthetic-set option {name} must be an integer, got {k[name]!r}")
        k[name] = int(k[name])
    if k["family_size"] < 1:
        raise SynthError(f"family_size must be >= 1, got {k['family_size']}")
    if not 2 <= k["train_images_min"] <= k["train_images_max"]:
        raise SynthError("need 2 <= train_images_min <= train_images_max, got "
                         f"{k['train_images_min']}, {k['train_images_max']}")
    if not 1 <= k["jpeg_quality"] <= 100:
        raise SynthError(f"jpeg_quality must lie in [1, 100], got {k['jpeg_quality']}")
    for name in ("distractor_ratio", "junk_ratio"):
        k[name] = float(k[name])
        if k[name] < 0:
            raise SynthError(f"{name} must be >= 0, got {k[name]}")
    k["difficulty"] = d
    return k


def _params(num_train_ids: int, num_test_ids: int, num_cameras: int, seed: int, height: int, width: int,
            **knobs: Any) -> dict[str, Any]:
    """All parameters that define a set (what the manifest stores and compares)."""
    for name, v, lo in (("num_train_ids", num_train_ids, 1), ("num_test_ids", num_test_ids, 1),
                        ("num_cameras", num_cameras, 2), ("height", height, 32), ("width", width, 16)):
        if isinstance(v, bool) or int(v) != v or v < lo:
            raise SynthError(f"{name} must be an integer >= {lo}, got {v!r}")
    if num_cameras > 9:
        raise SynthError(f"num_cameras must be <= 9 (Market names hold one camera digit), got {num_cameras}")
    if num_train_ids + num_test_ids > 9999:
        raise SynthError("num_train_ids + num_test_ids must be <= 9999 (4-digit Market pids)")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise SynthError(f"seed must be a non-negative integer, got {seed!r}")
    return {"num_train_ids": int(num_train_ids), "num_test_ids": int(num_test_ids),
            "num_cameras": int(num_cameras), "seed": int(seed), "height": int(height), "width": int(width),
            **resolve_knobs(**knobs)}


# ------------------------------------------------------------------------------------------ palettes
# Ordered most common first: with the Zipf weighting the front of each list dominates (as in real streets,
# where dark and neutral clothes are the majority), which makes identities share colours.
UPPER = [(30, 30, 32), (235, 235, 230), (85, 85, 90), (30, 40, 80), (150, 150, 155), (60, 90, 160),
         (170, 30, 40), (120, 160, 210), (40, 90, 50), (200, 180, 140), (110, 70, 40), (220, 200, 50),
         (110, 40, 120), (220, 120, 150), (230, 120, 30), (40, 130, 140), (100, 100, 40), (240, 220, 200)]
LOWER = [(25, 25, 30), (45, 60, 95), (80, 110, 160), (70, 70, 75), (180, 165, 125), (130, 130, 135),
         (90, 60, 40), (230, 230, 225), (80, 90, 50), (120, 30, 40), (160, 170, 190)]
SKIN = [(240, 205, 180), (225, 180, 145), (200, 150, 110), (170, 120, 85), (130, 90, 60), (95, 65, 45)]
HAIR = [(20, 15, 12), (55, 35, 20), (95, 65, 35), (170, 130, 75), (150, 150, 150), (130, 50, 25)]
SHOES = [(20, 20, 20), (235, 235, 235), (90, 60, 35), (110, 110, 115), (160, 40, 40), (40, 60, 120)]
BAGS = [(20, 20, 25), (60, 60, 65), (40, 50, 90), (120, 30, 35), (110, 80, 50), (50, 90, 60), (200, 90, 30)]
PATTERNS = ("plain", "stripes", "checks", "two_tone", "jacket", "logo")
LOWER_TYPES = ("trousers", "shorts", "skirt")
BAG_TYPES = ("none", "backpack", "shoulder", "handbag")
BACKGROUNDS = ("brick", "panels", "glass", "tiles", "foliage", "gradient")


def _clip_rgb(c: np.ndarray) -> RGB:
    c = np.clip(np.rint(c), 0, 255).astype(int)
    return (int(c[0]), int(c[1]), int(c[2]))


def _muted(rng: np.random.Generator, lo: float, hi: float) -> RGB:
    """A scene colour: mostly grey with a tint (real walls and floors are not saturated)."""
    grey = rng.uniform(lo, hi)
    return _clip_rgb(grey + rng.normal(0.0, 22.0, 3))


def _pick(rng: np.random.Generator, n: int, skew: float) -> int:
    w = (np.arange(n) + 1.0) ** -skew
    return int(rng.choice(n, p=w / w.sum()))


def _colour(rng: np.random.Generator, palette: list[RGB], skew: float, jitter: float) -> RGB:
    base = np.array(palette[_pick(rng, len(palette), skew)], float)
    return _clip_rgb(base + rng.normal(0.0, jitter, 3))


# ------------------------------------------------------------------------------------------- people

@dataclass(frozen=True)
class Person:
    """The fixed appearance of one identity."""

    skin: RGB
    hair: RGB
    hair_len: int  # 0 short, 1 medium, 2 long
    hat: RGB | None
    upper: RGB
    upper2: RGB
    pattern: str
    period: float  # stripe / check period, fraction of body height
    split: float  # two-tone split position within the torso
    logo_shape: int
    long_sleeves: bool
    lower: RGB
    lower_type: str
    shoes: RGB
    height: float  # fraction of the camera's framing height
    build: float  # width multiplier
    bag: str
    bag_color: RGB


# Attribute groups copied together from a family's base outfit (look-alikes).
_GROUPS = {
    "skin": ("skin",), "hair": ("hair", "hair_len"), "hat": ("hat",),
    "upper": ("upper", "upper2", "pattern", "period", "split", "logo_shape"), "sleeves": ("long_sleeves",),
    "lower": ("lower", "lower_type"), "shoes": ("shoes",), "body": ("height", "build"),
    "bag": ("bag", "bag_color"),
}


def _sample_person_raw(rng: np.random.Generator, k: dict[str, Any]) -> dict[str, Any]:
    skew, jit = k["palette_skew"], k["color_jitter"]
    upper = _colour(rng, UPPER, skew, jit)
    upper2 = _colour(rng, UPPER, 0.3, jit)
    if sum(abs(a - b) for a, b in zip(upper, upper2)) < 90:  # a pattern needs contrast to be visible
        upper2 = _clip_rgb(255.0 - np.array(upper2, float) * 0.8)
    return {
        "skin": _colour(rng, SKIN, 0.3, jit * 0.4),
        "hair": _colour(rng, HAIR, skew * 0.7, jit * 0.5),
        "hair_len": int(rng.choice(3, p=[0.5, 0.25, 0.25])),
        "hat": _colour(rng, BAGS + UPPER[:4], 0.5, jit) if rng.random() < 0.15 else None,
        "upper": upper, "upper2": upper2,
        "pattern": PATTERNS[int(rng.choice(len(PATTERNS), p=[0.34, 0.14, 0.1, 0.12, 0.16, 0.14]))],
        "period": float(rng.uniform(0.03, 0.06)), "split": float(rng.uniform(0.35, 0.6)),
        "logo_shape": int(rng.integers(0, 4)), "long_sleeves": bool(rng.random() < 0.6),
        "lower": _colour(rng, LOWER, skew, jit),
        "lower_type": LOWER_TYPES[int(rng.choice(3, p=[0.7, 0.16, 0.14]))],
        "shoes": _colour(rng, SHOES, skew, jit * 0.5),
        "height": float(rng.uniform(0.88, 1.0)), "build": float(rng.uniform(0.85, 1.18)),
        "bag": BAG_TYPES[int(rng.choice(4, p=[0.45, 0.25, 0.18, 0.12]))],
        "bag_color": _colour(rng, BAGS, skew, jit),
    }


def _identity_person(seed: int, split: int, idx: int, k: dict[str, Any]) -> Person:
    own = _sample_person_raw(np.random.default_rng([seed, _S_PERSON, split, idx]), k)
    fam = idx // k["family_size"]
    if k["family_size"] > 1 and k["share_prob"] > 0:
        base = _sample_person_raw(np.random.default_rng([seed, _S_FAMILY, split, fam]), k)
        pick = np.random.default_rng([seed, _S_FAMILY, split, fam, idx])
        for names in _GROUPS.values():
            if pick.random() < k["share_prob"]:
                own.update({n: base[n] for n in names})
    return Person(**own)


# ------------------------------------------------------------------------------------------ cameras

@dataclass(frozen=True)
class Camera:
    """What one camera does to every image it takes."""

    gains: tuple[float, float, float]
    brightness: float
    gamma: float
    contrast: float
    blur: float
    lowres: float  # downsample factor before upsampling back (far / low-quality camera)
    noise: float
    views: tuple[float, float, float]  # P(front), P(back), P(side)
    framing: float  # mean person height / image height
    bg_kind: str
    wall: RGB
    wall2: RGB
    floor: RGB
    horizon: float
    light: float  # horizontal light direction on the person (-1 .. 1)


def _camera(seed: int, cam: int, k: dict[str, Any]) -> Camera:
    rng = np.random.default_rng([seed, _S_CAMERA, cam])
    s = k["camera_strength"]
    off = int(np.random.default_rng([seed, _S_CAMERA, 99]).integers(0, len(BACKGROUNDS)))
    views = rng.dirichlet([1.2, 1.2, 1.0])
    return Camera(
        gains=tuple(float(g) for g in np.exp(rng.normal(0.0, 0.09 * s, 3))),
        brightness=float(np.exp(rng.normal(0.0, 0.2 * s))),
        gamma=float(np.exp(rng.normal(0.0, 0.18 * s))),
        contrast=float(np.exp(rng.normal(0.0, 0.12 * s))),
        blur=float(rng.uniform(0.0, 1.0) * k["blur"]),
        lowres=float(1.0 + rng.uniform(0.0, 0.7) * min(s, 1.5)),
        noise=float(rng.uniform(0.3, 1.0) * k["noise"]),
        views=(float(views[0]), float(views[1]), float(views[2])),
        framing=float(rng.uniform(0.8, 0.93)),
        bg_kind=BACKGROUNDS[(cam + off) % len(BACKGROUNDS)],
        wall=_muted(rng, 70, 210), wall2=_muted(rng, 50, 220),
        floor=_clip_rgb(rng.uniform(50, 170, 1).repeat(3) + rng.normal(0, 15, 3)),
        horizon=float(rng.uniform(0.55, 0.8)), light=float(rng.uniform(-1.0, 1.0)),
    )


# ------------------------------------------------------------------------------------------ drawing

def _smooth_noise(rng: np.random.Generator, w: int, h: int, cells: tuple[int, int], amp: float) -> np.ndarray:
    small = rng.normal(0.0, 1.0, (cells[1], cells[0])).astype(np.float32)
    img = Image.fromarray(((small * 40 + 128).clip(0, 255)).astype(np.uint8)).resize((w, h), Image.BILINEAR)
    return (np.asarray(img, np.float32) - 128.0) / 40.0 * amp


def _shade(c: RGB, f: float) -> RGB:
    return _clip_rgb(np.array(c, float) * f)


def _background(cam: Camera, rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """The camera's scene (wall + floor in its scheme) with per-image clutter and position changes."""
    hz = int(h * float(np.clip(cam.horizon + rng.normal(0, 0.04), 0.35, 0.9)))
    arr = np.empty((h, w, 3), np.float32)
    t = np.linspace(0.0, 1.0, max(hz, 1), dtype=np.float32)[:, None, None]
    arr[:hz] = np.array(cam.wall, np.float32) * (1.0 - 0.25 * t) + np.array(cam.wall2, np.float32) * 0.25 * t
    tf = np.linspace(0.0, 1.0, h - hz, dtype=np.float32)[:, None, None]
    arr[hz:] = np.array(cam.floor, np.float32) * (0.85 + 0.3 * tf)
    arr += _smooth_noise(rng, w, h, (4, 8), 10.0)[..., None]
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    dark = _shade(cam.wall, 0.7)
    ox = float(rng.uniform(0, 1))  # the view shifts a little between images
    if cam.bg_kind == "brick":
        step = h // 16
        for r, y in enumerate(range(int(ox * step) - step, hz, step)):
            d.line([(0, y), (w, y)], fill=dark, width=1)
            for x in range(((r % 2) * step) - int(ox * 2 * step), w, 2 * step):
                d.line([(x, y), (x, y + step)], fill=dark, width=1)
    elif cam.bg_kind == "panels":
        step = w // 3
        for x in range(int(ox * step), w, step):
            d.rectangle([x, 0, x + 2, hz], fill=dark)
    elif cam.bg_kind == "glass":
        step = w // 2
        for x in range(int(ox * step) - step, w, step):
            d.rectangle([x + 3, int(0.08 * h), x + step - 3, int(hz * 0.85)], fill=_shade(cam.wall2, 1.15),
                        outline=dark, width=2)
            d.line([(x + 6, int(0.5 * hz)), (x + step // 2, int(0.15 * h))], fill=(235, 235, 235), width=1)
    elif cam.bg_kind == "tiles":
        step = w // 6
        for x in range(int(ox * step), w, step):
            d.line([(x, 0), (x, hz)], fill=dark)
        for y in range(0, hz, step):
            d.line([(0, y), (w, y)], fill=dark)
    elif cam.bg_kind == "foliage":
        for _ in range(14):
            x, y, r = rng.uniform(-5, w + 5), rng.uniform(0, hz), rng.uniform(w * 0.1, w * 0.3)
            g = _clip_rgb(np.array([50, 110, 45]) * rng.uniform(0.6, 1.3))
            d.ellipse([x - r, y - r, x + r, y + r], fill=g)
    # floor: paving lines converging to a vanishing point
    vx = w * rng.uniform(0.2, 0.8)
    for i in range(-3, 5):
        d.line([(vx, hz), (vx + i * w * 0.5, h)], fill=_shade(cam.floor, 0.75), width=1)
    d.line([(0, hz), (w, hz)], fill=_shade(cam.floor, 0.6), width=2)
    for _ in range(int(rng.integers(0, 4))):  # clutter: boxes, poles, signs, plants
        kind = int(rng.integers(0, 3))
        col = _muted(rng, 30, 230) if rng.random() < 0.7 else _clip_rgb(rng.uniform(30, 230, 3))
        x = rng.uniform(-0.2, 1.0) * w
        if kind == 0:
            y = rng.uniform(0.3, 0.9) * h
            d.rectangle([x, y, x + rng.uniform(0.15, 0.45) * w, y + rng.uniform(0.05, 0.2) * h], fill=col)
        elif kind == 1:
            d.rectangle([x, 0, x + rng.uniform(0.03, 0.08) * w, hz + rng.uniform(0, 0.2) * h], fill=col)
        else:
            r = rng.uniform(0.1, 0.25) * w
            y = hz - r * 0.5
            d.ellipse([x - r, y - r, x + r, y + r], fill=col)
    return img


def _limb(d: ImageDraw.ImageDraw, x0: float, y0: float, ang: float, length: float, w0: float, w1: float,
          fill: RGB) -> tuple[float, float]:
    """A tapered limb from (x0, y0), pointing down and turned by ``ang`` radians; returns its end."""
    dx, dy = math.sin(ang), math.cos(ang)
    nx, ny = dy, -dx
    x1, y1 = x0 + dx * length, y0 + dy * length
    d.polygon([(x0 - nx * w0 / 2, y0 - ny * w0 / 2), (x0 + nx * w0 / 2, y0 + ny * w0 / 2),
               (x1 + nx * w1 / 2, y1 + ny * w1 / 2), (x1 - nx * w1 / 2, y1 - ny * w1 / 2)], fill=fill)
    d.ellipse([x0 - w0 / 2, y0 - w0 / 2, x0 + w0 / 2, y0 + w0 / 2], fill=fill)
    return x1, y1


@dataclass(frozen=True)
class Pose:
    view: str  # front, back, side (side figures face left; flipped for right)
    flip: bool
    u: float  # figure height, canvas pixels
    cx: float
    foot: float
    swing: float  # walking phase, -1 .. 1
    arm_out: float
    tilt: float  # degrees


def _draw_person(p: Person, pose: Pose, w: int, h: int) -> Image.Image:
    """The figure on a transparent RGBA canvas of size (w, h)."""
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    u, cx, view, b = pose.u, pose.cx, pose.view, p.build
    side = view == "side"
    top = pose.foot - u
    hh, hw = 0.125 * u, (0.05 if side else 0.044) * u
    y_sh, y_hip, y_ank = top + 0.15 * u, top + 0.48 * u, top + 0.955 * u
    sw = (0.07 if side else 0.125) * u * b
    hpw = (0.065 if side else 0.095) * u * b
    leg_len = y_ank - y_hip
    lw0, lw1 = 0.085 * u * b, 0.05 * u
    sleeve = p.upper2 if p.pattern == "two_tone" and not p.long_sleeves else p.upper

    def leg(x0: float, ang: float, dim: float) -> None:
        lower, skin = _shade(p.lower, dim), _shade(p.skin, dim)
        if p.lower_type == "trousers":
            x1, y1 = _limb(d, x0, y_hip, ang, leg_len, lw0, lw1, lower)
        else:
            x1, y1 = _limb(d, x0, y_hip, ang, leg_len, lw0 * 0.8, lw1 * 0.85, skin)
            if p.lower_type == "shorts":
                _limb(d, x0, y_hip, ang, leg_len * 0.42, lw0 * 1.05, lw0 * 0.95, lower)
        shoe = _shade(p.shoes, dim)
        if side:
            d.ellipse([x1 - 0.065 * u, y1 - 0.02 * u, x1 + 0.025 * u, y1 + 0.045 * u], fill=shoe)
        else:
            d.ellipse([x1 - 0.035 * u * b, y1 - 0.02 * u, x1 + 0.035 * u * b, y1 + 0.045 * u], fill=shoe)

    def arm(x0: float, ang: float, dim: float, hand_bag: bool) -> None:
        length, aw = 0.33 * u, 0.055 * u * b
        colour = _shade(sleeve, dim)
        if p.long_sleeves:
            x1, y1 = _limb(d, x0, y_sh + 0.02 * u, ang, length, aw, aw * 0.75, colour)
        else:
            x1, y1 = _limb(d, x0, y_sh + 0.02 * u, ang, length, aw * 0.8, aw * 0.6, _shade(p.skin, dim))
            _limb(d, x0, y_sh + 0.02 * u, ang, length * 0.42, aw * 1.05, aw * 0.95, colour)
        r = 0.024 * u
        d.ellipse([x1 - r, y1 - r, x1 + r, y1 + r], fill=_shade(p.skin, dim))
        if hand_bag:
            bc = _shade(p.bag_color, dim)
            d.line([(x1 - 0.02 * u, y1 + 0.04 * u), (x1, y1), (x1 + 0.02 * u, y1 + 0.04 * u)], fill=bc,
                   width=max(1, int(0.01 * u)))
            d.rounded_rectangle([x1 - 0.045 * u, y1 + 0.035 * u, x1 + 0.045 * u, y1 + 0.11 * u],
                                radius=0.01 * u, fill=bc)

    swing = pose.swing
    bag_col, strap = p.bag_color, _shade(p.bag_color, 0.7)
    # ---- back-most parts
    if side:
        if p.bag == "backpack":  # sticks out behind (the figure faces -x)
            d.rounded_rectangle([cx + sw * 0.4, y_sh + 0.02 * u, cx + sw + 0.075 * u, y_sh + 0.25 * u],
                                radius=0.02 * u, fill=bag_col)
        arm(cx + 0.01 * u, 0.45 * swing, 0.75, False)
        leg(cx + 0.01 * u, -0.4 * swing, 0.8)
        leg(cx - 0.01 * u, 0.4 * swing, 1.0)
    else:
        if p.bag == "backpack" and view == "front":  # the pack's sides show beside a slim torso
            d.rounded_rectangle([cx - sw * 1.02, y_sh + 0.03 * u, cx + sw * 1.02, y_sh + 0.22 * u],
                                radius=0.02 * u, fill=_shade(bag_col, 0.8))
        spread = 0.04 + 0.03 * abs(swing)
        leg(cx - hpw * 0.48, spread, 1.0)
        leg(cx + hpw * 0.48, -spread, 1.0)
    if p.lower_type == "skirt":
        flare = 1.35 + 0.1 * abs(swing)
        d.polygon([(cx - hpw * 1.02, y_hip - 0.03 * u), (cx + hpw * 1.02, y_hip - 0.03 * u),
                   (cx + hpw * flare, y_hip + 0.2 * u), (cx - hpw * flare, y_hip + 0.2 * u)], fill=p.lower)
    else:  # hip block joining the legs
        d.rectangle([cx - hpw, y_hip - 0.03 * u, cx + hpw, y_hip + 0.05 * u], fill=p.lower)
    # ---- torso with its pattern
    yb = y_hip + 0.02 * u
    # the pattern is computed only inside the torso's box (a fraction of the canvas)
    bx0, by0 = max(int(cx - sw) - 2, 0), max(int(y_sh - 0.01 * u) - 2, 0)
    bx1, by1 = min(int(cx + sw) + 3, w), min(int(yb) + 3, h)
    if bx1 > bx0 and by1 > by0:
        mask = Image.new("L", (bx1 - bx0, by1 - by0), 0)
        md = ImageDraw.Draw(mask)
        md.polygon([(cx - sw - bx0, y_sh + 0.02 * u - by0), (cx + sw - bx0, y_sh + 0.02 * u - by0),
                    (cx + hpw * 1.05 - bx0, yb - by0), (cx - hpw * 1.05 - bx0, yb - by0)], fill=255)
        md.ellipse([cx - sw - bx0, y_sh - 0.005 * u - by0, cx + sw - bx0, y_sh + 0.06 * u - by0], fill=255)
        yy, xx = np.mgrid[by0:by1, bx0:bx1].astype(np.float32)
        per = max(p.period * u, 2.0)
        if p.pattern == "stripes":
            sel = ((yy - y_sh) // per) % 2 == 1
        elif p.pattern == "checks":
            sel = (((yy - y_sh) // per) + ((xx - cx) // per)) % 2 == 1
        elif p.pattern == "two_tone":
            sel = yy > y_sh + p.split * (yb - y_sh)
        elif p.pattern == "jacket" and view == "front":  # open jacket: the shirt shows in front only
            sel = np.abs(xx - cx) < 0.32 * sw
        elif p.pattern == "jacket" and side:
            sel = (xx < cx - 0.6 * sw) & (yy > y_sh + 0.04 * u)
        else:
            sel = np.zeros(yy.shape, bool)
        tex = np.where(sel[..., None], np.array(p.upper2 + (255,), np.uint8), np.array(p.upper + (255,), np.uint8))
        layer.paste(Image.fromarray(tex, "RGBA"), (bx0, by0), mask)
    if p.pattern == "logo" and view == "front":
        r, ly = 0.04 * u, y_sh + 0.1 * u
        box = [cx - r, ly - r, cx + r, ly + r]
        if p.logo_shape == 0:
            d.ellipse(box, fill=p.upper2)
        elif p.logo_shape == 1:
            d.rectangle(box, fill=p.upper2)
        elif p.logo_shape == 2:
            d.polygon([(cx, ly - r), (cx + r, ly + r), (cx - r, ly + r)], fill=p.upper2)
        else:
            d.rectangle([cx - 1.6 * r, ly - 0.4 * r, cx + 1.6 * r, ly + 0.4 * r], fill=p.upper2)
    # ---- neck, head, hair, hat
    d.rectangle([cx - 0.018 * u, top + 0.1 * u, cx + 0.018 * u, y_sh + 0.01 * u], fill=_shade(p.skin, 0.9))
    head = [cx - hw, top, cx + hw, top + hh]
    long_y = y_sh + (0.07 if p.hair_len == 1 else 0.17) * u
    if view == "back":
        if p.hair_len:
            d.rounded_rectangle([cx - hw * 0.95, top + 0.4 * hh, cx + hw * 0.95, long_y], radius=0.02 * u,
                                fill=p.hair)
        d.ellipse(head, fill=p.skin)
        d.chord([cx - hw * 1.06, top - 0.008 * u, cx + hw * 1.06, top + hh * (1.5 if p.hair_len else 1.3)],
                180, 360, fill=p.hair)
        d.ellipse([cx - hw * 1.06, top - 0.008 * u, cx + hw * 1.06, top + hh * 0.82], fill=p.hair)
    elif view == "front":
        d.ellipse(head, fill=p.skin)
        d.chord([cx - hw * 1.08, top - 0.01 * u, cx + hw * 1.08, top + hh * 0.78], 180, 360, fill=p.hair)
        if p.hair_len:
            for sx in (-1, 1):
                x0 = cx + sx * hw * 0.78
                d.rounded_rectangle([min(x0, x0 + sx * 0.03 * u), top + 0.25 * hh,
                                     max(x0, x0 + sx * 0.03 * u), long_y], radius=0.01 * u, fill=p.hair)
        er = max(0.007 * u, 0.8)
        for sx in (-1, 1):
            ex, ey = cx + sx * 0.38 * hw, top + 0.52 * hh
            d.ellipse([ex - er, ey - er, ex + er, ey + er], fill=(30, 25, 25))
    else:
        if p.hair_len:
            d.rounded_rectangle([cx - 0.1 * hw, top + 0.3 * hh, cx + hw * 0.95, long_y], radius=0.01 * u,
                                fill=p.hair)
        d.ellipse(head, fill=p.skin)
        d.chord([cx - hw * 1.05, top - 0.01 * u, cx + hw * 1.08, top + hh * 0.75], 180, 360, fill=p.hair)
        d.pieslice([cx - hw * 1.08, top - 0.01 * u, cx + hw * 1.08, top + hh * 0.95], 270, 90, fill=p.hair)
        er = max(0.007 * u, 0.8)
        d.ellipse([cx - 0.6 * hw - er, top + 0.5 * hh - er, cx - 0.6 * hw + er, top + 0.5 * hh + er],
                  fill=(30, 25, 25))
    if p.hat is not None:
        d.chord([cx - hw * 1.12, top - 0.02 * u, cx + hw * 1.12, top + hh * 0.75], 180, 360, fill=p.hat)
        if view == "front":
            d.ellipse([cx - hw * 1.2, top + 0.28 * hh, cx + hw * 1.2, top + 0.42 * hh], fill=_shade(p.hat, 0.8))
        elif side:
            d.rectangle([cx - hw * 1.9, top + 0.28 * hh, cx, top + 0.38 * hh], fill=_shade(p.hat, 0.8))
    # ---- front-most parts: bags, arms
    sw_ = max(1, int(0.018 * u))
    if p.bag == "backpack":
        if view == "back":
            d.rounded_rectangle([cx - sw * 0.78, y_sh + 0.03 * u, cx + sw * 0.78, y_sh + 0.25 * u],
                                radius=0.025 * u, fill=bag_col)
            d.rectangle([cx - sw * 0.5, y_sh + 0.15 * u, cx + sw * 0.5, y_sh + 0.23 * u], fill=strap)
        elif view == "front":
            for sx in (-1, 1):
                d.line([(cx + sx * sw * 0.6, y_sh), (cx + sx * sw * 0.55, y_sh + 0.2 * u)], fill=strap,
                       width=sw_)
        else:
            d.line([(cx + sw * 0.2, y_sh + 0.01 * u), (cx - sw * 0.2, y_sh + 0.17 * u)], fill=strap, width=sw_)
    if p.bag == "shoulder":
        sx = 1 if view == "front" else -1
        d.line([(cx - sx * sw * 0.8, y_sh + 0.01 * u), (cx + sx * hpw * 1.05, y_hip - 0.03 * u)], fill=strap,
               width=sw_)
        bx = cx + (sx * hpw * 1.15 if not side else 0.0)
        d.rounded_rectangle([bx - 0.055 * u, y_hip - 0.06 * u, bx + 0.055 * u, y_hip + 0.05 * u],
                            radius=0.01 * u, fill=bag_col)
    if side:
        arm(cx - 0.01 * u, -0.45 * swing, 1.0, p.bag == "handbag")
    else:
        out = pose.arm_out
        arm(cx - sw + 0.025 * u * b, out + 0.08 * swing, 1.0, p.bag == "handbag")
        arm(cx + sw - 0.025 * u * b, -out + 0.08 * swing, 1.0, False)
    return layer


def _apply_light(layer: Image.Image, cx: float, x0: int, w: int, strength: float) -> Image.Image:
    """Directional light across the figure (brighter on one side); ``layer`` starts at canvas column x0."""
    a = np.asarray(layer, np.float32).copy()
    g = 1.0 + strength * (np.arange(x0, x0 + a.shape[1], dtype=np.float32) - cx) / (0.35 * w)
    a[..., :3] *= np.clip(g, 0.7, 1.25)[None, :, None]
    return Image.fromarray(a.clip(0, 255).astype(np.uint8), "RGBA")


def _pose(rng: np.random.Generator, track: dict[str, Any], p: Person, cam: Camera, k: dict[str, Any],
          w: int, h: int) -> Pose:
    j = k["pose_jitter"]
    view, flip = track["view"], track["flip"]
    if rng.random() < 0.15 * j:  # the person turns within the track now and then
        view = ("front", "back", "side")[int(rng.choice(3, p=cam.views))]
        flip = bool(rng.random() < 0.5)
    u = h * cam.framing * p.height * track["scale"] * float(np.exp(rng.normal(0, 0.03 * j)))
    foot = h * (1.0 - float(np.clip(track["foot"] + rng.normal(0, 0.012 * j), 0.0, 0.1)))
    u = min(u, foot - 0.01 * h)
    cx = w * (0.5 + track["dx"] + rng.normal(0, 0.025 * j))
    return Pose(view=view, flip=flip, u=u, cx=cx, foot=foot, swing=float(rng.uniform(-1, 1)),
                arm_out=float(rng.uniform(0.06, 0.16)), tilt=float(rng.normal(0, 1.5 * j)))


def _track(seed: int, split: int, idx: int, cam_id: int, cam: Camera, k: dict[str, Any]) -> dict[str, Any]:
    """What stays constant over one camera's track of one person (viewpoint, position, sequence)."""
    rng = np.random.default_rng([seed, _S_TRACK, split, idx, cam_id])
    j = k["pose_jitter"]
    return {"view": ("front", "back", "side")[int(rng.choice(3, p=cam.views))], "flip": bool(rng.random() < 0.5),
            "scale": float(np.exp(rng.normal(0, 0.04 * j))), "foot": float(rng.uniform(0.01, 0.05)),
            "dx": float(rng.normal(0, 0.03 * j)), "seq": int(rng.integers(1, 7))}


def _figure(p: Person, pose: Pose, cam: Camera, rng: np.random.Generator, w: int,
            h: int) -> tuple[Image.Image, tuple[int, int]]:
    """The lit, flipped and tilted figure, cropped to its box: (RGBA patch, top-left position on canvas)."""
    layer = _draw_person(p, pose, w, h)
    m = 12  # margin so a small tilt does not clip the figure
    bbox = layer.getbbox() or (0, 0, 1, 1)
    x0, y0, x1, y1 = max(bbox[0] - m, 0), max(bbox[1] - m, 0), min(bbox[2] + m, w), min(bbox[3] + m, h)
    patch = _apply_light(layer.crop((x0, y0, x1, y1)), pose.cx, x0, w, 0.25 * cam.light + rng.normal(0, 0.05))
    if pose.flip:
        patch = patch.transpose(Image.FLIP_LEFT_RIGHT)
        x0, x1 = w - x1, w - x0
    if abs(pose.tilt) > 0.2:
        patch = patch.rotate(pose.tilt, resample=Image.BILINEAR, center=(w / 2 - x0, pose.foot - y0))
    return patch, (x0, y0)


def _paste(img: Image.Image, fig: tuple[Image.Image, tuple[int, int]]) -> None:
    img.alpha_composite(fig[0], dest=fig[1])


def _random_pose(rng: np.random.Generator, cam: Camera, h: int, w: int, scale: float, dx: float) -> Pose:
    u = h * cam.framing * scale
    foot = h * (1.0 - rng.uniform(0.0, 0.05))
    return Pose(view=("front", "back", "side")[int(rng.integers(0, 3))], flip=bool(rng.random() < 0.5),
                u=min(u, foot - 1), cx=w * (0.5 + dx), foot=foot, swing=float(rng.uniform(-1, 1)),
                arm_out=float(rng.uniform(0.06, 0.16)), tilt=0.0)


def _occlude(img: Image.Image, rng: np.random.Generator, cam: Camera, k: dict[str, Any], w: int,
             h: int) -> None:
    """Something in front of the person: another person, a box/bin/car, or a pole."""
    kind = int(rng.choice(3, p=[0.35, 0.4, 0.25]))
    if kind == 0:
        other = Person(**_sample_person_raw(rng, k))
        side = 1 if rng.random() < 0.5 else -1
        pose = _random_pose(rng, cam, h, w, float(rng.uniform(0.9, 1.15)), side * float(rng.uniform(0.45, 0.7)))
        _paste(img, _figure(other, pose, cam, rng, w, h))
        return
    d = ImageDraw.Draw(img)
    col = _clip_rgb(rng.uniform(20, 230, 3))
    if kind == 1:
        y0 = h * (1.0 - rng.uniform(0.2, 0.45))
        x0, x1 = sorted(rng.uniform(-0.3, 1.3, 2) * w)
        x1 = max(x1, x0 + 0.4 * w)
        d.rounded_rectangle([x0, y0, x1, h + 5], radius=0.03 * h, fill=col)
        d.rectangle([x0 + 3, y0 + 0.04 * h, x1 - 3, y0 + 0.07 * h], fill=_shade(col, 0.7))
    else:
        pw = rng.uniform(0.1, 0.22) * w
        x = rng.uniform(0.05, 0.95) * w
        d.rectangle([x - pw / 2, 0, x + pw / 2, h], fill=col)
        d.rectangle([x - pw / 2, 0, x - pw / 4, h], fill=_shade(col, 1.2))


def _camera_effects(img: Image.Image, cam: Camera, rng: np.random.Generator, out_w: int, out_h: int,
                    k: dict[str, Any]) -> Image.Image:
    """Downsample to the output size, then the camera's optics and sensor (+ small per-image changes)."""
    img = img.convert("RGB").resize((out_w, out_h), Image.BOX)
    if cam.lowres > 1.05:
        small = (max(4, round(out_w / cam.lowres)), max(4, round(out_h / cam.lowres)))
        img = img.resize(small, Image.BILINEAR).resize((out_w, out_h), Image.BILINEAR)
    a = np.asarray(img, np.float32) / 255.0
    s = k["camera_strength"]
    gains = np.array(cam.gains, np.float32) * np.exp(rng.normal(0, 0.02 * s, 3)).astype(np.float32)
    a = a * gains * (cam.brightness * float(np.exp(rng.normal(0, 0.07 * s))))
    a = np.clip(a, 0.0, 1.0) ** cam.gamma
    m = a.mean()
    a = (a - m) * cam.contrast + m
    img = Image.fromarray((a * 255.0).clip(0, 255).astype(np.uint8))
    radius = cam.blur * float(rng.uniform(0.6, 1.3))
    if radius > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    if cam.noise > 0:
        a = np.asarray(img, np.float32) + rng.normal(0, cam.noise, (out_h, out_w, 3)).astype(np.float32)
        img = Image.fromarray(a.clip(0, 255).astype(np.uint8))
    return img


def _render(p: Person, cam: Camera, track: dict[str, Any], rng: np.random.Generator, k: dict[str, Any],
            out_w: int, out_h: int) -> Image.Image:
    """One image of person ``p`` in camera ``cam``."""
    w, h = out_w * SS, out_h * SS
    img = _background(cam, rng, w, h).convert("RGBA")
    pose = _pose(rng, track, p, cam, k, w, h)
    if rng.random() < 0.2 * k["occlusion_prob"] + 0.05:  # a passer-by behind the person
        other = Person(**_sample_person_raw(rng, k))
        side = 1 if rng.random() < 0.5 else -1
        bp = _random_pose(rng, cam, h, w, float(rng.uniform(0.6, 0.85)), side * float(rng.uniform(0.3, 0.5)))
        _paste(img, _figure(other, dataclasses.replace(bp, foot=bp.foot - 0.08 * h), cam, rng, w, h))
    _paste(img, _figure(p, pose, cam, rng, w, h))
    if rng.random() < k["occlusion_prob"]:
        _occlude(img, rng, cam, k, w, h)
    return _camera_effects(img, cam, rng, out_w, out_h, k)


def _render_junk(cam: Camera, rng: np.random.Generator, k: dict[str, Any], out_w: int, out_h: int) -> Image.Image:
    """A junk box: background only, a fragment of a person, or a badly framed tiny person."""
    w, h = out_w * SS, out_h * SS
    kind = int(rng.choice(3, p=[0.45, 0.4, 0.15]))
    img = _background(cam, rng, w, h).convert("RGBA")
    if kind > 0:
        other = Person(**_sample_person_raw(rng, k))
        scale = float(rng.uniform(0.3, 0.5)) if kind == 2 else 1.0
        pose = _random_pose(rng, cam, h, w, scale, float(rng.uniform(-0.3, 0.3)))
        if kind == 2:
            pose = dataclasses.replace(pose, foot=float(rng.uniform(0.4, 1.0)) * h)
        _paste(img, _figure(other, pose, cam, rng, w, h))
    if kind == 1:  # a fragment: part of the figure blown up to the full box
        fw, fh = rng.uniform(0.4, 0.7) * w, rng.uniform(0.25, 0.45) * h
        x0, y0 = rng.uniform(0, w - fw), rng.uniform(0, h - fh)
        img = img.crop((int(x0), int(y0), int(x0 + fw), int(y0 + fh))).resize((w, h), Image.BILINEAR)
    return _camera_effects(img, cam, rng, out_w, out_h, k)


# ------------------------------------------------------------------------------------------ planning

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


class _Renderer:
    """Renders any planned image from the parameters alone (identities and cameras cached)."""

    def __init__(self, prm: dict[str, Any]):
        self.prm = prm
        self.cams = [_camera(prm["seed"], c, prm) for c in range(prm["num_cameras"])]
        self._people: dict[tuple[int, int], Person] = {}

    def person(self, split: int, idx: int) -> Person:
        key = (split, idx)
        if key not in self._people:
            if split in (_TRAIN, _TEST):
                self._people[key] = _identity_person(self.prm["seed"], split, idx, self.prm)
            else:  # distractors: independent random people, no families
                rng = np.random.default_rng([self.prm["seed"], _S_PERSON, split, idx])
                self._people[key] = Person(**_sample_person_raw(rng, self.prm))
        return self._people[key]

    def image(self, split: int, idx: int, cam: int, k: int, stream: int = _S_IMAGE) -> Image.Image:
        prm = self.prm
        rng = np.random.default_rng([prm["seed"], stream, split, idx, cam, k])
        if split == _JUNK:
            return _render_junk(self.cams[cam], rng, prm, prm["width"], prm["height"])
        track = _track(prm["seed"], split, idx, cam, self.cams[cam], prm)
        return _render(self.person(split, idx), self.cams[cam], track, rng, prm, prm["width"], prm["height"])


# ------------------------------------------------------------------------------------------ writing

def _read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of a synthetic set, None when the folder has none; raises on a foreign/broken one."""
    path = root / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        man = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SynthError(f"{path} is not a readable synthetic-set manifest ({e}); refusing to touch "
                         f"{root}: remove it yourself or choose another folder") from e
    if not isinstance(man, dict) or man.get("generator") != GENERATOR:
        raise SynthError(f"{path} was not written by {GENERATOR}; refusing to touch {root}")
    return man


def _folder_stats(root: Path) -> dict[str, dict[str, int]]:
    out = {}
    for f in FOLDERS:
        files = [e for e in os.scandir(root / f) if e.name.endswith(".jpg")] if (root / f).is_dir() else []
        out[f] = {"images": len(files), "bytes": sum(e.stat().st_size for e in files)}
    return out


def _is_complete(root: Path, man: dict[str, Any]) -> bool:
    try:
        return _folder_stats(root) == man.get("files")
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_partials(root: Path) -> None:
    """Remove hidden half-written sets of ``root`` left by killed runs on this host (marker-checked)."""
    for cand in root.parent.glob(f".{root.name}.partial-*"):
        marker = cand / _PARTIAL_MARKER
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue  # not ours (or unreadable): leave it alone
        if info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", -1))):
            shutil.rmtree(cand, ignore_errors=True)
    for cand in root.parent.glob(f".{root.name}.old-*"):  # a replaced set whose removal was cut short
        try:
            ours = _read_manifest(cand) is not None
        except DatasetError:
            ours = False
        if ours:
            shutil.rmtree(cand, ignore_errors=True)


def _check_replaceable(root: Path) -> None:
    """Raise unless ``root`` is absent, empty, or a synthetic set (with our manifest)."""
    if not root.exists():
        return
    if not root.is_dir():
        raise SynthError(f"{root} exists and is not a folder; cannot write the synthetic set there")
    if _read_manifest(root) is None and any(root.iterdir()):
        raise SynthError(f"{root} is not empty and has no {MANIFEST_NAME} (it is not a synthetic set "
                         "written by bireid); refusing to delete it: remove it yourself or choose another folder")


def generate_synthetic(out_dir: str | os.PathLike, num_train_ids: int = 120, num_test_ids: int = 120,
                       num_cameras: int = 6, seed: int = 0, height: int = 128, width: int = 64,
                       **knobs: Any) -> Path:
    """Write the synthetic set to ``out_dir`` (replacing a previous synthetic set there) and return it.

    ``knobs`` are the difficulty options of :func:`resolve_knobs` (``difficulty=0.5`` by default). The set
    is written into a hidden sibling folder and renamed into place at the end. A folder that exists, is not
    empty and has no ``synth.json`` is never deleted: that raises ``DatasetError`` naming it.
    """
    prm = _params(num_train_ids, num_test_ids, num_cameras, seed, height, width, **knobs)
    root = Path(out_dir)
    _check_replaceable(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_partials(root)
    tmp = root.parent / f".{root.name}.partial-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        (tmp / _PARTIAL_MARKER).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
        for f in FOLDERS:
            (tmp / f).mkdir()
        rend = _Renderer(prm)
        items = _plan(prm, rend.cams)
        q = prm["jpeg_quality"]
        for it in items:
            rend.image(it.split, it.idx, it.cam, it.k).save(tmp / it.folder / it.name, "JPEG", quality=q)
        manifest = {"generator": GENERATOR, "version": GENERATOR_VERSION, "params": prm,
                    "files": _folder_stats(tmp), "summary": _summary_of(items)}
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        (tmp / _PARTIAL_MARKER).unlink()
        _swap_in(tmp, root, prm)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _swap_in(tmp: Path, root: Path, prm: dict[str, Any]) -> None:
    """Rename the finished set into place, moving an old synthetic set aside first. If another process
    put the same set there meanwhile (e.g. several ranks generating at once), keep that one."""
    old = None
    if root.exists():
        _check_replaceable(root)  # re-check: someone may have written there meanwhile
        old = root.parent / f".{root.name}.old-{uuid.uuid4().hex[:12]}"
        os.replace(root, old)
    try:
        os.replace(tmp, root)
    except OSError:
        if old is not None and not root.exists():
            os.replace(old, root)
        if not _matches(root, prm):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _matches(root: Path, prm: dict[str, Any]) -> bool:
    """Whether ``root`` holds the complete set of parameters ``prm`` (from this generator version)."""
    man = _read_manifest(root) if root.is_dir() else None
    return (man is not None and man.get("version") == GENERATOR_VERSION and _json_eq(man.get("params"), prm)
            and _is_complete(root, man))


def _summary_of(items: list[_Item]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for folder in FOLDERS:
        sel = [it for it in items if it.folder == folder]
        real = [it for it in sel if it.pid > 0]
        out[folder] = {"images": len(sel), "ids": len({it.pid for it in real}),
                       "cameras": len({it.cam for it in sel}),
                       "distractors": sum(it.pid == 0 for it in sel), "junk": sum(it.pid < 0 for it in sel)}
    return out


def ensure_synthetic(root: str | os.PathLike = DEFAULT_ROOT, **params: Any) -> Path:
    """Return ``root`` holding the synthetic set for ``params`` (the arguments of
    :func:`generate_synthetic`): reused when its manifest matches and every file is there, (re)generated
    otherwise. Never deletes a non-empty folder without a ``synth.json`` (raises ``DatasetError``)."""
    root = Path(root)
    if is_current(root, **params):
        return root
    return generate_synthetic(root, **{**_DEFAULT_SIZES, **params})


_DEFAULT_SIZES = {"num_train_ids": 120, "num_test_ids": 120, "num_cameras": 6, "seed": 0, "height": 128,
                  "width": 64}


def is_current(root: str | os.PathLike, **params: Any) -> bool:
    """Whether ``root`` already holds the complete synthetic set for ``params`` (so it would be reused)."""
    return _matches(Path(root), _params(**{**_DEFAULT_SIZES, **params}))


def _json_eq(a: Any, b: Any) -> bool:
    return json.loads(json.dumps(a, sort_keys=True)) == json.loads(json.dumps(b, sort_keys=True))


def read_manifest(root: str | os.PathLike) -> dict[str, Any]:
    """The manifest of the synthetic set in ``root`` (DatasetError when there is none)."""
    man = _read_manifest(Path(root))
    if man is None:
        raise SynthError(f"{Path(root) / MANIFEST_NAME} not found: {root} is not a synthetic set")
    return man


# ------------------------------------------------------------------------------------------ preview

def render_preview(path: str | os.PathLike, num_ids: int = 8, num_train_ids: int = 120, num_cameras: int = 6,
                   seed: int = 0, height: int = 128, width: int = 64, zoom: int = 2, **knobs: Any) -> Path:
    """A montage PNG: rows = the first ``num_ids`` training identities, columns = cameras (each cell a
    fresh image of that identity in that camera, from the same generator as the data set)."""
    prm = _params(num_train_ids, 1, num_cameras, seed, height, width, **knobs)
    if num_ids < 1 or zoom < 1:
        raise SynthError(f"preview needs num_ids >= 1 and zoom >= 1, got {num_ids} and {zoom}")
    rend = _Renderer(prm)
    n = min(num_ids, num_train_ids)
    pad, label_w, label_h = 2, 34, 14
    cw, ch = width * zoom, height * zoom
    sheet = Image.new("RGB", (label_w + num_cameras * (cw + pad), label_h + n * (ch + pad)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for c in range(num_cameras):
        d.text((label_w + c * (cw + pad) + cw // 2 - 6, 1), f"c{c + 1}", fill=(0, 0, 0), font=font)
    for r in range(n):
        d.text((2, label_h + r * (ch + pad) + ch // 2 - 6), f"{r + 1:04d}", fill=(0, 0, 0), font=font)
        for c in range(num_cameras):
            img = rend.image(_TRAIN, r, c, 0, stream=_S_PREVIEW).resize((cw, ch), Image.NEAREST)
            sheet.paste(img, (label_w + c * (cw + pad), label_h + r * (ch + pad)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        sheet.save(path)
    except (ValueError, KeyError) as e:  # PIL: unknown extension
        raise SynthError(f"cannot write the preview {path}: {e} (use a .png name)") from e
    return path


# ------------------------------------------------------------------------------------------ registry

@register_dataset("synthetic")
def build(root: str | os.PathLike | None = DEFAULT_ROOT, num_train_ids: int = 120, num_test_ids: int = 120,
          seed: int = 0, num_cameras: int = 6, height: int = 128, width: int = 64, **knobs: Any) -> ReIDDataset:
    """The 'synthetic' data set: generated into ``root`` on first use (reused after), parsed as Market-1501."""
    folder = ensure_synthetic(root or DEFAULT_ROOT, num_train_ids=num_train_ids, num_test_ids=num_test_ids,
                              seed=seed, num_cameras=num_cameras, height=height, width=width, **knobs)
    return market_style_dataset(folder, "synthetic", num_cameras)
