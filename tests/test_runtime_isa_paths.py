"""Every vectorised instruction set against the portable kernels, bit for bit (the portable code defines the float
operations and their order that every ISA must reproduce). Shapes are chosen to reach the kernels' edge cases: odd
channel counts (partial words, partial 8- and 16-channel groups), strides 1 and 2, zero and one padding, rows longer
than a kernel's pixel run, one tap longer than the byte counters' flush interval, batch 1 and 3, one and two threads
(a row's channel blocks split between work units). An ISA this CPU lacks is reported as skipped, with the reason."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_refs import (  # noqa: F401 (restore_isa_and_threads: autouse fixture)
    FAST_ISA_PARAMS,
    ISA_STATUS,
    ref_binary_conv,
    restore_isa_and_threads,
)

from bireid.runtime import BNNModel, _engine, ops


def _both(isa, fn, *args, threads=(1, 2), **kwargs):
    """fn(*args, **kwargs) on `isa` and on the portable path, at each thread count: [(isa output, portable), ...]."""
    pairs = []
    for t in threads:
        _engine.set_num_threads(t)
        _engine.set_isa(isa)
        got = fn(*args, **kwargs)
        _engine.set_isa("portable")
        pairs.append((got, fn(*args, **kwargs)))
    return pairs


def _epilogues(rng, cout, shape):
    res = rng.standard_normal(shape).astype(np.float32)
    scale, bias = rng.random(cout).astype(np.float32) * 0.1, rng.standard_normal(cout).astype(np.float32)
    slope = rng.random(cout).astype(np.float32)
    return {
        "none": {},
        "plain": dict(scale=scale, bias=bias, residual=res, slope=slope),
        "act_first": dict(scale=scale, bias=bias, residual=res, slope=slope, act_first=True),
        "full": dict(scale=scale, bias=bias, residual=res, slope=slope,
                     shift_in=rng.standard_normal(cout).astype(np.float32),
                     shift_out=rng.standard_normal(cout).astype(np.float32), clamp=(-1.0, 1.5)),
    }


BCONV_CASES = [  # n, h, w, cin, cout, k, stride, pad, pad_value
    (1, 6, 37, 64, 48, 3, 1, 1, 0),    # a row longer than the 32-pixel run; three channel blocks
    (3, 7, 5, 65, 17, 3, 1, 1, 0),     # a partial word and a partial channel block
    (1, 9, 8, 130, 40, 3, 2, 1, 0),    # stride 2
    (3, 5, 6, 3, 5, 3, 1, 1, 1),       # one padding, three input channels
    (1, 6, 7, 256, 32, 3, 1, 1, 0),    # 4 words per tap: the byte counters flush after 7 of the 9 taps
    (1, 4, 5, 2050, 16, 1, 1, 0, 1),   # 33 words in one tap: a flush inside the tap
    (3, 8, 9, 63, 16, 1, 2, 0, 1),     # strided 1x1 (packs only the pixels it reads)
    (1, 6, 5, 100, 33, 3, 2, 0, 0),    # no padding, stride 2
]


@pytest.mark.parametrize("isa", FAST_ISA_PARAMS)
def test_binary_conv_matches_portable(isa):
    rng = np.random.default_rng(41)
    for case in BCONV_CASES:
        n, h, w, cin, cout, k, s, p, pv = case
        x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
        t = (rng.standard_normal(cin) * 0.2).astype(np.float32)
        wneg = rng.random((cout, k, k, cin)) < 0.5
        wt = ops.BConvWeights(ops.pack_weight_signs(wneg), cin)
        ref = ref_binary_conv(x, t, wneg, s, p, pv)
        for name, epi in _epilogues(rng, cout, ref.shape).items():
            for got, want in _both(isa, _engine.binary_conv2d_fused, x, wt, s, p, pv, thresh=t, **epi):
                np.testing.assert_array_equal(got, want, err_msg=f"{isa} {case} {name}")
            if name == "none":  # and both equal the integer reference
                np.testing.assert_array_equal(got.astype(np.int64), ref, err_msg=f"{isa} {case}")
        if not (k == 1 and p == 0 and s > 1):  # the op on pre-packed input
            xp = _engine.pack_activations(x, t, p)
            epi = _epilogues(rng, cout, ref.shape)["plain"]
            for got, want in _both(isa, _engine.binary_conv2d, xp, wt, s, p, pv, **epi):
                np.testing.assert_array_equal(got, want, err_msg=f"{isa} {case} pre-packed")


@pytest.mark.parametrize("isa", FAST_ISA_PARAMS)
def test_binary_conv_largest_counts(isa):
    """Every input bit differs from its weight bit, so each popcount is as large as it can be (dot = -K): counters that
    are widened late (bytes, 16-bit totals) must not wrap. Reductions of 9, 63 and 1017 words per pixel, and one of
    1024 words, past what the AVX2 kernel's 16-bit totals hold."""
    for k, cin in ((3, 64), (3, 448), (3, 113 * 64), (1, 1024 * 64)):
        x = -np.ones((1, 3, 4, cin), np.float32)  # all bits -1
        wneg = np.zeros((16, k, k, cin), bool)    # all weights +1
        wt = ops.BConvWeights(ops.pack_weight_signs(wneg), cin)
        want = np.full((1, 3 - k + 1, 4 - k + 1, 16), -k * k * cin, np.float32)  # no padding: every tap counts
        for got, ref in _both(isa, _engine.binary_conv2d_fused, x, wt, 1, 0, 0, threads=(1,)):
            np.testing.assert_array_equal(ref, want, err_msg=f"portable k={k} cin={cin}")
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} k={k} cin={cin}")


