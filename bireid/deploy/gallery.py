"""Gallery search with a ``.bnn`` model: cached gallery features, blocked top-k search, ranking pictures."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .extractor import FeatureExtractor, list_images, load_rgb

_MARKET = re.compile(r"^(-?\d+)_c(\d+)")


def market_pid(path: str | os.PathLike) -> int | None:
    """The person id of a Market-1501-style file name (``0002_c1s1_000451_03.jpg`` -> 2), else None."""
    m = _MARKET.match(Path(path).name)
    return int(m.group(1)) if m else None


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _normalize(f: np.ndarray) -> np.ndarray:
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


class GalleryIndex:
    """Features of a set of gallery images, searchable by distance (``cosine`` or squared ``euclidean``)."""

    def __init__(self, paths: list[Path], feats: np.ndarray, metric: str = "cosine"):
        if metric not in ("cosine", "euclidean"):
            raise ValueError(f"metric must be cosine or euclidean, got {metric!r}")
        if len(paths) != len(feats):
            raise ValueError("one feature row per gallery path is required")
        self.paths, self.feats, self.metric = list(paths), np.asarray(feats, np.float32), metric

    @classmethod
    def build(cls, extractor: FeatureExtractor, gallery: str | os.PathLike | list, metric: str = "cosine",
              cache_dir: str | os.PathLike | None = None) -> GalleryIndex:
        """Extract (or load from cache) the features of a gallery folder or list of image paths.

        The cache file is keyed by the model file's hash and every image's path, size and mtime, so any
        change re-extracts. ``cache_dir`` defaults to ``<gallery folder>/.bireid_cache`` (None for a list)."""
        if isinstance(gallery, (str, os.PathLike)):
            paths = list_images(gallery)
            if cache_dir is None:
                cache_dir = Path(gallery) / ".bireid_cache"
        else:
            paths = [Path(p) for p in gallery]
        if not paths:
            raise FileNotFoundError(f"no images in gallery {gallery}")
        key = None
        if cache_dir is not None:
            h = hashlib.sha256(file_sha256(extractor.model_path).encode())
            for p in paths:
                st = p.stat()
                h.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            key = Path(cache_dir) / f"gallery-{h.hexdigest()[:32]}.npz"
            if key.is_file():
                try:
                    with np.load(key, allow_pickle=False) as z:
                        feats = z["feats"]
                        names = json.loads(str(z["paths"]))
                    if feats.shape == (len(paths), extractor.feat_dim) and names == [str(p) for p in paths]:
                        return cls(paths, feats, metric)
                except (OSError, ValueError, KeyError):
                    pass  # unreadable cache: rebuild it
        feats = extractor.extract(paths)
        if key is not None:
            key.parent.mkdir(parents=True, exist_ok=True)
            tmp = key.with_name(key.name + ".tmp.npz")
            np.savez(tmp, feats=feats, paths=np.array(json.dumps([str(p) for p in paths])))
            os.replace(tmp, key)
        return cls(paths, feats, metric)

    def search(self, query: np.ndarray, topk: int = 10, block: int = 16384) -> tuple[np.ndarray, np.ndarray]:
        """(indices, distances) of the ``topk`` nearest gallery items per query row, nearest first.

        Distances are computed against blocks of ``block`` gallery rows, keeping memory at O(Q * block)."""
        q = np.atleast_2d(np.asarray(query, np.float32))
        g = self.feats
        if q.shape[1] != g.shape[1]:
            raise ValueError(f"query features have dim {q.shape[1]}, the gallery {g.shape[1]}")
        k = min(topk, len(g))
        if self.metric == "cosine":
            q, g = _normalize(q), _normalize(g)
        best_d = np.full((len(q), 0), np.inf, np.float32)
        best_i = np.zeros((len(q), 0), np.int64)
        for s in range(0, len(g), block):
            gb = g[s:s + block]
            if self.metric == "cosine":
                d = 1.0 - q @ gb.T
            else:
                d = (q * q).sum(1, keepdims=True) - 2.0 * (q @ gb.T) + (gb * gb).sum(1)[None]
            d_all = np.concatenate([best_d, d.astype(np.float32)], axis=1)
            i_all = np.concatenate([best_i, np.broadcast_to(np.arange(s, s + len(gb)), d.shape)], axis=1)
            if d_all.shape[1] > k:
                part = np.argpartition(d_all, k - 1, axis=1)[:, :k]
                d_all, i_all = np.take_along_axis(d_all, part, 1), np.take_along_axis(i_all, part, 1)
            best_d, best_i = d_all, i_all
        order = np.argsort(best_d, axis=1, kind="stable")
        return np.take_along_axis(best_i, order, 1), np.take_along_axis(best_d, order, 1)


def draw_ranking(query: str | os.PathLike, results: list[str | os.PathLike], out: str | os.PathLike,
                 distances: list[float] | None = None, thumb: tuple[int, int] = (64, 128)) -> Path:
    """Save a picture: the query, then the ranked gallery images. When the file names carry Market-1501 pids,
    results with the query's pid get a green border and the others a red one (grey when unknown)."""
    tw, th = thumb
    pad, border, gap = 6, 4, 16
    n = len(results)
    width = pad + (tw + pad) * (n + 1) + gap
    canvas = Image.new("RGB", (width, th + 2 * pad + 14), "white")
    draw = ImageDraw.Draw(canvas)
    qpid = market_pid(query)

    def paste(path, x, color, label):
        img = load_rgb(path).resize((tw - 2 * border, th - 2 * border), Image.Resampling.BILINEAR)
        draw.rectangle([x, pad, x + tw - 1, pad + th - 1], fill=color)
        canvas.paste(img, (x + border, pad + border))
        draw.text((x + 2, pad + th + 1), label, fill="black")

    paste(query, pad, (0, 0, 255), "query")
    for i, r in enumerate(results):
        pid = market_pid(r)
        color = (160, 160, 160) if qpid is None or pid is None else ((0, 170, 0) if pid == qpid else (220, 0, 0))
        label = f"#{i + 1}" + (f"  d={distances[i]:.2f}" if distances is not None else "")
        paste(r, pad + gap + (tw + pad) * (i + 1), color, label)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    return out
