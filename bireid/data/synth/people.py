"""Synthetic set: who is seen (identities with their fixed appearance, look-alike families) and by which
cameras (each with its illumination, optics, background scheme and viewpoint habits)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .knobs import _S_CAMERA, _S_FAMILY, _S_PERSON, RGB

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
