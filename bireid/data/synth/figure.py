"""Synthetic set: drawing a scene background and a person figure (head, hair, clothing, limbs, bags) with PIL."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .knobs import RGB
from .people import Camera, Person, _clip_rgb, _muted


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
