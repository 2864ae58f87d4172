"""Gallery search with a ``.bnn`` model: cached gallery features, blocked top-k search, ranking pictures.

The feature cache lives under the user's cache folder (``$XDG_CACHE_HOME/bireid/gallery``, else
``~/.cache/bireid/gallery``), never in the gallery: one file per (gallery, model file contents), holding each
image's path, size and modification time with its feature, so a rebuild extracts only new or changed images.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..fileio import atomic_write
from ..images import list_images, load_image
from .extractor import FeatureExtractor

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


def default_cache_dir() -> Path:
    """Where gallery features are cached: ``$XDG_CACHE_HOME/bireid/gallery`` or ``~/.cache/bireid/gallery``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bireid" / "gallery"


def _normalize(f: np.ndarray) -> np.ndarray:
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def _stamp(path: Path) -> list:
    """[resolved path, size, mtime_ns]; a file that cannot be stat'ed never matches the cache (it is read, and
    reported by the bad-image policy)."""
    try:
        st = path.stat()
    except OSError:
        return [str(path.resolve()), -1, -1]
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


class _Cache:
    """One gallery's cached features: {resolved path: (size, mtime_ns, feature)} in an .npz file."""

    def __init__(self, file: Path):
        self.file = file

    def read(self) -> dict[str, tuple[int, int, np.ndarray]]:
        if not self.file.exists():
            return {}
        try:
            with np.load(self.file, allow_pickle=False) as z:
                feats = np.asarray(z["feats"], np.float32)
                stamps = json.loads(str(z["stamps"]))
            if feats.ndim != 2 or len(stamps) != len(feats):
                raise ValueError("features and file list differ in length")
            return {p: (size, mtime, feats[i]) for i, (p, size, mtime) in enumerate(stamps)}
        except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as e:
            warnings.warn(f"gallery cache {self.file} is unreadable ({type(e).__name__}: {e}); rebuilding it",
                          RuntimeWarning, stacklevel=3)
            return {}

    def write(self, stamps: list[list], feats: np.ndarray) -> None:
        def save(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, feats=feats, stamps=np.array(json.dumps(stamps)))

        try:
            atomic_write(self.file, save)
        except OSError as e:
            warnings.warn(f"cannot write the gallery cache {self.file} ({e.strerror or e}); the features were "
                          "computed but will be computed again next time (set XDG_CACHE_HOME or use --no-cache)",
                          RuntimeWarning, stacklevel=3)


class GalleryIndex:
    """Features of a set of gallery images, searchable by distance (``cosine`` or squared ``euclidean``)."""

    def __init__(self, paths: list[Path], feats: np.ndarray, metric: str = "cosine"):
        if metric not in ("cosine", "euclidean"):
            raise ValueError(f"metric must be cosine or euclidean, got {metric!r}")
        if len(paths) != len(feats):
            raise ValueError("one feature row per gallery path is required")
        self.paths, self.feats, self.metric = list(paths), np.asarray(feats, np.float32), metric
        self.num_extracted = 0  # images whose features were computed (not read from the cache) by build()
        self.skipped: list = []  # ImageError of each unreadable image left out by build(bad_images="skip")

    @classmethod
    def build(cls, extractor: FeatureExtractor, gallery: str | os.PathLike | list, metric: str = "cosine",
              cache: bool = True, cache_dir: str | os.PathLike | None = None, bad_images: str = "error",
              progress: bool = False) -> GalleryIndex:
        """Extract (or read from the cache) the features of a gallery folder (subfolders included, sorted) or
        a list of image paths.

        The cache (``cache=True``) is one file per gallery and model file contents under ``cache_dir``
        (default :func:`default_cache_dir`); images whose path, size and modification time match the cache
        are not read again. An unreadable cache is rebuilt with a warning; an unwritable one only warns.
        ``bad_images``: 'error' raises :class:`BadImagesError` naming every unreadable image, 'skip' leaves
        them out (listed in ``index.skipped``)."""
        if isinstance(gallery, (str, os.PathLike)):
            paths = list_images(gallery, recursive=True)
            where = str(Path(gallery).resolve())
        else:
            paths = [Path(p) for p in gallery]
            where = "\n".join(str(p.resolve()) for p in paths)
        if not paths:
            raise FileNotFoundError(f"no images in gallery {gallery}")
        store = None
        known: dict[str, tuple[int, int, np.ndarray]] = {}
        if cache:
            key = hashlib.sha256(f"{where}\0{file_sha256(extractor.model_path)}".encode()).hexdigest()[:32]
            store = _Cache(Path(cache_dir or default_cache_dir()) / f"{key}.npz")
            known = store.read()
        stamps = [_stamp(p) for p in paths]
        feats = np.empty((len(paths), extractor.feat_dim), np.float32)
        todo = []
        for i, (p, size, mtime) in enumerate(stamps):
            hit = known.get(p)
            if hit is not None and hit[:2] == (size, mtime) and hit[2].shape == (extractor.feat_dim,):
                feats[i] = hit[2]
            else:
                todo.append(i)
        new, kept, bad = extractor.extract_files([paths[i] for i in todo], bad_images, progress)
        row = {p: r for r, p in enumerate(kept)}
        ok = np.ones(len(paths), bool)
        for i in todo:
            r = row.get(paths[i])
            if r is None:  # unreadable, skipped
                ok[i] = False
            else:
                feats[i] = new[r]
        good = np.flatnonzero(ok)
        if store is not None and (kept or set(known) != {stamps[i][0] for i in good}):
            store.write([stamps[i] for i in good], feats[good])
        index = cls([paths[i] for i in good], feats[good], metric)
        index.num_extracted, index.skipped = len(kept), bad
        return index

    def search(self, query: np.ndarray, topk: int = 10, block: int = 16384) -> tuple[np.ndarray, np.ndarray]:
        """(indices, distances) of the ``topk`` nearest gallery items, nearest first.

        A single query feature of shape (D,) gives 1-D arrays (k,), so ``[index.paths[i] for i in ids]`` lists
        the matches; a batch of queries (Q, D) gives 2-D arrays (Q, k), row q for query q (also when Q = 1).
        Distances are computed against blocks of ``block`` gallery rows, keeping memory at O(Q * block)."""
        query = np.asarray(query, np.float32)
        if query.ndim not in (1, 2):
            raise ValueError(f"query features must be (D,) or (Q, D), got shape {query.shape}")
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
        ids, dists = np.take_along_axis(best_i, order, 1), np.take_along_axis(best_d, order, 1)
        return (ids[0], dists[0]) if query.ndim == 1 else (ids, dists)


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
        img = load_image(path).resize((tw - 2 * border, th - 2 * border), Image.Resampling.BILINEAR)
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
