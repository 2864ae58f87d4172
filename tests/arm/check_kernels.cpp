// Every vectorised kernel table this build runs (NEON on AArch64; AVX2 / AVX-512 where built for x86) against the
// portable one, bit for bit, through the engine's own ops: the C++ counterpart of tests/test_runtime_isa_paths.py for
// a machine without Python (make test-arm runs it under qemu-aarch64). Shapes reach the kernels' edge cases: odd
// channel counts, strides 1 and 2, zero and one padding, batch 1 and 3, rows longer than a pixel run, a tap longer
// than the byte counters' flush interval, the fused downsample, the Winograd stem (alone, pooled, and feeding the
// wavefront chain), real 1x1 / direct / im2col convs, packing and max pooling with NaN, infinities and -0.
// The binary convs are also checked against an integer reference written here.
#include <algorithm>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "testlib.h"

using namespace bireid;
using namespace armtest;

namespace {

Tally tally;

struct Epi {
    OptF32 scale, bias, residual, slope, shift_in, shift_out;
    bool act_first = false;
    Clamp clamp;
};

// The four epilogue kinds of the Python test: none, plain (BN + residual + PReLU), the residual after the
// activation, and everything (shifts and a clamp).
std::vector<std::pair<std::string, Epi>> epilogues(Rng& rng, int cout, const Shape& out) {
    Epi plain;
    plain.scale = rng.uniform({cout}, 0.f, 0.1f);
    plain.bias = rng.normal({cout});
    plain.residual = rng.normal(out);
    plain.slope = rng.uniform({cout});
    Epi act_first = plain;
    act_first.act_first = true;
    Epi full = plain;
    full.shift_in = rng.normal({cout});
    full.shift_out = rng.normal({cout});
    full.clamp = std::make_pair(-1.f, 1.5f);
    return {{"none", Epi{}}, {"plain", plain}, {"act_first", act_first}, {"full", full}};
}

// fn() on `isa` and on the portable path at each thread count: the outputs must be the same bits.
template <typename Fn>
void both(const std::string& isa, const std::string& what, Fn fn, std::vector<int> threads = {1, 2}) {
    for (int t : threads) {
        set_num_threads(t);
        set_isa(isa);
        const auto got = fn();
        set_isa("portable");
        const auto want = fn();
        tally.check(same_bits(got, want), isa + " vs portable: " + what + " threads=" + std::to_string(t));
    }
}

// Random +-1 weights (true = -1) and their packed form (Cout, k, k, words), channel c at bit c % 64 of word c / 64.
struct BinW {
    std::vector<char> neg;  // (cout, k, k, cin)
    U64 packed;
};
BinW binary_weights(Rng& rng, int cout, int k, int cin, bool all_neg = false) {
    const int wd = (cin + 63) / 64;
    BinW b{std::vector<char>(static_cast<size_t>(cout) * k * k * cin), U64({cout, k, k, wd})};
    uint64_t* p = b.packed.mutable_data();
    std::fill(p, p + b.packed.size(), 0);
    for (int o = 0; o < cout; ++o)
        for (int t = 0; t < k * k; ++t)
            for (int c = 0; c < cin; ++c) {
                const bool neg = all_neg || rng.coin();
                b.neg[(static_cast<size_t>(o) * k * k + t) * cin + c] = neg;
                if (neg) p[(static_cast<int64_t>(o) * k * k + t) * wd + c / 64] |= 1ULL << (c % 64);
            }
    return b;
}

// The integer +-1 conv: sign(x - t) (+1 at 0), padded with pad_value, times the +-1 weights, summed.
std::vector<int64_t> ref_binary_conv(const F32& x, const F32& t, const BinW& bw, int cout, int k, int s, int p, int pv) {
    const int n = x.shape(0), h = x.shape(1), w = x.shape(2), c = x.shape(3);
    const int ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1;
    std::vector<int64_t> out(static_cast<size_t>(n) * ho * wo * cout, 0);
    for (int i = 0; i < n; ++i)
        for (int oh = 0; oh < ho; ++oh)
            for (int ow = 0; ow < wo; ++ow)
                for (int o = 0; o < cout; ++o) {
                    int64_t sum = 0;
                    for (int kh = 0; kh < k; ++kh)
                        for (int kw = 0; kw < k; ++kw) {
                            const int ih = oh * s - p + kh, iw = ow * s - p + kw;
                            const bool in = ih >= 0 && ih < h && iw >= 0 && iw < w;
                            for (int ci = 0; ci < c; ++ci) {
                                const int a = in ? ((x.data()[((static_cast<int64_t>(i) * h + ih) * w + iw) * c + ci] -
                                                     t.data()[ci]) < 0.f ? -1 : 1)
                                                 : (pv ? 1 : 0);
                                const int wv = bw.neg[(static_cast<size_t>(o) * k * k + kh * k + kw) * c + ci] ? -1 : 1;
                                sum += a * wv;
                            }
                        }
                    out[((static_cast<size_t>(i) * ho + oh) * wo + ow) * cout + o] = sum;
                }
    return out;
}

void check_binary_convs(const std::string& isa) {
    Rng rng(41);
    // extreme: every input +1 and every weight -1, so every XOR bit is set and the counters reach their bounds.
    struct Case { int n, h, w, cin, cout, k, s, p, pv; bool extreme = false; };
    const Case cases[] = {
        {1, 6, 37, 64, 48, 3, 1, 1, 0},    // a row longer than the 32-pixel run; three channel blocks
        {3, 7, 5, 65, 17, 3, 1, 1, 0},     // a partial word and a partial channel block
        {1, 9, 8, 130, 40, 3, 2, 1, 0},    // stride 2
        {3, 5, 6, 3, 5, 3, 1, 1, 1},       // one padding, three input channels
        {1, 6, 7, 256, 32, 3, 1, 1, 0},    // 4 words per tap: the byte counters flush after 7 of the 9 taps
        {1, 4, 5, 2050, 16, 1, 1, 0, 1},   // 33 words in one tap: a flush inside the tap
        {3, 8, 9, 63, 16, 1, 2, 0, 1},     // strided 1x1 (packs only the pixels it reads)
        {1, 6, 5, 100, 33, 3, 2, 0, 0},    // no padding, stride 2
        {1, 3, 3, 9000, 16, 3, 1, 1, 0},   // 1269 words per pixel
        {1, 2, 2, 138880, 16, 1, 1, 0, 1, true},  // 70 x 31 words of all-ones counts: the 16-bit flush at its bound
        {1, 4, 5, 2050, 16, 1, 1, 0, 1, true},   // byte counters at their bound
        {1, 5, 4, 128, 16, 1, 1, 0, 1},    // the unrolled 1x1 kernels: 2 and 4 words
        {1, 5, 4, 256, 20, 1, 2, 0, 1},
        {1, 5, 6, 128, 64, 3, 1, 1, 1},    // the unrolled 3x3 kernel of 2 words
    };
    for (const Case& cs : cases) {
        const std::string name = "bconv n=" + std::to_string(cs.n) + " " + std::to_string(cs.h) + "x" +
                                 std::to_string(cs.w) + " cin=" + std::to_string(cs.cin) + " cout=" +
                                 std::to_string(cs.cout) + " k=" + std::to_string(cs.k) + " s=" + std::to_string(cs.s) +
                                 " p=" + std::to_string(cs.p) + " pv=" + std::to_string(cs.pv) +
                                 (cs.extreme ? " extreme" : "");
        const F32 x = cs.extreme ? rng.uniform({cs.n, cs.h, cs.w, cs.cin}, 0.5f, 1.f) : rng.normal({cs.n, cs.h, cs.w, cs.cin});
        const F32 t = cs.extreme ? rng.uniform({cs.cin}, -0.5f, 0.f) : rng.normal({cs.cin}, 0.2f);
        const BinW bw = binary_weights(rng, cs.cout, cs.k, cs.cin, cs.extreme);
        std::unique_ptr<BConvWeights> wt(make_weights(bw.packed, cs.cin));
        const int ho = (cs.h + 2 * cs.p - cs.k) / cs.s + 1, wo = (cs.w + 2 * cs.p - cs.k) / cs.s + 1;
        const Shape oshape = {cs.n, ho, wo, cs.cout};
        for (const auto& [ename, e] : epilogues(rng, cs.cout, oshape)) {
            auto run = [&]() {
                return binary_conv2d_fused(x, *wt, cs.s, cs.p, cs.pv, t, e.scale, e.bias, e.residual, e.slope,
                                           e.shift_in, e.shift_out, e.act_first, e.clamp, nullptr, std::nullopt,
                                           std::nullopt);
            };
            both(isa, name + " " + ename, run);
            if (ename == "none") {  // and the ISA's dot products equal the integer reference
                set_isa(isa);
                const F32 got = run();
                const std::vector<int64_t> ref = ref_binary_conv(x, t, bw, cs.cout, cs.k, cs.s, cs.p, cs.pv);
                bool ok = got.size() == static_cast<int64_t>(ref.size());
                for (size_t i = 0; ok && i < ref.size(); ++i) ok = got.data()[i] == static_cast<float>(ref[i]);
                tally.check(ok, isa + ": " + name + " equals the integer reference");
            }
        }
        if (!(cs.k == 1 && cs.p == 0 && cs.s > 1)) {  // the op on pre-packed input
            const Epi e = epilogues(rng, cs.cout, oshape)[1].second;
            const U64 xp = pack_activations(x, t, cs.p);
            both(isa, name + " pre-packed", [&]() {
                return binary_conv2d(xp, *wt, cs.s, cs.p, cs.pv, e.scale, e.bias, e.residual, e.slope, e.shift_in,
                                     e.shift_out, e.act_first, e.clamp);
            });
        }
    }
}

void check_fused_downsample(const std::string& isa) {
    for (int stride : {1, 2}) {
        Rng rng(42 + stride);
        struct Case { int n, h, w, cin, cout; };
        for (const Case cs : {Case{1, 9, 11, 64, 48}, Case{3, 6, 7, 65, 17}}) {
            const F32 x = rng.normal({cs.n, cs.h, cs.w, cs.cin});
            std::unique_ptr<BConvWeights> wt(make_weights(binary_weights(rng, cs.cout, 3, cs.cin).packed, cs.cin));
            std::unique_ptr<BConvWeights> ds(make_weights(binary_weights(rng, cs.cout, 1, cs.cin).packed, cs.cin));
            const F32 t = rng.normal({cs.cin}, 0.2f), scale = rng.uniform({cs.cout}), bias = rng.normal({cs.cout});
            const F32 slope = rng.uniform({cs.cout}), dscale = rng.uniform({cs.cout}), dbias = rng.normal({cs.cout});
            both(isa, "fused downsample stride=" + std::to_string(stride) + " cin=" + std::to_string(cs.cin) +
                          " n=" + std::to_string(cs.n), [&]() {
                return binary_conv2d_fused(x, *wt, stride, 1, 0, t, scale, bias, std::nullopt, slope, std::nullopt,
                                           std::nullopt, false, std::nullopt, ds.get(), dscale, dbias);
            });
        }
    }
}

FConvWeights* real_weights(Rng& rng, int cout, int k, int cin, float scale) {
    return make_fweights(rng.normal({static_cast<int64_t>(k) * k * cin, cout}, scale), cin, k);
}

F32 nhwc(const F32& x) {  // NCHW -> NHWC
    const int n = x.shape(0), c = x.shape(1), h = x.shape(2), w = x.shape(3);
    F32 y({n, h, w, c});
    for (int i = 0; i < n; ++i)
        for (int ch = 0; ch < c; ++ch)
            for (int r = 0; r < h * w; ++r)
                y.mutable_data()[(static_cast<int64_t>(i) * h * w + r) * c + ch] =
                    x.data()[(static_cast<int64_t>(i) * c + ch) * h * w + r];
    return y;
}

void check_stem(const std::string& isa) {
    Rng rng(43);
    struct Case { int n, cin, cout, k, p, h, w; };
    for (const Case cs : {Case{1, 3, 64, 7, 3, 40, 21}, Case{3, 3, 20, 7, 3, 13, 16}, Case{1, 3, 70, 7, 3, 17, 9},
                          Case{1, 1, 33, 5, 2, 11, 17}}) {
        const std::string name = "stem n=" + std::to_string(cs.n) + " cin=" + std::to_string(cs.cin) +
                                 " cout=" + std::to_string(cs.cout) + " k=" + std::to_string(cs.k);
        const F32 x = rng.normal({cs.n, cs.cin, cs.h, cs.w});
        const F32 xh = nhwc(x);
        std::unique_ptr<FConvWeights> fw(real_weights(rng, cs.cout, cs.k, cs.cin, 0.2f));
        tally.check(!fw->wino2.empty(), name + " has the Winograd form");
        const int ho = (cs.h + 2 * cs.p - cs.k) / 2 + 1, wo = (cs.w + 2 * cs.p - cs.k) / 2 + 1;
        for (const auto& [ename, e] : epilogues(rng, cs.cout, {cs.n, ho, wo, cs.cout}))
            for (bool nchw : {true, false}) {
                const F32& xin = nchw ? x : xh;
                const std::string what = name + " " + ename + (nchw ? " nchw" : " nhwc");
                both(isa, what, [&]() {
                    return conv2d_float(xin, *fw, 2, cs.p, e.scale, e.bias, e.residual, e.slope, e.shift_in,
                                        e.shift_out, e.act_first, e.clamp, nchw, std::nullopt);
                });
                both(isa, what + " pooled", [&]() {
                    return conv2d_float(xin, *fw, 2, cs.p, e.scale, e.bias, std::nullopt, e.slope, e.shift_in,
                                        e.shift_out, e.act_first, e.clamp, nchw, PoolSpec{3, 2, 1, false});
                });
            }
        // inside the wavefront op: one binary layer reading the stem's pooled rows
        std::unique_ptr<ChainStem> stem(make_chain_stem(pybind11::object::of(fw.get()), cs.p, PoolSpec{3, 2, 1, false},
                                                        true, rng.uniform({cs.cout}), std::nullopt,
                                                        rng.uniform({cs.cout}), std::nullopt, std::nullopt, false,
                                                        std::nullopt));
        std::unique_ptr<BConvWeights> bw(make_weights(binary_weights(rng, cs.cout, 3, cs.cout).packed, cs.cout));
        std::unique_ptr<BChainLayer> layer(make_chain_layer(
            pybind11::object::of(bw.get()), 1, 1, 0, true, std::nullopt, rng.uniform({cs.cout}, 0.f, 0.05f),
            std::nullopt, std::nullopt, std::nullopt, std::nullopt, false, std::nullopt, pybind11::object(),
            std::nullopt, std::nullopt));
        both(isa, name + " chain stem", [&]() { return binary_chain(x, {layer.get()}, std::nullopt, stem.get()); });
    }
}

void check_real_convs(const std::string& isa) {
    Rng rng(44);
    struct Case { int n, h, w, cin, cout, k, s, p; const char* path; };
    const Case cases[] = {
        {3, 16, 8, 64, 128, 1, 1, 0, "1x1 (one matrix product)"},
        {1, 7, 9, 40, 70, 1, 1, 0, "1x1, partial channel group"},
        {1, 5, 13, 5, 33, 1, 1, 0, "1x1, five channels"},
        {3, 6, 5, 4, 33, 3, 1, 1, "direct (small k * cin)"},
        {1, 9, 7, 8, 16, 3, 2, 1, "direct, stride 2"},
        {1, 6, 7, 30, 20, 3, 1, 1, "im2col (k * cin > 64)"},
        {2, 7, 6, 13, 37, 3, 2, 0, "im2col, stride 2, no padding"},
    };
    for (const Case& cs : cases) {
        const std::string name = std::string("real conv ") + cs.path + " cin=" + std::to_string(cs.cin) + " cout=" +
                                 std::to_string(cs.cout);
        const F32 x = rng.normal({cs.n, cs.h, cs.w, cs.cin});
        std::unique_ptr<FConvWeights> fw(real_weights(rng, cs.cout, cs.k, cs.cin, 1.f));
        const int ho = (cs.h + 2 * cs.p - cs.k) / cs.s + 1, wo = (cs.w + 2 * cs.p - cs.k) / cs.s + 1;
        for (const auto& [ename, e] : epilogues(rng, cs.cout, {cs.n, ho, wo, cs.cout})) {
            both(isa, name + " " + ename, [&]() {
                return conv2d_float(x, *fw, cs.s, cs.p, e.scale, e.bias, e.residual, e.slope, e.shift_in,
                                    e.shift_out, e.act_first, e.clamp, false, std::nullopt);
            });
            if (cs.k > 1)  // with a fused max pool (the direct path pools conv rows from a ring)
                both(isa, name + " " + ename + " pooled", [&]() {
                    return conv2d_float(x, *fw, cs.s, cs.p, e.scale, e.bias, std::nullopt, e.slope, e.shift_in,
                                        e.shift_out, e.act_first, e.clamp, false, PoolSpec{3, 2, 1, false});
                });
        }
    }
}

void check_packing_and_pool(const std::string& isa) {
    Rng rng(45);
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const float special[] = {0.f, -0.f, nan, -nan, inf, -inf};
    for (int c : {1, 7, 8, 9, 15, 16, 17, 19, 33, 63, 64, 65, 127, 130}) {
        F32 x = rng.normal({2, 5, 6, c});
        // one value in six special: windows meet NaN after NaN, -0 before +0, infinities
        for (int i = 0; i < x.size() / 6; ++i) x.mutable_data()[rng.index(x.size())] = special[rng.index(6)];
        const F32 t = rng.normal({c}, 0.3f);
        F32 teq({c});  // thresholds equal to some inputs: x - t == 0 gives +1
        for (int j = 0; j < c; ++j) teq.mutable_data()[j] = x.data()[j];
        for (const OptF32& thresh : {OptF32(t), OptF32(teq), OptF32()})
            both(isa, "pack c=" + std::to_string(c) + (thresh ? "" : " no threshold"),
                 [&]() { return pack_activations(x, thresh, 1); }, {1});
        struct P { int k, s, p; bool ceil; };
        for (const P pp : {P{3, 2, 1, false}, P{2, 2, 0, true}, P{3, 1, 1, false}})
            both(isa, "max pool c=" + std::to_string(c) + " k=" + std::to_string(pp.k),
                 [&]() { return pool2d(x, pp.k, pp.s, pp.p, pp.ceil, true, true); });
    }
}

// A chain of binary layers (residual input, fused downsample, none) with a profile: the same bits on both paths,
// and the ISA's timestamps give a usable profile.
void check_chain(const std::string& isa) {
    Rng rng(47);
    const int c = 70, n = 3;
    const F32 x = rng.normal({n, 9, 10, c});
    std::unique_ptr<BConvWeights> w0(make_weights(binary_weights(rng, c, 3, c).packed, c));
    std::unique_ptr<BConvWeights> w1(make_weights(binary_weights(rng, 96, 3, c).packed, c));
    std::unique_ptr<BConvWeights> d1(make_weights(binary_weights(rng, 96, 1, c).packed, c));
    std::unique_ptr<BConvWeights> w2(make_weights(binary_weights(rng, 40, 1, 96).packed, 96));
    std::unique_ptr<BChainLayer> l0(make_chain_layer(pybind11::object::of(w0.get()), 1, 1, 0, true,
                                                     rng.normal({c}, 0.1f), rng.uniform({c}, 0.f, 0.1f),
                                                     rng.normal({c}), rng.uniform({c}), std::nullopt, std::nullopt,
                                                     false, std::nullopt, pybind11::object(), std::nullopt,
                                                     std::nullopt));
    std::unique_ptr<BChainLayer> l1(make_chain_layer(pybind11::object::of(w1.get()), 2, 1, 1, false, std::nullopt,
                                                     rng.uniform({96}, 0.f, 0.1f), std::nullopt, rng.uniform({96}),
                                                     rng.normal({96}), rng.normal({96}), true,
                                                     std::make_pair(-2.f, 2.f), pybind11::object::of(d1.get()),
                                                     rng.uniform({96}), rng.normal({96})));
    std::unique_ptr<BChainLayer> l2(make_chain_layer(pybind11::object::of(w2.get()), 1, 0, 1, false, std::nullopt,
                                                     std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                                                     std::nullopt, false, std::nullopt, pybind11::object(),
                                                     std::nullopt, std::nullopt));
    const std::vector<const BChainLayer*> layers = {l0.get(), l1.get(), l2.get()};
    both(isa, "binary chain", [&]() { return binary_chain(x, layers, std::nullopt, nullptr); });
    set_isa(isa);
    pybind11::array_t<double, pybind11::array::c_style> prof({3});
    std::fill(prof.mutable_data(), prof.mutable_data() + 3, 0.0);
    const F32 y = binary_chain(x, layers, prof, nullptr);
    bool ok = true;
    for (int l = 0; l < 3; ++l) ok = ok && std::isfinite(prof.data()[l]) && prof.data()[l] >= 0;
    tally.check(ok && prof.data()[0] + prof.data()[1] + prof.data()[2] > 0,
                isa + ": the chain's profile (the table's timestamps) is finite, non-negative and non-zero");
}

}  // namespace

int main() {
    std::vector<std::string> fast;
    for (const auto& [name, why] : isa_status()) {
        std::printf("instruction set %-8s %s\n", name.c_str(), why.empty() ? "runs here" : why.c_str());
        if (why.empty() && name != "portable") fast.push_back(name);
    }
#if defined(__aarch64__)
    // AArch64 always has Advanced SIMD: the engine must pick NEON by itself.
    tally.check(best_isa() == "neon" && std::string(kernels().name) == "neon",
                "the engine picks neon on AArch64 (best: " + best_isa() + ", in use: " + kernels().name + ")");
#endif
    tally.check(!fast.empty(), "at least one vectorised instruction set runs here");
    for (const std::string& isa : fast) {
        std::printf("checking %s against portable...\n", isa.c_str());
        std::fflush(stdout);
        check_binary_convs(isa);
        check_fused_downsample(isa);
        check_stem(isa);
        check_real_convs(isa);
        check_packing_and_pool(isa);
        check_chain(isa);
    }
    return tally.finish("check_kernels");
}
