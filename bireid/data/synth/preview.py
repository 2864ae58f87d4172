"""Synthetic set: a montage PNG of the first identities in every camera."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from .knobs import _S_PREVIEW, _TRAIN, SynthError, _params
from .render import _Renderer


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