@pytest.mark.parametrize("isa", FAST_ISA_PARAMS)
@pytest.mark.parametrize("stride", [1, 2])
def test_fused_downsample_matches_portable(isa, stride):
    rng = np.random.default_rng(42 + stride)
    for n, h, w, cin, cout in ((1, 9, 11, 64, 48), (3, 6, 7, 65, 17)):
        x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
        wt = ops.BConvWeights(ops.pack_weight_signs(rng.random((cout, 3, 3, cin)) < 0.5), cin)
        ds = ops.BConvWeights(ops.pack_weight_signs(rng.random((cout, 1, 1, cin)) < 0.5), cin)
        kw = dict(thresh=(rng.standard_normal(cin) * 0.2).astype(np.float32), scale=rng.random(cout).astype(np.float32),
                  bias=rng.standard_normal(cout).astype(np.float32), slope=rng.random(cout).astype(np.float32),
                  ds_weights=ds, ds_scale=rng.random(cout).astype(np.float32),
                  ds_bias=rng.standard_normal(cout).astype(np.float32))
        for got, want in _both(isa, _engine.binary_conv2d_fused, x, wt, stride, 1, 0, **kw):
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} n={n} cin={cin} cout={cout}")


STEM_CASES = [  # n, cin, cout, k, pad, h, w
    (1, 3, 64, 7, 3, 40, 21), (3, 3, 20, 7, 3, 13, 16), (1, 3, 70, 7, 3, 17, 9), (1, 1, 33, 5, 2, 11, 17),
]


@pytest.mark.parametrize("isa", FAST_ISA_PARAMS)
def test_stem_matches_portable(isa):
    """The Winograd stride-2 stem with its epilogue and fused max pool, alone and made inside the wavefront op."""
    rng = np.random.default_rng(43)
    for case in STEM_CASES:
        n, cin, cout, k, p, h, w = case
        x = rng.standard_normal((n, cin, h, w)).astype(np.float32)
        fw = ops.real_conv_weights(rng.standard_normal((cout, k, k, cin)).astype(np.float32) * 0.2)
        ho, wo = (h + 2 * p - k) // 2 + 1, (w + 2 * p - k) // 2 + 1
        for name, epi in _epilogues(rng, cout, (n, ho, wo, cout)).items():
            for nchw in (True, False):
                xin = x if nchw else np.ascontiguousarray(x.transpose(0, 2, 3, 1))
                for got, want in _both(isa, _engine.conv2d_float, xin, fw, 2, p, nchw=nchw, **epi):
                    np.testing.assert_array_equal(got, want, err_msg=f"{isa} {case} {name} nchw={nchw}")
                e2 = {key: v for key, v in epi.items() if key != "residual"}
                for got, want in _both(isa, _engine.conv2d_float, xin, fw, 2, p, nchw=nchw, pool=(3, 2, 1, False),
                                       **e2):
                    np.testing.assert_array_equal(got, want, err_msg=f"{isa} {case} {name} pooled nchw={nchw}")
        # inside the wavefront op: one binary layer reading the stem's pooled rows
        stem = _engine.ChainStem(fw, p, (3, 2, 1, False), True, scale=rng.random(cout).astype(np.float32),
                                 slope=rng.random(cout).astype(np.float32))
        bw = ops.BConvWeights(ops.pack_weight_signs(rng.random((cout, 3, 3, cout)) < 0.5), cout)
        layer = _engine.BChainLayer(bw, 1, 1, 0, True, scale=rng.random(cout).astype(np.float32) * 0.05)
        for got, want in _both(isa, _engine.binary_chain, x, [layer], stem=stem):
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} {case} chain stem")


