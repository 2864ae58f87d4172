"""Exactness of the compiled runtime kernels against NumPy/PyTorch references, on every ISA path."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from runtime_refs import ISA_PARAMS, ISAS, ref_binary_conv

from bireid.runtime import _engine, ops


@pytest.fixture(autouse=True)
def _restore_isa():
    before = _engine.get_isa()
    yield
    _engine.set_isa(before)


def ref_pack(x: np.ndarray, t: np.ndarray, pad: int) -> np.ndarray:
    n, h, w, c = x.shape
    neg = np.zeros((n, h + 2 * pad, w + 2 * pad, c), dtype=bool)
    neg[:, pad:pad + h, pad:pad + w] = (x - t) < 0
    return ops.pack_weight_signs(neg)


def _cases():
    rng = np.random.default_rng(0)
    cases = []
    for cin in (3, 63, 64, 65, 130):
        for k, pad in ((1, 0), (3, 1), (3, 0)):
            for stride in (1, 2):
                for pad_value in (0, 1):
                    n = int(rng.choice([1, 3]))
                    h, w = int(rng.integers(k, 8)), int(rng.integers(k, 8))
                    cout = int(rng.choice([1, 5, 16, 17, 40]))
                    cases.append((n, h, w, cin, cout, k, stride, pad, pad_value))
    return cases


@pytest.mark.parametrize("isa", ISA_PARAMS)
def test_pack_activations_matches_reference(isa):
    _engine.set_isa(isa)
    rng = np.random.default_rng(1)
    for c in (1, 3, 16, 63, 64, 65, 130, 200):
        x = rng.standard_normal((2, 3, 5, c)).astype(np.float32)
        t = rng.standard_normal(c).astype(np.float32) * 0.3
        x[0, 0, 0, :] = t  # x - t == 0 must give +1 (bit clear)
        for pad in (0, 1, 2):
            got = _engine.pack_activations(x, t, pad)
            np.testing.assert_array_equal(got, ref_pack(x, t, pad))


@pytest.mark.parametrize("isa", ISA_PARAMS)
def test_binary_conv_integer_exact(isa):
    _engine.set_isa(isa)
    rng = np.random.default_rng(2)
    for n, h, w, cin, cout, k, stride, pad, pad_value in _cases():
        x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
        t = (rng.standard_normal(cin) * 0.2).astype(np.float32)
        wneg = rng.random((cout, k, k, cin)) < 0.5
        wt = ops.BConvWeights(ops.pack_weight_signs(wneg), cin)
        got = ops.binary_conv2d(x, wt, stride, pad, pad_value, thresh=t)
        ref = ref_binary_conv(x, t, wneg, stride, pad, pad_value)
        assert got.shape == ref.shape
        np.testing.assert_array_equal(got.astype(np.int64), ref,
                                      err_msg=f"{isa} n={n} {h}x{w} cin={cin} cout={cout} k={k} s={stride} "
                                              f"p={pad} pv={pad_value}")


def test_all_isas_identical_with_epilogue():
    rng = np.random.default_rng(3)
    n, h, w, cin, cout = 3, 9, 7, 65, 33
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    wt = ops.BConvWeights(ops.pack_weight_signs(rng.random((cout, 3, 3, cin)) < 0.5), cin)
    epi = dict(scale=rng.random(cout).astype(np.float32), bias=rng.standard_normal(cout).astype(np.float32),
               residual=rng.standard_normal((n, h, w, cout)).astype(np.float32),
               slope=rng.random(cout).astype(np.float32), shift_in=rng.standard_normal(cout).astype(np.float32),
               shift_out=rng.standard_normal(cout).astype(np.float32))
    outs = []
    for isa in ISAS:
        _engine.set_isa(isa)
        outs.append(ops.binary_conv2d(x, wt, 1, 1, 0, **epi))
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


@pytest.mark.parametrize("act_first", [False, True])
def test_epilogue_matches_numpy(act_first):
    rng = np.random.default_rng(4)
    n, h, w, cin, cout = 2, 6, 5, 40, 24
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    wneg = rng.random((cout, 3, 3, cin)) < 0.5
    wt = ops.BConvWeights(ops.pack_weight_signs(wneg), cin)
    scale, bias = rng.random(cout).astype(np.float32), rng.standard_normal(cout).astype(np.float32)
    res = rng.standard_normal((n, h, w, cout)).astype(np.float32)
    slope = (rng.random(cout) * 0.5).astype(np.float32)
    sin, sout = rng.standard_normal(cout).astype(np.float32), rng.standard_normal(cout).astype(np.float32)
    got = ops.binary_conv2d(x, wt, 1, 1, 1, scale=scale, bias=bias, residual=res, slope=slope, shift_in=sin,
                            shift_out=sout, act_first=act_first, clamp=(-1.5, 2.0))
    v = ref_binary_conv(x, np.zeros(cin, np.float32), wneg, 1, 1, 1).astype(np.float32) * scale + bias
    if not act_first:
        v = v + res
    u = v + sin
    v = np.where(u >= 0, u, slope * u) + sout
    if act_first:
        v = v + res
    v = np.clip(v, -1.5, 2.0)
    np.testing.assert_allclose(got, v, rtol=1e-6, atol=1e-6)


def test_conv2d_float_matches_torch_and_isas_agree():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    for cin, cout, k, s, p, h, w in ((3, 8, 7, 2, 3, 17, 11), (5, 70, 1, 2, 0, 7, 9), (4, 33, 3, 1, 1, 5, 6),
                                     (64, 128, 1, 1, 0, 4, 9), (40, 80, 1, 1, 0, 3, 7)):  # 1x1: rows read in place
        x = rng.standard_normal((2, cin, h, w)).astype(np.float32)
        wt = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
        ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(wt), stride=s, padding=p).numpy()
        fw = ops.real_conv_weights(wt.transpose(0, 2, 3, 1))
        xn = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        res = rng.standard_normal(ref.transpose(0, 2, 3, 1).shape).astype(np.float32)
        scale = rng.random(cout).astype(np.float32)
        outs = []
        for isa in ISAS:
            _engine.set_isa(isa)
            got = ops.conv2d_float(xn, fw, s, p)
            np.testing.assert_allclose(got.transpose(0, 3, 1, 2), ref, rtol=1e-4, atol=1e-4)
            outs.append(ops.conv2d_float(xn, fw, s, p, scale=scale,
                                         bias=np.ones(cout, np.float32), residual=res,
                                         slope=np.full(cout, 0.1, np.float32)))
        for o in outs[1:]:
            np.testing.assert_array_equal(o, outs[0])


def test_pooling_matches_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 5, 9, 7)).astype(np.float32)
    xn = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    tx = torch.from_numpy(x)
    for k, s, p in ((3, 2, 1), (2, 2, 0), (3, 1, 1), (2, 1, 0)):
        for ceil in (False, True):
            ref = F.max_pool2d(tx, k, s, p, ceil_mode=ceil).numpy()
            got = _engine.max_pool2d(xn, k, s, p, ceil)
            np.testing.assert_array_equal(got.transpose(0, 3, 1, 2), ref)
            for cip in (False, True):
                ref = F.avg_pool2d(tx, k, s, p, ceil_mode=ceil, count_include_pad=cip).numpy()
                got = _engine.avg_pool2d(xn, k, s, p, ceil, cip)
                np.testing.assert_allclose(got.transpose(0, 3, 1, 2), ref, rtol=1e-6, atol=1e-6)


def test_bad_arguments_raise_value_error():
    wt = ops.BConvWeights(ops.pack_weight_signs(np.zeros((4, 3, 3, 70), bool)), 70)
    x = np.zeros((1, 5, 5, 10), np.float32)
    with pytest.raises(ValueError, match="words per pixel"):
        _engine.binary_conv2d(_engine.pack_activations(x, None, 1), wt, 1, 1, 0)
    with pytest.raises(ValueError, match="pad_value"):
        _engine.binary_conv2d(_engine.pack_activations(np.zeros((1, 5, 5, 70), np.float32), None, 1), wt, 1, 1, 2)
    with pytest.raises(ValueError, match="words per tap"):
        ops.BConvWeights(np.zeros((4, 3, 3, 1), np.uint64), 70)


def _run_isa(value: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, BIREID_RUNTIME_ISA=value)
    code = "import bireid.runtime._engine as e; print(e.get_isa())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_isa_env_var():
    r = _run_isa("portable")
    assert r.returncode == 0 and r.stdout.strip() == "portable"
    r = _run_isa("sse9")
    assert r.returncode != 0 and "unknown instruction set" in r.stderr
    unsupported = [i for i in ("avx512", "avx2") if not _engine.isa_supported(i)]
    if unsupported:
        r = _run_isa(unsupported[0])
        assert r.returncode != 0 and "not supported" in r.stderr


def test_runtime_does_not_import_torch():
    """Deployment runs with numpy only: import the real package, the runtime and the feature extractor with
    torch made unimportable (``bireid/__init__`` imports the model code lazily for exactly this)."""
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import bireid\n"
        "from bireid.runtime import BNNModel, FormatError, ops, format, model\n"
        "from bireid.deploy import FeatureExtractor\n"
        "assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules)\n"
        "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_residual_of_the_wrong_shape_is_refused_by_every_conv():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 5, 8)).astype(np.float32)
    bad = np.zeros((1, 5, 5, 3), np.float32)  # output has 4 channels
    bw = ops.BConvWeights(ops.pack_weight_signs(rng.random((4, 3, 3, 8)) < 0.5), 8)
    fw = ops.real_conv_weights(rng.standard_normal((4, 3, 3, 8)).astype(np.float32))
    packed = _engine.pack_activations(x, None, 1)
    calls = {"binary_conv2d_fused": lambda: ops.binary_conv2d(x, bw, 1, 1, 0, residual=bad),
             "conv2d_float": lambda: ops.conv2d_float(x, fw, 1, 1, residual=bad),
             "binary_conv2d": lambda: _engine.binary_conv2d(packed, bw, 1, 1, 0, residual=bad)}
    for name, call in calls.items():
        with pytest.raises(ValueError, match=f"{name}: residual must match the output shape"):
            call()


def test_thread_count_is_the_engines_own():
    """The engine's thread count is its own, per calling thread: PyTorch (which shares the OpenMP runtime and
    resets that runtime's thread count when it runs) and other threads leave it alone."""
    import threading

    torch = pytest.importorskip("torch")
    before = _engine.get_num_threads()
    try:
        _engine.set_num_threads(2)
        torch_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        (torch.randn(256, 256) @ torch.randn(256, 256)).sum()
        torch.set_num_threads(torch_threads)
        assert _engine.get_num_threads() == 2
        seen = []
        t = threading.Thread(target=lambda: (_engine.set_num_threads(3), seen.append(_engine.get_num_threads())))
        t.start()
        t.join()
        assert seen == [3] and _engine.get_num_threads() == 2
        with pytest.raises(ValueError, match="num_threads"):
            _engine.set_num_threads(0)
    finally:
        _engine.set_num_threads(before)
