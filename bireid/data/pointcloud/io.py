"""Point-cloud files: PCD (ascii and binary), OFF meshes (sampled to points), NumPy ``.npy``.

- PCD (the Point Cloud Library's format, v0.5-0.7): a text header (``FIELDS``, ``SIZE``, ``TYPE``, ``COUNT``,
  ``WIDTH``, ``HEIGHT``, ``POINTS``, ``DATA``), then the points as text (``DATA ascii``) or packed little-endian
  records (``DATA binary``). The x, y and z fields are read, whatever other fields a record has; points with a
  non-finite coordinate (PCL's invalid points) are dropped. ``binary_compressed`` (LZF) is not read.
- OFF (ModelNet's meshes): ``OFF``, the vertex / face / edge counts (ModelNet40 has files whose first line is
  ``OFF<counts>``), the vertices, then faces as ``k i1 .. ik``; polygons are split into triangle fans. A mesh is
  turned into points by area-weighted triangle sampling (:func:`sample_surface`), with a generator seeded from
  the file name, so the same file always gives the same points.
- ``.npy``: a float (M, >= 3) array whose first three columns are x, y, z; read with ``allow_pickle=False``.

Every reader returns float32 (M, 3) and raises :class:`BadPointCloudError` naming the file and the problem.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ..datasets.base import BadImageError, DatasetError

POINT_EXTENSIONS: tuple[str, ...] = (".pcd", ".off", ".npy")
_PCD_TYPES = {("F", 4): "<f4", ("F", 8): "<f8", ("I", 1): "<i1", ("I", 2): "<i2", ("I", 4): "<i4", ("I", 8): "<i8",
              ("U", 1): "<u1", ("U", 2): "<u2", ("U", 4): "<u4", ("U", 8): "<u8"}
_MAX_HEADER = 4096


class BadPointCloudError(BadImageError):
    """A point-cloud file cannot be read (missing, unreadable, malformed or truncated)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        DatasetError.__init__(self, f"bad point cloud {self.path}: {reason}")


def _pcd_header(raw: bytes, path: Path) -> tuple[dict[str, list[str]], int]:
    """(header fields, offset of the data) of a PCD file."""
    head: dict[str, list[str]] = {}
    pos = 0
    while True:
        end = raw.find(b"\n", pos)
        if end < 0 or end > _MAX_HEADER:
            raise BadPointCloudError(path, "no DATA line in the PCD header (not a PCD file, or truncated)")
        try:
            line = raw[pos:end].decode("ascii").strip()
        except UnicodeDecodeError:  # binary bytes before any DATA line
            raise BadPointCloudError(path, "no DATA line in the PCD header (not a PCD file, or a broken "
                                     "header)") from None
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, *vals = line.split()
        head[key.upper()] = vals
        if key.upper() == "DATA":
            return head, pos


def read_pcd(path: str | Path) -> np.ndarray:
    """The x, y, z columns of a PCD file (``DATA ascii`` or ``binary``), float32 (M, 3)."""
    path = Path(path)
    raw = _read_bytes(path)
    head, offset = _pcd_header(raw, path)
    fields = head.get("FIELDS") or head.get("COLUMNS")
    if not fields:
        raise BadPointCloudError(path, "the PCD header has no FIELDS line")
    n_f = len(fields)
    sizes = head.get("SIZE", ["4"] * n_f)
    types = head.get("TYPE", ["F"] * n_f)
    counts = head.get("COUNT", ["1"] * n_f)
    if not len(sizes) == len(types) == len(counts) == n_f:
        raise BadPointCloudError(path, f"FIELDS, SIZE, TYPE and COUNT disagree on the number of fields ({n_f}, "
                                 f"{len(sizes)}, {len(types)}, {len(counts)})")
    try:
        dts = [np.dtype(_PCD_TYPES[(t.upper(), int(s))]) for t, s in zip(types, sizes)]
        cnt = [int(c) for c in counts]
        if "POINTS" in head:
            n = int(head["POINTS"][0])
        else:
            n = int(head["WIDTH"][0]) * int(head.get("HEIGHT", ["1"])[0])
    except (KeyError, ValueError, IndexError):
        raise BadPointCloudError(path, f"unsupported or malformed SIZE/TYPE/COUNT/POINTS "
                                 f"({' '.join(sizes)} / {' '.join(types)} / {' '.join(counts)})") from None
    missing = [a for a in "xyz" if a not in fields]
    if missing:
        raise BadPointCloudError(path, f"no {', '.join(missing)} field (FIELDS {' '.join(fields)})")
    if n < 0 or any(c < 1 for c in cnt):
        raise BadPointCloudError(path, "negative POINTS or a COUNT below 1")
    col = {f: sum(cnt[:i]) for i, f in enumerate(fields)}  # first column of each field in a flat record
    kind = (head["DATA"] or ["?"])[0].lower()
    if kind == "ascii":
        try:
            flat = np.array(raw[offset:].decode("ascii").split(), dtype=np.float64)
        except (UnicodeDecodeError, ValueError):
            raise BadPointCloudError(path, "DATA ascii holds something that is not a number") from None
        width = sum(cnt)
        if flat.size < n * width:
            raise BadPointCloudError(path, f"truncated: {flat.size} values for {n} points of {width}")
        table = flat[:n * width].reshape(n, width)
        pts = table[:, [col["x"], col["y"], col["z"]]]
    elif kind == "binary":
        rec = np.dtype([(f"f{i}", dt, (c,)) for i, (dt, c) in enumerate(zip(dts, cnt))])
        need = n * rec.itemsize
        if len(raw) - offset < need:
            raise BadPointCloudError(path, f"truncated: {len(raw) - offset:,} data bytes for {n} points of "
                                     f"{rec.itemsize} bytes")
        data = np.frombuffer(raw, dtype=rec, count=n, offset=offset)
        pts = np.stack([data[f"f{fields.index(a)}"][:, 0].astype(np.float64) for a in "xyz"], axis=1)
    elif kind == "binary_compressed":
        raise BadPointCloudError(path, "DATA binary_compressed (LZF) is not supported; save it as binary or ascii")
    else:
        raise BadPointCloudError(path, f"unknown DATA kind {kind!r} (ascii or binary)")
    return _finite(pts, path)