@pytest.mark.parametrize("isa", FAST_ISA_PARAMS)
def test_real_convs_match_portable(isa):
    """1x1 stride-1 convs (one matrix product over all pixels) and im2col convs, partial channel groups included."""
    rng = np.random.default_rng(44)
    cases = ((3, 16, 8, 64, 128, 1, 1, 0), (1, 7, 9, 40, 70, 1, 1, 0), (1, 5, 13, 5, 33, 1, 1, 0),
             (3, 6, 5, 4, 33, 3, 1, 1), (1, 9, 7, 8, 16, 3, 2, 1))
    for n, h, w, cin, cout, k, s, p in cases:
        x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
        fw = ops.real_conv_weights(rng.standard_normal((cout, k, k, cin)).astype(np.float32))
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        for name, epi in _epilogues(rng, cout, (n, ho, wo, cout)).items():
            for got, want in _both(isa, _engine.conv2d_float, x, fw, s, p, **epi):
                np.testing.assert_array_equal(got, want, err_msg=f"{isa} {(n, h, w, cin, cout, k, s, p)} {name}")


@pytest.mark.parametrize("isa", FAST_ISA_PARAMS)
def test_packing_and_max_pool_match_portable(isa):
    """Packing: (x - t) < 0 with -0, NaN and infinities; max pool: PyTorch's NaN rule, the first of +0 / -0."""
    rng = np.random.default_rng(45)
    special = np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf], np.float32)
    for c in (1, 7, 8, 9, 19, 63, 64, 65, 130):
        x = rng.standard_normal((2, 5, 6, c)).astype(np.float32)
        x.reshape(-1)[rng.integers(0, x.size, 12)] = rng.choice(special, 12)
        t = (rng.standard_normal(c) * 0.3).astype(np.float32)
        for thresh in (t, None):
            for got, want in _both(isa, _engine.pack_activations, x, thresh, 1, threads=(1,)):
                np.testing.assert_array_equal(got, want, err_msg=f"{isa} pack c={c}")
        for k, s, p, ceil in ((3, 2, 1, False), (2, 2, 0, True), (3, 1, 1, False)):
            for got, want in _both(isa, _engine.max_pool2d, x, k, s, p, ceil):
                np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32),
                                              err_msg=f"{isa} pool c={c}")


@pytest.mark.parametrize("isa", FAST_ISA_PARAMS)
@pytest.mark.parametrize("downsample", ["binary", "real"])
def test_model_matches_portable(isa, downsample, tmp_path):
    torch = pytest.importorskip("torch")
    from bireid.deploy.export import export_bnn
    from bireid.modeling.backbones.binary_resnet import binary_resnet18
    from bireid.modeling.reid_model import ReIDModel

    torch.manual_seed(3)
    model = ReIDModel(binary_resnet18(width=16, downsample=downsample), num_classes=10).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics, so the epilogues are not identities
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    export_bnn(model, tmp_path / "m.bnn", input_size=(64, 32))
    rt = BNNModel.load(tmp_path / "m.bnn")
    x = np.random.default_rng(46).standard_normal((3, 3, 64, 32)).astype(np.float32)
    for batch in (x[:1], x):
        for got, want in _both(isa, rt.forward, batch):
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} {downsample} batch {len(batch)}")


def test_every_instruction_set_is_listed_with_its_status():
    """The engine lists each ISA it knows with why it cannot run here; the portable one always runs, the best one
    runs, and an unsupported one is refused with that reason."""
    assert {"avx512", "avx2", "portable"} <= set(ISA_STATUS)
    assert ISA_STATUS["portable"] == "" and ISA_STATUS[_engine.best_isa()] == ""
    for isa, why in ISA_STATUS.items():
        assert _engine.isa_supported(isa) == (why == "")
        if why:
            with pytest.raises(ValueError, match="not supported"):
                _engine.set_isa(isa)
    with pytest.raises(ValueError, match="unknown instruction set 'sse9'"):
        _engine.set_isa("sse9")
