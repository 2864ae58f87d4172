"""Synthetic set: one image from its seed: pose within a track, lit figure, passers-by, occluders and the
camera's optics and sensor; ``_Renderer`` renders any planned image from the parameters alone."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .figure import Pose, _apply_light, _background, _draw_person, _shade
from .knobs import _JUNK, _S_IMAGE, _S_PERSON, _S_TRACK, _TEST, _TRAIN, SS
from .people import Camera, Person, _camera, _clip_rgb, _identity_person, _sample_person_raw


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
