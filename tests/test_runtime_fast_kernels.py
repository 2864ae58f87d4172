"""The runtime's fast paths (fused pack+binary conv, vector epilogue, direct small-Cin conv, vector max pool):
exact against NumPy references and bit-identical on every ISA path."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_refs import (  # noqa: F401 (restore_isa_and_threads: autouse fixture)
    ISA_PARAMS,
    ISAS,
    every_path,
    ref_binary_conv,
    restore_isa_and_threads,
)

from bireid.runtime import _engine, ops


def ref_epilogue(v, scale, bias, res, slope, act_first, shift_in=None, shift_out=None, clamp=None):
    v = v * scale + bias
    if res is not None and not act_first:
        v = v + res
    if slope is not None:
        u = v + (shift_in if shift_in is not None else 0)
        v = np.where(u >= 0, u, slope * u) + (shift_out if shift_out is not None else 0)
    if res is not None and act_first:
        v = v + res
    return np.clip(v, *clamp) if clamp is not None else v


CASES = [  # n, h, w, cin, cout, k, stride, pad, pad_value
    (2, 9, 13, 64, 32, 3, 1, 1, 1), (1, 7, 6, 65, 17, 3, 1, 1, 0), (3, 8, 9, 130, 40, 3, 2, 1, 0),
    (2, 9, 7, 64, 48, 1, 2, 0, 1), (2, 6, 5, 100, 16, 1, 1, 0, 1), (1, 5, 11, 3, 5, 3, 1, 0, 1),
    (4, 6, 10, 128, 33, 3, 2, 1, 1), (2, 17, 9, 70, 16, 1, 3, 0, 0),
]


@pytest.mark.parametrize("isa", ISA_PARAMS)
@pytest.mark.parametrize("threads", [1, 2])
def test_fused_binary_conv_is_exact(isa, threads):
    """One-call pack + conv equals the integer reference and the two-step path, serial or threaded."""
    _engine.set_isa(isa)
    _engine.set_num_threads(threads)
    rng = np.random.default_rng(10)
    for n, h, w, cin, cout, k, s, p, pv in CASES:
        x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
        t = (rng.standard_normal(cin) * 0.2).astype(np.float32)
        x[0, 0, 0] = t  # x - t == 0 is +1
        wneg = rng.random((cout, k, k, cin)) < 0.5
        wt = ops.BConvWeights(ops.pack_weight_signs(wneg), cin)
        got = _engine.binary_conv2d_fused(x, wt, s, p, pv, thresh=t)
        ref = ref_binary_conv(x, t, wneg, s, p, pv)
        np.testing.assert_array_equal(got.astype(np.int64), ref, err_msg=f"{isa} {(n, h, w, cin, cout, k, s, p, pv)}")
        x[0, 0, 1] = -0.0  # sign(-0) = +1 with the default zero threshold too
        np.testing.assert_array_equal(_engine.binary_conv2d_fused(x, wt, s, p, pv).astype(np.int64),
                                      ref_binary_conv(x, np.zeros(cin, np.float32), wneg, s, p, pv))
        epi = dict(scale=rng.random(cout).astype(np.float32), bias=rng.standard_normal(cout).astype(np.float32),
                   residual=rng.standard_normal(ref.shape).astype(np.float32),
                   slope=rng.random(cout).astype(np.float32))
        two = _engine.binary_conv2d(_engine.pack_activations(x, t, p) if not (k == 1 and p == 0 and s > 1) else
                                    _engine.pack_activations(np.ascontiguousarray(x[:, ::s, ::s]), t, 0), wt,
                                    1 if (k == 1 and p == 0) else s, p, pv, **epi)
        np.testing.assert_array_equal(_engine.binary_conv2d_fused(x, wt, s, p, pv, thresh=t, **epi), two)


EPILOGUES = [
    dict(scale=True, bias=True, residual=True, slope=True),                      # BN + residual + PReLU (plain)
    dict(scale=True, bias=True),                                                 # downsample: BN only (plain)
    dict(scale=True, bias=True, residual=True, slope=True, act_first=True),      # residual after the activation
    dict(scale=True, bias=True, residual=True, slope=True, shift_in=True, shift_out=True),  # RPReLU
    dict(scale=True, residual=True, slope=True, clamp=(-1.5, 2.0)),             # with a clamp
]


@pytest.mark.parametrize("cfg", range(len(EPILOGUES)))
def test_vector_epilogue_matches_numpy_and_isas_agree(cfg):
    rng = np.random.default_rng(20 + cfg)
    n, h, w, cin = 2, 7, 11, 64
    outs = []
    for cout in (16, 32, 40):  # full blocks and a partial one (scalar fallback)
        wneg = rng.random((cout, 3, 3, cin)) < 0.5
        wt = ops.BConvWeights(ops.pack_weight_signs(wneg), cin)
        x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
        spec = EPILOGUES[cfg]
        epi = {}
        for key in ("scale", "bias", "slope", "shift_in", "shift_out"):
            if spec.get(key):
                epi[key] = (rng.random(cout) * 0.5 if key in ("scale", "slope") else rng.standard_normal(cout)
                            ).astype(np.float32)
        if spec.get("residual"):
            epi["residual"] = rng.standard_normal((n, h, w, cout)).astype(np.float32)
        epi["act_first"] = bool(spec.get("act_first", False))
        if "clamp" in spec:
            epi["clamp"] = spec["clamp"]
        per_isa = []
        for isa in ISAS:
            _engine.set_isa(isa)
            per_isa.append(_engine.binary_conv2d_fused(x, wt, 1, 1, 1, **epi))
        for o in per_isa[1:]:
            np.testing.assert_array_equal(o, per_isa[0])
        dot = ref_binary_conv(x, np.zeros(cin, np.float32), wneg, 1, 1, 1).astype(np.float32)
        ref = ref_epilogue(dot, epi.get("scale", 1), epi.get("bias", 0), epi.get("residual"), epi.get("slope"),
                           epi["act_first"], epi.get("shift_in"), epi.get("shift_out"), epi.get("clamp"))
        np.testing.assert_allclose(per_isa[0], ref, rtol=1e-6, atol=1e-5)
        outs.append(per_isa[0])
    assert all(np.isfinite(o).all() for o in outs)


@pytest.mark.parametrize("nchw", [False, True])
def test_direct_small_cin_conv_matches_reference_and_isas_agree(nchw):
    """Small k*Cin real convs (the stem) take the direct path on AVX-512: same bits as the im2col paths."""
    rng = np.random.default_rng(30)
    for cin, cout, k, s, p, h, w in ((3, 64, 7, 2, 3, 23, 13), (3, 20, 7, 2, 3, 9, 8), (2, 33, 5, 1, 2, 6, 7),
                                     (1, 16, 3, 1, 0, 5, 9), (3, 64, 3, 1, 1, 4, 4)):
        x = rng.standard_normal((2, cin, h, w)).astype(np.float32)
        wt = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
        fw = ops.real_conv_weights(wt.transpose(0, 2, 3, 1))
        xin = x if nchw else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        # float64 reference conv
        xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        ref = np.zeros((2, ho, wo, cout))
        for kh in range(k):
            for kw in range(k):
                patch = xp[:, :, kh:kh + s * (ho - 1) + 1:s, kw:kw + s * (wo - 1) + 1:s]  # (N, C, Ho, Wo)
                ref += np.einsum("nchw,oc->nhwo", patch, wt[:, :, kh, kw].astype(np.float64))
        res = rng.standard_normal((2, ho, wo, cout)).astype(np.float32)
        epi = dict(scale=rng.random(cout).astype(np.float32), bias=rng.standard_normal(cout).astype(np.float32),
                   residual=res, slope=np.full(cout, 0.25, np.float32))
        plain, fused = [], []
        for isa in ISAS:
            _engine.set_isa(isa)
            plain.append(_engine.conv2d_float(xin, fw, s, p, nchw=nchw))
            fused.append(_engine.conv2d_float(xin, fw, s, p, nchw=nchw, **epi))
        np.testing.assert_allclose(plain[0], ref, rtol=1e-4, atol=1e-4)
        for o in plain[1:]:
            np.testing.assert_array_equal(o, plain[0])
        for o in fused[1:]:
            np.testing.assert_array_equal(o, fused[0])
        v = ref * epi["scale"] + epi["bias"] + res
        np.testing.assert_allclose(fused[0], np.where(v >= 0, v, 0.25 * v), rtol=1e-4, atol=1e-4)


def test_conv2d_float_nchw_shape_check():
    fw = ops.real_conv_weights(np.zeros((4, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="NCHW"):
        _engine.conv2d_float(np.zeros((1, 5, 5, 3), np.float32), fw, 1, 1, nchw=True)


def test_max_pool_exact_with_nan_and_inf_on_every_isa():
    rng = np.random.default_rng(40)
    x = rng.standard_normal((2, 9, 7, 40)).astype(np.float32)
    x[0, 2, 3, 5] = np.nan
    x[1, 4, 4, 39] = np.inf
    x[1, 0, 0, :] = -np.inf
    for k, s, p, ceil in ((3, 2, 1, False), (2, 2, 0, True), (3, 1, 1, False), (3, 2, 1, True)):
        outs = []
        for isa in ISAS:
            _engine.set_isa(isa)
            outs.append(_engine.max_pool2d(x, k, s, p, ceil))
        n, h, w, c = x.shape
        ho, wo = outs[0].shape[1:3]
        ref = np.full((n, ho, wo, c), -np.inf, np.float32)
        for oh in range(ho):
            for ow in range(wo):
                h0, w0 = oh * s - p, ow * s - p
                win = x[:, max(h0, 0):min(h0 + k, h), max(w0, 0):min(w0 + k, w)].reshape(n, -1, c)
                ref[:, oh, ow] = np.where(np.isnan(win).any(axis=1), np.nan, win.max(axis=1))
        for o in outs:
            np.testing.assert_array_equal(o, ref)


def test_max_pool_picks_the_same_bits_on_every_isa():
    """Ties between +0 and -0 keep the first in visiting order, of two NaNs the last one wins: every ISA picks the
    same element, payload and sign bit included (what assert_array_equal cannot see)."""
    x = np.zeros((1, 5, 5, 20), np.float32)
    x[..., ::2] = -0.0
    x[0, 0, 1, 0] = 0.0  # window (0, 0) of channel 0: -0 first, then +0
    x[0, 1, 0, 1] = -0.0  # of channel 1: +0 first, then -0
    bits = x.view(np.uint32)
    bits[0, 1, 1, 3] = 0x7FC00001  # two quiet NaNs with different payloads in one window
    bits[0, 2, 2, 3] = 0x7FC00002
    bits[0, 3, 3, 7] = 0x7FC00003  # a NaN followed by larger numbers
    x[0, 3, 4, 7] = 5.0
    x[0, 4, 4, 7] = 7.0
    outs = []
    for isa in ISAS:
        _engine.set_isa(isa)
        outs.append(_engine.max_pool2d(x, 3, 2, 1, False).view(np.uint32))
    assert outs[0][0, 1, 1, 3] == 0x7FC00002 and outs[0][0, 2, 2, 7] == 0x7FC00003
    assert outs[0][0, 0, 0, 0] == 0x80000000 and outs[0][0, 0, 0, 1] == 0  # the first zero of the window
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


@pytest.mark.parametrize("threads", [1, 2])
def test_conv_with_fused_max_pool_equals_conv_then_pool(threads):
    """pool=(k, s, p, ceil) on a real conv gives exactly conv followed by max_pool2d, on every ISA."""
    _engine.set_num_threads(threads)
    rng = np.random.default_rng(50)
    for cin, cout, k, s, p, h, w, pool in ((3, 64, 7, 2, 3, 29, 15, (3, 2, 1, False)),
                                           (3, 24, 7, 2, 3, 20, 9, (3, 2, 1, True)),
                                           (2, 16, 3, 1, 1, 9, 8, (2, 2, 0, False)),
                                           (1, 40, 5, 1, 2, 7, 6, (3, 1, 1, False))):
        for n in (1, 3):
            x = rng.standard_normal((n, cin, h, w)).astype(np.float32)
            fw = ops.real_conv_weights(rng.standard_normal((cout, k, k, cin)).astype(np.float32))
            epi = dict(scale=rng.random(cout).astype(np.float32), bias=rng.standard_normal(cout).astype(np.float32),
                       slope=np.full(cout, 0.25, np.float32))
            outs = []
            for isa in ISAS:
                _engine.set_isa(isa)
                conv = _engine.conv2d_float(x, fw, s, p, nchw=True, **epi)
                ref = _engine.max_pool2d(conv, *pool)
                got = _engine.conv2d_float(x, fw, s, p, nchw=True, pool=pool, **epi)
                np.testing.assert_array_equal(got, ref, err_msg=f"{isa} n={n} {(cin, cout, k, s, p, h, w, pool)}")
                outs.append(got)
            for o in outs[1:]:
                np.testing.assert_array_equal(o, outs[0])
    with pytest.raises(ValueError, match="residual"):
        _engine.conv2d_float(x, fw, s, p, nchw=True, pool=pool,
                             residual=np.zeros(_engine.conv2d_float(x, fw, s, p, nchw=True).shape, np.float32))


def test_model_fuses_stem_pool_and_is_bit_identical_across_isas_and_threads(tmp_path):
    """End to end: the stem conv + max pool run as one op, and every ISA / thread count gives the same bits."""
    torch = pytest.importorskip("torch")
    from bireid.deploy.export import export_bnn
    from bireid.modeling.backbones.binary_resnet import binary_resnet18
    from bireid.modeling.reid_model import ReIDModel
    from bireid.runtime import BNNModel

    torch.manual_seed(0)
    model = ReIDModel(binary_resnet18(width=16, pad_value=1.0), num_classes=3).eval()
    export_bnn(model, tmp_path / "m.bnn", input_size=(32, 16))
    rt = BNNModel.load(tmp_path / "m.bnn")
    assert not any(op == "maxpool" for op, *_ in rt._steps)  # fused into the stem conv (itself inside the chain)
    assert rt._steps[0][0] == "bchain" and rt._steps[0][3]["stem_step"][3].get("pool")
    x = np.random.default_rng(60).standard_normal((3, 3, 32, 16)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    outs = []
    for _ in every_path():
        outs.append(rt.forward(x))
        outs.append(rt.forward(x[:1]))
    np.testing.assert_allclose(outs[0], ref, rtol=1e-4, atol=1e-4)
    for i, o in enumerate(outs):
        np.testing.assert_array_equal(o, outs[0] if i % 2 == 0 else outs[0][:1])
