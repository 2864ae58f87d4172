"""The .bnn reader: validation, version handling, atomic writes and fuzzing with corrupted files."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from bireid.runtime import FORMAT_VERSION, MAGIC, BNNModel, FormatError, read_bnn, write_bnn
from bireid.runtime.ops import pack_weight_signs


def _tiny_doc(rng: np.random.Generator):
    """A hand-built network touching every node kind: real conv, binary conv with residual, pools, linear."""
    cin, c = 3, 20
    blobs = {
        "c0.w": rng.standard_normal((c, 3, 3, cin)).astype(np.float32),
        "c0.s": rng.random(c).astype(np.float32),
        "c0.b": rng.standard_normal(c).astype(np.float32),
        "b1.w": pack_weight_signs(rng.random((c, 3, 3, c)) < 0.5),
        "b1.t": (rng.standard_normal(c) * 0.1).astype(np.float32),
        "b1.s": rng.random(c).astype(np.float32),
        "b1.slope": rng.random(c).astype(np.float32),
        "fc.w": rng.standard_normal((7, c)).astype(np.float32),
        "fc.b": rng.standard_normal(7).astype(np.float32),
    }
    epi = {"scale": None, "bias": None, "residual": None, "act": None, "act_first": False, "clamp": None}
    nodes = [
        {"op": "conv", "inputs": ["input"], "output": "c0", "binary": False, "cin": cin, "cout": c, "k": 3,
         "stride": 2, "pad": 1, "weight": "c0.w", **epi, "scale": "c0.s", "bias": "c0.b"},
        {"op": "maxpool", "inputs": ["c0"], "output": "p0", "k": 3, "stride": 2, "pad": 1, "ceil_mode": False,
         "count_include_pad": True},
        {"op": "conv", "inputs": ["p0"], "output": "b1", "binary": True, "cin": c, "cout": c, "k": 3, "stride": 1,
         "pad": 1, "pad_value": 0, "weight": "b1.w", "thresh": "b1.t", **epi, "scale": "b1.s", "residual": "p0",
         "act": {"slope": "b1.slope", "shift_in": None, "shift_out": None}},
        {"op": "avgpool", "inputs": ["b1"], "output": "a1", "k": 2, "stride": 2, "pad": 0, "ceil_mode": True,
         "count_include_pad": False},
        {"op": "gap", "inputs": ["a1"], "output": "g"},
        {"op": "linear", "inputs": ["g"], "output": "f", "out_features": 7, "weight": "fc.w", "bias": "fc.b"},
        {"op": "pointwise", "inputs": ["f"], "output": "feat", "channels": 7, **epi, "scale": "fc.b"},
    ]
    doc = {"format": "bireid.bnn", "model": {"name": "tiny", "input_size": [19, 13], "in_channels": 3,
                                             "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "feat_dim": 7},
           "nodes": nodes, "output": "feat"}
    return doc, blobs


@pytest.fixture()
def tiny(tmp_path):
    doc, blobs = _tiny_doc(np.random.default_rng(0))
    path = tmp_path / "tiny.bnn"
    write_bnn(path, doc, blobs)
    return path, doc, blobs


def test_roundtrip_and_header(tiny):
    path, doc, blobs = tiny
    raw = path.read_bytes()
    assert raw[:8] == MAGIC and struct.unpack_from("<I", raw, 8)[0] == FORMAT_VERSION
    doc2, blobs2 = read_bnn(path)
    assert doc2["nodes"] == doc["nodes"]
    for k, v in blobs.items():
        np.testing.assert_array_equal(blobs2[k], v)
        off = doc2["blobs"][k]["offset"]
        assert off % 64 == 0
    m = BNNModel.load(path)
    y = m.forward(np.random.default_rng(1).standard_normal((2, 3, 19, 13)).astype(np.float32))
    assert y.shape == (2, 7) and np.isfinite(y).all()


def test_newer_version_asks_for_upgrade(tiny):
    path = tiny[0]
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 8, FORMAT_VERSION + 1)
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="upgrade"):
        read_bnn(path)


def test_bad_magic_and_truncation(tiny, tmp_path):
    path = tiny[0]
    raw = path.read_bytes()
    bad = tmp_path / "bad.bnn"
    bad.write_bytes(b"NOTBNN!!" + raw[8:])
    with pytest.raises(FormatError, match="magic"):
        read_bnn(bad)
    bad.write_bytes(raw[:-10])
    with pytest.raises(FormatError, match="truncated"):
        read_bnn(bad)
    bad.write_bytes(raw[:5])
    with pytest.raises(FormatError, match="truncated"):
        read_bnn(bad)
    with pytest.raises(FileNotFoundError):
        read_bnn(tmp_path / "missing.bnn")


def test_hostile_header_no_huge_allocation(tiny, tmp_path):
    path = tiny[0]
    doc, _ = read_bnn(path)
    doc = dict(doc)
    table = doc.pop("blobs")
    # A blob claiming 2**40 elements must be refused from its size, not allocated.
    doc2 = dict(doc, nodes=doc["nodes"])
    write_bnn(tmp_path / "ok.bnn", doc2, {})
    raw = (tmp_path / "ok.bnn").read_bytes()
    import json

    jlen = struct.unpack_from("<Q", raw, 16)[0]
    d = json.loads(raw[24:24 + jlen])
    d["blobs"] = {k: dict(v) for k, v in table.items()}
    d["blobs"]["c0.w"].update(shape=[1 << 20, 1 << 20], nbytes=(1 << 42))
    js = json.dumps(d).encode()
    evil = tmp_path / "evil.bnn"
    evil.write_bytes(struct.pack("<8sIIQ", MAGIC, 1, 0, len(js)) + js)
    with pytest.raises(FormatError, match="outside"):
        read_bnn(evil)
    d["blobs"]["c0.w"].update(shape=[3], nbytes=12, offset=0)
    d["model"]["input_size"] = [10 ** 9, 10 ** 9]
    js = json.dumps(d).encode()
    evil.write_bytes(struct.pack("<8sIIQ", MAGIC, 1, 0, len(js)) + js + b"\0" * 4096)
    with pytest.raises(FormatError):
        BNNModel.load(evil)


def test_atomic_write_keeps_old_file(tiny, monkeypatch):
    path, doc, blobs = tiny
    before = path.read_bytes()

    class Boom(Exception):
        pass

    import bireid.runtime.format as fmt

    def boom(fd):
        raise Boom()

    monkeypatch.setattr(fmt.os, "fsync", boom)
    with pytest.raises(Boom):
        write_bnn(path, doc, blobs)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_fuzz_corruptions_only_raise_format_error(tiny, tmp_path):
    path = tiny[0]
    raw = path.read_bytes()
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((1, 3, 19, 13)).astype(np.float32)
    jlen = struct.unpack_from("<Q", raw, 16)[0]
    target = tmp_path / "fuzz.bnn"
    loaded = 0
    for i in range(300):
        data = bytearray(raw)
        mode = i % 4
        if mode == 0:  # truncation
            data = data[: int(rng.integers(0, len(raw)))]
        elif mode == 1:  # random byte flips anywhere
            for _ in range(int(rng.integers(1, 8))):
                data[int(rng.integers(0, len(data)))] ^= int(rng.integers(1, 256))
        elif mode == 2:  # flips inside the header + JSON: the structurally interesting part
            for _ in range(int(rng.integers(1, 4))):
                data[int(rng.integers(0, 24 + jlen))] = int(rng.integers(32, 127))
        else:  # digit changes in the JSON: plausible but inconsistent numbers
            digits = [j for j in range(24, 24 + jlen) if 48 <= data[j] <= 57]
            for _ in range(int(rng.integers(1, 4))):
                data[digits[int(rng.integers(0, len(digits)))]] = int(rng.integers(48, 58))
        target.write_bytes(bytes(data))
        try:
            m = BNNModel.load(target)
        except FormatError:
            continue
        loaded += 1
        h, w = m.input_size
        if h * w <= 4096:
            y = m.forward(np.resize(x, (1, m.in_channels, h, w)))  # a loadable model must also run
            assert y.shape == (1, m.feat_dim)
    assert loaded > 0  # some flips hit weights only; the model must still load
