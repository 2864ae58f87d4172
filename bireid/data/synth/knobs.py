"""Synthetic set: the parameters that define a set (sizes, seed, difficulty knobs), their checks, and the
constants every part shares (RNG streams, splits, supersampling)."""

from __future__ import annotations

from typing import Any

from ...config import SYNTH_DIFFICULTY
from ..datasets.base import DatasetError

SS = 2  # figures are drawn at SS x the output size and box-downsampled: cheap anti-aliasing

# Independent RNG streams (first words of every seed) so adding draws to one never shifts another.
_S_PERSON, _S_FAMILY, _S_CAMERA, _S_PLAN, _S_TRACK, _S_IMAGE, _S_PREVIEW = 1, 2, 3, 4, 5, 6, 7
_TRAIN, _TEST, _DISTRACTOR, _JUNK = 0, 1, 2, 3

RGB = tuple[int, int, int]


class SynthError(DatasetError):
    """A bad synthetic-set parameter or an unusable output folder (a DatasetError: the CLI prints it)."""


_KNOB_DEFAULTS: dict[str, Any] = {
    # 0 = easy (distinct people, mild cameras) ... 1 = hard. Sets every knob left at None below.
    "difficulty": SYNTH_DIFFICULTY,
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
