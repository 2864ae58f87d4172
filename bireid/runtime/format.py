"""The ``.bnn`` file format: one self-describing file holding an exported binary re-ID network.

Layout (all integers little-endian)::

    offset 0   8 bytes   magic b"BIREIDNN"
    offset 8   u32       format version (FORMAT_VERSION; a reader refuses newer versions)
    offset 12  u32       flags (0; reserved)
    offset 16  u64       length J of the JSON document
    offset 24  J bytes   UTF-8 JSON (see below)
    data_start = 24 + J rounded up to a multiple of 64
    data_start + offset  blobs, each 64-byte aligned, raw little-endian arrays

JSON document::

    {"format": "bireid.bnn",
     "model":  {"name", "input_size": [H, W], "in_channels": 3, "mean": [3 floats], "std": [3 floats],
                "feat_dim": D, ...free-form provenance},
     "nodes":  [node, ...]          # topologically ordered; tensor "input" is the (normalized) image batch
     "output": "tensor name",
     "blobs":  {"name": {"dtype": "float32" | "uint64", "shape": [...], "offset": int, "nbytes": int}}}

Node kinds (``op``) and their fields are documented in :mod:`bireid.runtime.model`. Binary conv weights
are uint64 blobs of shape (Cout, k, k, ceil(Cin/64)): the sign of weight (o, cin, kh, kw) is bit cin % 64 of
word [o, kh, kw, cin // 64], set for -1; unused high bits of the last word are 0. Real conv weights are
float32 (Cout, k, k, Cin); linear weights float32 (out, in); per-channel vectors float32 (C,).

The reader validates the header, the JSON and every blob's dtype/shape/size/offset against the file length
before touching the data, and raises :class:`FormatError` (never a crash or a huge allocation) for a
malformed, truncated or corrupted file. Writing is atomic (temporary file + rename).
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write
from .errors import FormatError

MAGIC = b"BIREIDNN"
FORMAT_VERSION = 1
ALIGN = 64
_HEADER = struct.Struct("<8sIIQ")
_MAX_JSON = 64 << 20
_DTYPES = {"float32": np.dtype("<f4"), "uint64": np.dtype("<u8")}


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def write_bnn(path: str | os.PathLike, doc: dict[str, Any], blobs: dict[str, np.ndarray]) -> None:
    """Write ``doc`` (the JSON document without its ``blobs`` table) and the arrays ``blobs`` to ``path``
    atomically: a temporary file in the same folder is written, synced and renamed over the destination."""
    path = Path(path)
    table: dict[str, dict[str, Any]] = {}
    chunks: list[tuple[int, bytes]] = []
    off = 0
    for name, arr in blobs.items():
        a = np.asarray(arr)
        if a.dtype == np.float32:
            dt = "float32"
        elif a.dtype == np.uint64:
            dt = "uint64"
        else:
            raise TypeError(f"blob {name!r}: dtype {a.dtype} not storable (float32 or uint64)")
        raw = np.ascontiguousarray(a, dtype=_DTYPES[dt]).tobytes()
        table[name] = {"dtype": dt, "shape": [int(s) for s in a.shape], "offset": off, "nbytes": len(raw)}
        chunks.append((off, raw))
        off = _align(off + len(raw))
    full = dict(doc)
    full["blobs"] = table
    js = json.dumps(full, separators=(",", ":"), allow_nan=False).encode("utf-8")
    data_start = _align(_HEADER.size + len(js))

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(_HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(js)))
            f.write(js)
            for o, raw in chunks:
                f.write(b"\0" * (data_start + o - f.tell()))
                f.write(raw)

    atomic_write(path, write)


def _int(v: Any, what: str, lo: int = 0, hi: int = 1 << 62) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise FormatError(f"{what} must be an integer in [{lo}, {hi}], got {v!r:.80}")
    return v


def read_bnn(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and validate a ``.bnn`` file; returns (JSON document, {blob name: array})."""
    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.bnn"))
        hint = f" (it holds {', '.join(inside[:3])})" if inside else " (export one with `bireid export`)"
        raise FormatError(f"{path} is a folder; give the .bnn model file{hint}")
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < _HEADER.size:
            raise FormatError(f"{path}: truncated ({size} bytes, the header alone is {_HEADER.size})")
        magic, version, _flags, jlen = _HEADER.unpack(f.read(_HEADER.size))
        if magic != MAGIC:
            raise FormatError(f"{path}: not a bireid .bnn model (bad magic {magic!r})")
        if version > FORMAT_VERSION:
            raise FormatError(f"{path}: format version {version} is newer than this bireid supports "
                              f"({FORMAT_VERSION}); upgrade bireid to load it")
        if version < 1:
            raise FormatError(f"{path}: invalid format version {version}")
        if jlen > min(size - _HEADER.size, _MAX_JSON):
            raise FormatError(f"{path}: truncated or corrupted (JSON length {jlen} exceeds the file)")
        data = f.read()  # bounded by the file size
    if len(data) != size - _HEADER.size:
        raise FormatError(f"{path}: file changed while reading")
    try:
        doc = json.loads(data[:jlen].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise FormatError(f"{path}: corrupted JSON header ({type(e).__name__}: {str(e)[:100]})") from None
    if not isinstance(doc, dict) or doc.get("format") != "bireid.bnn":
        raise FormatError(f"{path}: JSON header is not a bireid.bnn document")
    table = doc.get("blobs")
    if not isinstance(table, dict):
        raise FormatError(f"{path}: JSON header has no blob table")
    data_start = _align(_HEADER.size + jlen) - _HEADER.size  # relative to `data`
    avail = len(data) - data_start
    blobs: dict[str, np.ndarray] = {}
    for name, b in table.items():
        if not isinstance(b, dict):
            raise FormatError(f"{path}: blob {name!r}: entry is not an object")
        dt = _DTYPES.get(b.get("dtype"))  # type: ignore[arg-type]
        if dt is None:
            raise FormatError(f"{path}: blob {name!r}: unsupported dtype {b.get('dtype')!r:.40}")
        shape = b.get("shape")
        if not isinstance(shape, list) or len(shape) > 8:
            raise FormatError(f"{path}: blob {name!r}: shape must be a list of at most 8 dimensions")
        dims = [_int(s, f"{path}: blob {name!r} dimension", 0, 1 << 40) for s in shape]
        off = _int(b.get("offset"), f"{path}: blob {name!r} offset")
        nbytes = _int(b.get("nbytes"), f"{path}: blob {name!r} nbytes")
        if math.prod(dims) * dt.itemsize != nbytes:
            raise FormatError(f"{path}: blob {name!r}: {nbytes} bytes do not match shape {dims} of {dt.name}")
        if off % 8 or off + nbytes > avail:
            raise FormatError(f"{path}: truncated or corrupted: blob {name!r} ({nbytes} bytes at {off}) lies "
                              f"outside the {avail}-byte data section")
        start = data_start + off
        blobs[name] = np.frombuffer(data, dtype=dt, count=nbytes // dt.itemsize, offset=start).reshape(dims)
    return doc, blobs
