"""The runtime's fused ops: 2-D Winograd stride-2 real conv (the stem), the binary row-wavefront chain, the fused
1x1 downsample and the global average pool — exact against references (or against the unfused ops, bit for bit)
and identical on every ISA path and thread count."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_refs import ISAS, every_path, ref_binary_conv, restore_isa_and_threads  # noqa: F401 (autouse fixture)

from bireid.runtime import BNNModel, _engine, ops


def _ref_real_conv(x, wt, s, p):
    """float64 conv of NCHW x with (Cout, Cin, k, k) weights -> NHWC."""
    n, _, h, w = x.shape
    cout, _, k, _ = wt.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    ref = np.zeros((n, ho, wo, cout))
    for kh in range(k):
        for kw in range(k):
            patch = xp[:, :, kh:kh + s * (ho - 1) + 1:s, kw:kw + s * (wo - 1) + 1:s]
            ref += np.einsum("nchw,oc->nhwo", patch, wt[:, :, kh, kw].astype(np.float64))
    return ref


WINO_CASES = [  # n, cin, cout, k, pad, h, w  (stride 2: the Winograd path for 5 <= k <= 15, small k * cin)
    (2, 3, 64, 7, 3, 23, 13), (1, 3, 20, 7, 3, 9, 8), (3, 1, 33, 5, 2, 11, 17), (1, 2, 16, 9, 4, 12, 19),
    (2, 4, 48, 11, 5, 15, 22), (1, 3, 64, 7, 0, 16, 30), (1, 3, 70, 7, 1, 8, 7), (1, 5, 17, 5, 0, 6, 5),
]


@pytest.mark.parametrize("case", WINO_CASES)
def test_winograd_stride2_conv_is_accurate_and_identical_everywhere(case):
    n, cin, cout, k, p, h, w = case
    rng = np.random.default_rng(sum(case))
    x = rng.standard_normal((n, cin, h, w)).astype(np.float32)
    wt = rng.standard_normal((cout, cin, k, k)).astype(np.float32)
    fw = ops.real_conv_weights(wt.transpose(0, 2, 3, 1))
    ref = _ref_real_conv(x, wt, 2, p)
    res = rng.standard_normal(ref.shape).astype(np.float32)
    epi = dict(scale=rng.random(cout).astype(np.float32), bias=rng.standard_normal(cout).astype(np.float32),
               residual=res, slope=np.full(cout, 0.25, np.float32))
    outs = {}
    for isa in ISAS:
        _engine.set_isa(isa)
        for threads in (1, 2):
            _engine.set_num_threads(threads)
            for nchw in (True, False):
                xin = x if nchw else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
                outs.setdefault("plain", []).append(_engine.conv2d_float(xin, fw, 2, p, nchw=nchw))
                outs.setdefault("epi", []).append(_engine.conv2d_float(xin, fw, 2, p, nchw=nchw, **epi))
                if min(ref.shape[1:3]) >= 2:
                    pool = (3, 2, 1, False)
                    e2 = {key: v for key, v in epi.items() if key != "residual"}
                    got = _engine.conv2d_float(xin, fw, 2, p, nchw=nchw, pool=pool, **e2)
                    np.testing.assert_array_equal(
                        got, _engine.max_pool2d(_engine.conv2d_float(xin, fw, 2, p, nchw=nchw, **e2), *pool))
                    outs.setdefault("pool", []).append(got)
    np.testing.assert_allclose(outs["plain"][0], ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    v = ref * epi["scale"] + epi["bias"] + res
    np.testing.assert_allclose(outs["epi"][0], np.where(v >= 0, v, 0.25 * v), rtol=1e-4, atol=1e-4)
    for key, got in outs.items():
        for o in got[1:]:
            np.testing.assert_array_equal(o, got[0], err_msg=f"{key} differs between ISAs / threads / layouts")


def _chain_layer_args(rng, cin, cout, k, pv, residual, thresh, kind, stride=1, ds=False):
    wneg = rng.random((cout, k, k, cin)) < 0.5
    weights = ops.BConvWeights(ops.pack_weight_signs(wneg), cin)
    dsa = {}
    if ds:
        dsa = dict(ds_weights=ops.BConvWeights(ops.pack_weight_signs(rng.random((cout, 1, 1, cin)) < 0.5), cin),
                   ds_scale=rng.random(cout).astype(np.float32), ds_bias=rng.standard_normal(cout).astype(np.float32))
    epi = dict(scale=(rng.random(cout) * 0.3).astype(np.float32), bias=rng.standard_normal(cout).astype(np.float32))
    if kind >= 1:
        epi["slope"] = rng.random(cout).astype(np.float32)
    if kind == 2:
        epi.update(shift_in=rng.standard_normal(cout).astype(np.float32),
                   shift_out=rng.standard_normal(cout).astype(np.float32), clamp=(-1.5, 2.5))
    if kind == 3:
        epi["act_first"] = True
    t = (rng.standard_normal(cin) * 0.2).astype(np.float32) if thresh else None
    return dict(weights=weights, stride=stride, pad=k // 2, pad_value=pv, residual=residual, thresh=t, epi=epi,
                ds=dsa)


CHAIN_CASES = [  # channels per layer, (k, stride, fused downsample) per layer, pad_value, image size
    ((64, 64, 64, 64), ((3, 1, 0), (3, 1, 0), (3, 1, 0)), 1, (9, 7)),
    ((16, 16, 16), ((3, 1, 0), (3, 1, 0)), 0, (6, 11)),
    ((70, 70, 40, 40), ((3, 1, 0), (1, 1, 0), (5, 1, 0)), 0, (7, 9)),
    ((130, 130), ((3, 1, 0),), 1, (5, 4)),
    ((3, 3, 3), ((5, 1, 0), (3, 1, 0)), 1, (1, 6)),
    # ResNet-like: stride-2 convs with their 1x1 downsample fused, then stride-1 residual layers
    ((64, 64, 128, 128, 256, 256), ((3, 1, 0), (3, 2, 1), (3, 1, 0), (3, 2, 1), (3, 1, 0)), 1, (17, 9)),
    ((16, 40, 40, 24), ((3, 2, 1), (3, 1, 0), (1, 2, 0)), 0, (10, 13)),
]


@pytest.mark.parametrize("case", CHAIN_CASES)
def test_binary_chain_equals_layer_by_layer(case):
    chans, lspecs, pv, (h, w) = case
    rng = np.random.default_rng(len(chans) * 10 + lspecs[0][0])
    specs = []
    for i, (k, stride, ds) in enumerate(lspecs):
        cin, cout = chans[i], chans[i + 1]
        specs.append(_chain_layer_args(rng, cin, cout, k, pv, residual=cin == cout and stride == 1 and i % 3 != 2,
                                       thresh=i % 2 == 1, kind=i % 4, stride=stride, ds=bool(ds)))
    layers = [_engine.BChainLayer(s["weights"], s["stride"], s["pad"], s["pad_value"], s["residual"],
                                  thresh=s["thresh"], **s["epi"], **s["ds"]) for s in specs]
    for n in (1, 3):
        x = rng.standard_normal((n, h, w, chans[0])).astype(np.float32)
        ref = x
        for s in specs:
            ref = _engine.binary_conv2d_fused(ref, s["weights"], s["stride"], s["pad"], s["pad_value"],
                                              thresh=s["thresh"], residual=ref if s["residual"] else None,
                                              **s["epi"], **s["ds"])
        for isa in ISAS:
            _engine.set_isa(isa)
            for threads in (1, 2):
                _engine.set_num_threads(threads)
                np.testing.assert_array_equal(_engine.binary_chain(x, layers), ref, err_msg=f"{isa} x{threads} n={n}")
    prof = np.zeros(len(layers))
    np.testing.assert_array_equal(_engine.binary_chain(x, layers, profile=prof), ref)  # profiling changes nothing
    assert (prof >= 0).all() and prof.sum() > 0


STEM_CASES = [  # n, cin, stem cout, k, pad, image h, w, pool, then (cout, k, stride, fused downsample) per layer
    (3, 3, 64, 7, 3, 29, 15, (3, 2, 1, False), ((64, 3, 1, 0), (64, 3, 1, 0), (128, 3, 2, 1))),
    (2, 3, 16, 7, 3, 20, 9, (3, 2, 1, True), ((16, 3, 1, 0), (40, 3, 2, 1))),
    (1, 2, 24, 5, 2, 13, 18, (2, 2, 0, False), ((40, 3, 1, 0), (40, 1, 1, 0))),
]


@pytest.mark.parametrize("case", STEM_CASES)
def test_binary_chain_fed_by_its_stem_equals_stem_then_chain(case):
    """With a stem the chain makes the stem's pooled rows itself: the same bits as conv2d_float(pool=...) then the
    chain, on every ISA, thread count and input layout; the profile gets one more entry, the stem's."""
    n, cin, c0, k, p, h, w, pool, lspecs = case
    rng = np.random.default_rng(n * 100 + k)
    fw = ops.real_conv_weights(rng.standard_normal((c0, k, k, cin)).astype(np.float32))
    sepi = dict(scale=rng.random(c0).astype(np.float32), bias=rng.standard_normal(c0).astype(np.float32),
                slope=np.full(c0, 0.25, np.float32))
    specs, cprev = [], c0
    for i, (cout, kk, stride, ds) in enumerate(lspecs):
        specs.append(_chain_layer_args(rng, cprev, cout, kk, i % 2, residual=cprev == cout and stride == 1,
                                       thresh=i % 2 == 1, kind=i % 3, stride=stride, ds=bool(ds)))
        cprev = cout
    layers = [_engine.BChainLayer(s["weights"], s["stride"], s["pad"], s["pad_value"], s["residual"],
                                  thresh=s["thresh"], **s["epi"], **s["ds"]) for s in specs]
    x = rng.standard_normal((n, cin, h, w)).astype(np.float32)
    ref = _engine.binary_chain(_engine.conv2d_float(x, fw, 2, p, nchw=True, pool=pool, **sepi), layers)
    for nchw in (True, False):
        xin = x if nchw else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        stem = _engine.ChainStem(fw, p, pool, nchw, **sepi)
        for isa in ISAS:
            _engine.set_isa(isa)
            for threads in (1, 2):
                _engine.set_num_threads(threads)
                np.testing.assert_array_equal(_engine.binary_chain(xin, layers, stem=stem), ref,
                                              err_msg=f"{isa} x{threads} nchw={nchw}")
    prof = np.zeros(len(layers) + 1)
    np.testing.assert_array_equal(_engine.binary_chain(xin, layers, profile=prof, stem=stem), ref)
    assert (prof >= 0).all() and prof[-1] > 0 and prof[:-1].sum() > 0
    with pytest.raises(ValueError, match="then the stem"):
        _engine.binary_chain(xin, layers, profile=np.zeros(len(layers)), stem=stem)
    with pytest.raises(ValueError, match="stem's input channels"):
        _engine.binary_chain(np.zeros((1, cin + 1, h, w), np.float32), layers,
                             stem=_engine.ChainStem(fw, p, pool, True))
    wrong = ops.BConvWeights(np.zeros((8, 3, 3, (c0 + 64) // 64), np.uint64), c0 + 1)
    with pytest.raises(ValueError, match="expects"):  # the first layer does not take the stem's channels
        _engine.binary_chain(xin, [_engine.BChainLayer(wrong, 1, 1, 1, False)], stem=stem)
    with pytest.raises(ValueError, match="Winograd"):  # 3x3: no Winograd form
        _engine.ChainStem(ops.real_conv_weights(np.zeros((8, 3, 3, 3), np.float32)), 1, pool, True)
    with pytest.raises(ValueError, match="pool"):
        _engine.ChainStem(fw, p, (0, 2, 1, False), True)


def test_binary_chain_rejects_bad_layers():
    w64 = ops.BConvWeights(np.zeros((64, 3, 3, 1), np.uint64), 64)
    w32 = ops.BConvWeights(np.zeros((32, 3, 3, 1), np.uint64), 64)
    d1 = ops.BConvWeights(np.zeros((64, 1, 1, 1), np.uint64), 64)
    for bad in ((w64, 1, 0, 1, True), (w32, 1, 1, 1, True), (w64, 2, 1, 1, True)):
        with pytest.raises(ValueError, match="residual input needs"):
            _engine.BChainLayer(*bad)
    with pytest.raises(ValueError, match="pad_value"):
        _engine.BChainLayer(w64, 1, 1, 2, True)
    with pytest.raises(ValueError, match="scale"):
        _engine.BChainLayer(w64, 1, 1, 1, True, scale=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="not both"):
        _engine.BChainLayer(w64, 1, 1, 1, True, ds_weights=d1)
    with pytest.raises(ValueError, match="1x1"):
        _engine.BChainLayer(w64, 2, 1, 1, False, ds_weights=w64)
    layer = _engine.BChainLayer(w64, 1, 1, 1, True)
    with pytest.raises(ValueError, match="channels"):
        _engine.binary_chain(np.zeros((1, 4, 4, 32), np.float32), [layer])
    with pytest.raises(ValueError, match="no layers"):
        _engine.binary_chain(np.zeros((1, 4, 4, 64), np.float32), [])
    with pytest.raises(ValueError, match="profile"):
        _engine.binary_chain(np.zeros((1, 4, 4, 64), np.float32), [layer], profile=np.zeros(2))
    with pytest.raises(ValueError, match="shape must match"):  # unpadded 3x3 s2: 3x3 output, the 1x1 s2 gives 4x4
        _engine.binary_chain(np.zeros((1, 8, 8, 64), np.float32), [_engine.BChainLayer(w64, 2, 0, 1, False,
                                                                                       ds_weights=d1)])
    with pytest.raises(ValueError, match="larger than"):
        _engine.binary_chain(np.zeros((1, 2, 2, 64), np.float32), [_engine.BChainLayer(w64, 1, 0, 1, False)])


DS_CASES = [  # n, h, w, cin, cout, k, stride, pad, pad_value
    (2, 9, 7, 64, 128, 3, 2, 1, 1), (1, 8, 10, 70, 40, 3, 2, 1, 0), (3, 5, 6, 130, 33, 3, 1, 1, 1),
    (2, 7, 5, 16, 16, 1, 1, 0, 1), (1, 11, 9, 64, 64, 5, 2, 2, 0),
]


@pytest.mark.parametrize("case", DS_CASES)
def test_fused_downsample_equals_two_convs(case):
    n, h, w, cin, cout, k, s, p, pv = case
    rng = np.random.default_rng(sum(case))
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    t = (rng.standard_normal(cin) * 0.2).astype(np.float32)
    wneg = rng.random((cout, k, k, cin)) < 0.5
    dneg = rng.random((cout, 1, 1, cin)) < 0.5
    wt = ops.BConvWeights(ops.pack_weight_signs(wneg), cin)
    dw = ops.BConvWeights(ops.pack_weight_signs(dneg), cin)
    ds_scale, ds_bias = rng.random(cout).astype(np.float32), rng.standard_normal(cout).astype(np.float32)
    epi = dict(scale=rng.random(cout).astype(np.float32), bias=rng.standard_normal(cout).astype(np.float32),
               slope=rng.random(cout).astype(np.float32))
    # the downsample alone, as its own op, is exact against the integer reference
    ds = _engine.binary_conv2d_fused(x, dw, s, 0, 1, thresh=t, scale=ds_scale, bias=ds_bias)
    dot = ref_binary_conv(x, t, dneg, s, 0, 1).astype(np.float32)
    np.testing.assert_array_equal(ds, dot * ds_scale + ds_bias)
    ref = _engine.binary_conv2d_fused(x, wt, s, p, pv, thresh=t, residual=ds, **epi)
    for isa in ISAS:
        _engine.set_isa(isa)
        for threads in (1, 2):
            _engine.set_num_threads(threads)
            got = _engine.binary_conv2d_fused(x, wt, s, p, pv, thresh=t, ds_weights=dw, ds_scale=ds_scale,
                                              ds_bias=ds_bias, **epi)
            np.testing.assert_array_equal(got, ref, err_msg=f"{isa} x{threads}")


def test_fused_downsample_rejects_bad_use():
    x = np.zeros((1, 8, 8, 64), np.float32)
    wt = ops.BConvWeights(np.zeros((64, 3, 3, 1), np.uint64), 64)
    dw = ops.BConvWeights(np.zeros((64, 1, 1, 1), np.uint64), 64)
    d3 = ops.BConvWeights(np.zeros((64, 3, 3, 1), np.uint64), 64)
    d32 = ops.BConvWeights(np.zeros((32, 1, 1, 1), np.uint64), 64)
    with pytest.raises(ValueError, match="residual"):
        _engine.binary_conv2d_fused(x, wt, 2, 1, 1, residual=np.zeros((1, 4, 4, 64), np.float32), ds_weights=dw)
    for bad in (d3, d32):
        with pytest.raises(ValueError, match="1x1"):
            _engine.binary_conv2d_fused(x, wt, 2, 1, 1, ds_weights=bad)
    with pytest.raises(ValueError, match="shape"):  # 3x3 unpadded: 3x3 output, the 1x1 stride-2 gives 4x4
        _engine.binary_conv2d_fused(x, wt, 2, 0, 1, ds_weights=dw)


def test_global_avg_pool_is_the_correctly_rounded_mean():
    rng = np.random.default_rng(7)
    for shape in ((2, 16, 8, 512), (3, 1, 1, 5), (1, 7, 3, 70)):
        x = (rng.standard_normal(shape) * 10).astype(np.float32)
        ref = x.astype(np.float64).mean(axis=(1, 2)).astype(np.float32)
        outs = []
        for isa in ISAS:
            _engine.set_isa(isa)
            outs.append(_engine.global_avg_pool(x))
        for o in outs:
            np.testing.assert_array_equal(o, ref)  # float64 sum, one rounding
            np.testing.assert_array_equal(o, outs[0])
    with pytest.raises(ValueError, match="NHWC"):
        _engine.global_avg_pool(np.zeros((2, 0, 3, 4), np.float32))


class _Unfused(BNNModel):
    """The same model with the downsample and chain fusions off (every binary conv its own op)."""

    def _fuse_downsample(self) -> None:
        pass

    def _fuse_chains(self) -> None:
        pass


@pytest.mark.parametrize("width,pad_value", [(16, 0.0), (64, 1.0)])
def test_model_fusions_keep_the_bits_and_match_torch(tmp_path, width, pad_value):
    torch = pytest.importorskip("torch")
    from bireid.deploy.export import export_bnn
    from bireid.modeling.backbones.binary_resnet import binary_resnet18
    from bireid.modeling.reid_model import ReIDModel

    torch.manual_seed(1)
    model = ReIDModel(binary_resnet18(width=width, pad_value=pad_value), num_classes=3).eval()
    export_bnn(model, tmp_path / "m.bnn", input_size=(32, 16))
    rt = BNNModel.load(tmp_path / "m.bnn")
    # every binary conv of the ResNet runs in one wavefront op fed by the stem, the shortcut downsamples fused into
    # their blocks
    assert [op for op, *_ in rt._steps] == ["bchain", "gap", "pointwise"]
    assert rt._steps[0][3]["stem_step"][3]["pool"] == (3, 2, 1, False)
    members = rt._steps[0][3]["members"]
    assert len(members) == 16 and sum("ds" in m[3] for m in members) == 3
    plain = _Unfused.load(tmp_path / "m.bnn")
    assert "bchain" not in [op for op, *_ in plain._steps]
    x = np.random.default_rng(3).standard_normal((3, 3, 32, 16)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    outs, ones = [], []
    for _ in every_path():
        outs.append(rt.forward(x))
        outs.append(plain.forward(x))
        ones.append(rt.forward(x[:1]))  # with 2 threads: the stem, then each layer, threads inside each op
        ones.append(plain.forward(x[:1]))
    np.testing.assert_allclose(outs[0], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    for o in ones:
        np.testing.assert_array_equal(o, outs[0][:1])
    prof: dict[str, float] = {}
    rt.forward(x, profile=prof)  # the stem's share of the wavefront op is counted as real_conv
    assert prof["real_conv"] > 0 and prof["binary_conv"] > 0