def read_off(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(vertices float64 (V, 3), triangles int64 (T, 3)) of an OFF mesh; polygons are split into triangle fans."""
    path = Path(path)
    try:
        text = _read_bytes(path).decode("ascii")
    except UnicodeDecodeError:
        raise BadPointCloudError(path, "not an ASCII OFF file") from None
    lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines or not lines[0].upper().startswith("OFF"):
        raise BadPointCloudError(path, "does not start with OFF")
    first = lines[0][3:].strip()  # ModelNet40 has "OFF490 518 0" on one line
    rest = lines[1:] if not first else [first] + lines[1:]
    try:
        nv, nf = (int(v) for v in rest[0].split()[:2])
        verts = np.array([[float(v) for v in ln.split()[:3]] for ln in rest[1:1 + nv]], dtype=np.float64)
        tris: list[tuple[int, int, int]] = []
        for ln in rest[1 + nv:1 + nv + nf]:
            vals = [int(v) for v in ln.split()]
            k, idx = vals[0], vals[1:1 + vals[0]]
            if len(idx) != k or k < 3:
                raise ValueError(f"face line {ln!r}")
            tris += [(idx[0], idx[i], idx[i + 1]) for i in range(1, k - 1)]
    except (ValueError, IndexError) as e:
        raise BadPointCloudError(path, f"malformed OFF ({e})") from None
    if len(verts) != nv or verts.ndim != 2 or verts.shape[1] != 3:
        raise BadPointCloudError(path, f"truncated: {len(verts)} of {nv} vertices")
    faces = np.array(tris, dtype=np.int64).reshape(-1, 3)
    if len(rest) < 1 + nv + nf or not len(faces):
        raise BadPointCloudError(path, f"truncated or empty: {nf} faces announced, {len(faces)} triangles read")
    if faces.min() < 0 or faces.max() >= nv:
        raise BadPointCloudError(path, f"a face names vertex {int(faces.max() if faces.max() >= nv else faces.min())}, "
                                 f"outside 0..{nv - 1}")
    return verts, faces


def sample_surface(vertices: np.ndarray, triangles: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points drawn uniformly from the surface of a triangle mesh: a triangle with probability proportional to
    its area, then a uniform point in it (barycentric (1 - sqrt(r1), sqrt(r1)(1 - r2), sqrt(r1) r2))."""
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    areas = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    total = areas.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("the mesh has no surface (every triangle is degenerate)")
    pick = rng.choice(len(areas), size=n, p=areas / total)
    r1, r2 = np.sqrt(rng.random(n))[:, None], rng.random(n)[:, None]
    return (1 - r1) * a[pick] + r1 * (1 - r2) * b[pick] + r1 * r2 * c[pick]


def read_npy(path: str | Path) -> np.ndarray:
    """The first three columns of a float (M, >= 3) ``.npy`` array (never unpickled)."""
    path = Path(path)
    _read_bytes(path, check_only=True)
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise BadPointCloudError(path, f"not a readable .npy array ({e})") from None
    if arr.ndim != 2 or arr.shape[1] < 3 or not np.issubdtype(arr.dtype, np.number):
        raise BadPointCloudError(path, f"expected a numeric (M, 3+) array, got {arr.dtype} {arr.shape}")
    return _finite(arr[:, :3].astype(np.float64), path)


def read_points(path: str | Path, num_points: int = 1024) -> np.ndarray:
    """A point cloud file as float32 (M, 3), by extension; an OFF mesh is sampled to ``num_points`` points."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pcd":
        return read_pcd(path)
    if suffix == ".npy":
        return read_npy(path)
    if suffix == ".off":
        verts, faces = read_off(path)
        rng = np.random.default_rng(zlib.crc32(path.name.encode("utf-8")))
        try:
            return sample_surface(verts, faces, num_points, rng).astype(np.float32)
        except ValueError as e:
            raise BadPointCloudError(path, str(e)) from None
    raise BadPointCloudError(path, f"unknown point-cloud extension {suffix!r} (use {', '.join(POINT_EXTENSIONS)})")


def _read_bytes(path: Path, check_only: bool = False) -> bytes:
    if not path.is_file():
        raise BadPointCloudError(path, "file not found" if not path.exists() else "not a file")
    if check_only:
        return b""
    try:
        return path.read_bytes()
    except OSError as e:
        raise BadPointCloudError(path, f"cannot read ({e.strerror or e})") from None


def _finite(pts: np.ndarray, path: Path) -> np.ndarray:
    pts = pts[np.isfinite(pts).all(axis=1)]
    if not len(pts):
        raise BadPointCloudError(path, "no point with finite x, y, z")
    return pts.astype(np.float32)
