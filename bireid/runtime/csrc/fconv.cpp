// Real-valued convs: weights (and their Winograd form), the conv op with its paths (Winograd stem, 1x1 matrix
// product, direct small-Cin, im2col), im2col and the standalone epilogue.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "engine.h"
#include "winorows.h"

namespace bireid {

// Largest k * cin that takes the direct / Winograd small-Cin paths (the stem has 7 * 3).
constexpr int kSmallKC = 64;

// The F(3,4) products U of one chunk's taps g[0..3] (zero past the chunk), in double (see winograd.h).
static void wino_chunk_products(const double* g, double* u) {
    u[0] = g[0] / 4;
    u[1] = (g[0] + g[1] + g[2] + g[3]) / 6;
    u[2] = (g[0] - g[1] + g[2] - g[3]) / 6;
    u[3] = (g[0] + 2 * g[1] + 4 * g[2] + 8 * g[3]) / 24;
    u[4] = (g[0] - 2 * g[1] + 4 * g[2] - 8 * g[3]) / 24;
    u[5] = g[3];
}

static void make_wino_weights(FConvWeights& fw) {
    const int k = fw.k, c = fw.cin, cp = fw.cout_pad;
    if (k < 5 || k > 15 || k * c > kSmallKC) return;  // k < 5 gains little; the plan holds k <= 15
    fw.plan = make_wino_plan(k, c);
    const WinoPlan& pl = fw.plan;
    // w is (kh, kw, ci) rows x cout_pad columns; zero columns past cout stay zero.
    auto g = [&](int kh, int kw, int ci, int o) -> double {
        return fw.w[((static_cast<int64_t>(kh) * k + kw) * c + ci) * cp + o];
    };
    // The taps of chunk ch along one axis, from tap(kernel index): zero past the phase's taps.
    auto chunk_taps = [&](int ch, auto tap, double* t4) {
        for (int t = 0; t < kWinoR; ++t) {
            const int kk = 2 * (pl.cm[ch] + t) + pl.cph[ch];
            t4[t] = kk < k ? tap(kk) : 0.0;
        }
    };
    // 2-D: the column-transformed taps u1[kh][ci][cterm] (double), then the same transform along kh.
    const int nt = pl.nterms;
    const int64_t blk2 = static_cast<int64_t>(nt) * c * nt * 16;
    fw.wino2.assign(static_cast<size_t>(cp / 16 * blk2), 0.f);
    std::vector<double> u1(static_cast<size_t>(k) * c * nt);
    double t4[kWinoR], p6[kWinoN];
    for (int o = 0; o < fw.cout; ++o) {
        for (int kh = 0; kh < k; ++kh)
            for (int ci = 0; ci < c; ++ci) {
                double* u = u1.data() + (static_cast<int64_t>(kh) * c + ci) * nt;
                for (int ch = 0; ch < pl.nchunks; u += pl.cn[ch], ++ch) {
                    chunk_taps(ch, [&](int kw) { return g(kh, kw, ci, o); }, t4);
                    wino_chunk_products(t4, p6);
                    for (int j = 0; j < pl.cn[ch]; ++j) u[j] = p6[j];
                }
            }
        float* u2 = fw.wino2.data() + (o / 16) * blk2 + o % 16;  // [rterm][ci][cterm][16], lane o % 16
        for (int ci = 0; ci < c; ++ci)
            for (int ct = 0; ct < nt; ++ct) {
                for (int ch = 0, rt = 0; ch < pl.nchunks; rt += pl.cn[ch], ++ch) {
                    chunk_taps(ch, [&](int kh) { return u1[(static_cast<int64_t>(kh) * c + ci) * nt + ct]; }, t4);
                    wino_chunk_products(t4, p6);
                    for (int j = 0; j < pl.cn[ch]; ++j)
                        u2[((static_cast<int64_t>(rt + j) * c + ci) * nt + ct) * 16] = static_cast<float>(p6[j]);
                }
            }
    }
}

FConvWeights* make_fweights(const F32& wmat, int cin, int k) {
    require(wmat.ndim() == 2 && cin > 0 && k > 0 && wmat.shape(0) == static_cast<int64_t>(k) * k * cin && wmat.shape(1) > 0,
            "real conv weights must be (k*k*cin, cout)");
    const int cout = static_cast<int>(wmat.shape(1));
    const int cp = (cout + 15) / 16 * 16;
    auto* fw = new FConvWeights{cout, cin, k, cp, {}};
    fw->w.assign(static_cast<size_t>(wmat.shape(0)) * cp, 0.f);
    for (int64_t r = 0; r < wmat.shape(0); ++r)
        std::memcpy(fw->w.data() + r * cp, wmat.data() + r * cout, sizeof(float) * cout);
    make_wino_weights(*fw);
    return fw;
}

F32 conv2d_float(const F32& x, const FConvWeights& fw, int stride, int pad, const OptF32& scale, const OptF32& bias,
                 const OptF32& residual, const OptF32& slope, const OptF32& shift_in, const OptF32& shift_out,
                 bool act_first, Clamp clamp, bool nchw, std::optional<PoolSpec> pool) {
    require(x.ndim() == 4 && x.shape(nchw ? 1 : 3) == fw.cin,
            nchw ? "conv2d_float: x must be NCHW with cin channels" : "conv2d_float: x must be NHWC with cin channels");
    require(stride >= 1 && pad >= 0, "conv2d_float: bad stride/pad");
    const int64_t n = x.shape(0);
    const int h = static_cast<int>(x.shape(nchw ? 2 : 1)), w = static_cast<int>(x.shape(nchw ? 3 : 2)), c = fw.cin,
              k = fw.k;
    FConvArgs a{};
    a.w = fw.w.data();
    a.kdim = k * k * c;
    a.cout = fw.cout;
    a.cout_pad = fw.cout_pad;
    a.ho = out_size(h, k, stride, pad, false);
    a.wo = out_size(w, k, stride, pad, false);
    require(a.ho > 0 && a.wo > 0, "conv2d_float: kernel larger than the padded input");
    EpiHolder eh;
    make_epilogue(eh, a.cout, scale, bias, slope, shift_in, shift_out, act_first, clamp);
    a.epi = eh.e;
    attach_residual(a.epi, residual, n, a.ho, a.wo, a.cout, "conv2d_float");
    const KernelTable& kt = kernels();
    // Stride 2, k >= 5, small Cin (the stem): 2-D Winograd F(3,4) on every ISA (same bits on all).
    const bool wino = stride == 2 && !fw.wino2.empty();
    // A 1x1 stride-1 conv of an NHWC tensor is one matrix product over all its pixels (consecutive in memory):
    // no im2col copy, and long runs of pixels for the register tiles (a 16x8 map's rows of 8 pixels left a
    // 2-pixel tail tile per row).
    const bool pointwise = !wino && k == 1 && stride == 1 && pad == 0 && !nchw && !pool;
    const bool direct = !wino && !pointwise && kt.fconv_direct_row && static_cast<int64_t>(k) * c <= kSmallKC;
    int pk = 0, ps = 0, pp = 0, pho = 0, pwo = 0;
    if (pool) {
        bool pceil = false;
        std::tie(pk, ps, pp, pceil) = *pool;
        require(pk >= 1 && pk <= 64 && ps >= 1 && pp >= 0 && 2 * pp <= pk, "conv2d_float: bad pool kernel/stride/padding");
        require(!residual, "conv2d_float: a fused pool cannot take a residual");
        if (!direct && !wino) {  // other paths: the plain conv, then the pooling op (the same values as fused)
            const F32 full = conv2d_float(x, fw, stride, pad, scale, bias, residual, slope, shift_in, shift_out,
                                          act_first, clamp, nchw, std::nullopt);
            return pool2d(full, pk, ps, pp, pceil, true, true);
        }
        pho = out_size(a.ho, pk, ps, pp, pceil);
        pwo = out_size(a.wo, pk, ps, pp, pceil);
        require(pho > 0 && pwo > 0, "conv2d_float: pool window larger than the padded conv output");
    }
    F32 out = pool ? F32({n, static_cast<int64_t>(pho), static_cast<int64_t>(pwo), static_cast<int64_t>(a.cout)})
                   : F32({n, static_cast<int64_t>(a.ho), static_cast<int64_t>(a.wo), static_cast<int64_t>(a.cout)});
    a.out = out.mutable_data();
    const float* xs = x.data();
    if (wino) {
        const int64_t img = static_cast<int64_t>(c) * h * w;
        const int nth = num_threads();
        const int orows = pool ? pho : a.ho;  // rows of the op's output
        // Work units: bands of output rows (a multiple of three without a pool), one band per image when there
        // are at least as many images as threads.
        const int bands = n >= nth ? 1 : std::min<int>(orows, static_cast<int>((nth + n - 1) / n));
        int band = (orows + bands - 1) / bands;
        if (!pool) band = (band + kWinoM - 1) / kWinoM * kWinoM;
        {
            py::gil_scoped_release nogil;
#pragma omp parallel num_threads(num_threads())
            {
                WinoRows wr(a, fw, kt, h, w, pad, nchw, pk, ps, pp, pwo);
#pragma omp for schedule(dynamic, 1)
                for (int64_t un = 0; un < n * bands; ++un) {
                    const int64_t i = un / bands;
                    const int b0 = static_cast<int>(un % bands) * band, b1 = std::min(orows, b0 + band);
                    wr.start(xs + i * img, i);
                    if (!pool) {
                        wr.rows(b0, b1);
                        continue;
                    }
                    for (int ph = b0; ph < b1; ++ph) wr.pooled_row(ph, a.out + ((i * pho + ph) * pwo) * a.cout);
                }
            }
        }
        return out;
    }
    if (pointwise) {
        const int64_t npix = n * h * w;
        constexpr int64_t kBlock = 96;  // pixels per work unit (16 register tiles of 6)
        const int64_t nblk = (npix + kBlock - 1) / kBlock;
        py::gil_scoped_release nogil;
#pragma omp parallel for num_threads(num_threads()) schedule(dynamic, 1)
        for (int64_t b = 0; b < nblk; ++b) {
            const int64_t p0 = b * kBlock, len = std::min(kBlock, npix - p0);
            FConvArgs ab = a;  // the block as one output row of len pixels of image 0
            ab.ho = 1;
            ab.wo = static_cast<int>(len);
            ab.out = a.out + p0 * a.cout;
            if (a.epi.res) ab.epi.res = a.epi.res + p0 * a.cout;
            const float* rows = xs + p0 * c;
            kt.fconv_row(ab, rows, 0, 0);
        }
        return out;
    }
    // Small Cin: the im2col copy costs as much as a good part of the FMAs, so an ISA with a direct kernel reads a
    // zero-padded copy of the input directly (same reduction order: bit-identical to the im2col path).
    if (direct) {
        const int hp = h + 2 * pad, wp = w + 2 * pad;
        const int64_t img = static_cast<int64_t>(hp) * wp * c;
        {
        py::gil_scoped_release nogil;
        std::vector<float> xpad(static_cast<size_t>(n * img), 0.f);
        const int nth = num_threads();  // read here: inside the region it is per thread
#pragma omp parallel num_threads(nth)
        {
#pragma omp for schedule(static)
            for (int64_t i = 0; i < n * h; ++i) {
                const int64_t im = i / h, r = i % h;
                float* dst = xpad.data() + im * img + ((r + pad) * wp + pad) * c;
                if (!nchw) {
                    std::memcpy(dst, xs + i * w * c, sizeof(float) * w * c);
                } else {  // NCHW input: transpose while padding (saves a separate pass over the image)
                    for (int ch = 0; ch < c; ++ch) {
                        const float* src = xs + ((im * c + ch) * h + r) * w;
                        for (int col = 0; col < w; ++col) dst[static_cast<int64_t>(col) * c + ch] = src[col];
                    }
                }
            }
            if (!pool) {
#pragma omp for collapse(2) schedule(dynamic, 2)
                for (int64_t i = 0; i < n; ++i)
                    for (int oh = 0; oh < a.ho; ++oh)
                        kt.fconv_direct_row(a, xpad.data() + i * img, wp, c, k, stride, i, oh,
                                            a.out + (i * a.ho + oh) * a.wo * a.cout);
            } else {
                // Conv rows go to a ring of pk rows and are pooled as soon as a window is complete: the full conv
                // output never goes to memory. Work units are bands of pooled rows (one per image when there are
                // enough images; a band recomputes at most pk - ps conv rows of its neighbour).
                const int64_t rowsz = static_cast<int64_t>(a.wo) * a.cout;
                const int bands = n >= nth ? 1 : std::min<int>(pho, static_cast<int>((nth + n - 1) / n));
                const int band = (pho + bands - 1) / bands;
                std::vector<float> ring(static_cast<size_t>(pk) * rowsz);
                const float* rows[64];
#pragma omp for schedule(dynamic, 1)
                for (int64_t u = 0; u < n * bands; ++u) {
                    const int64_t i = u / bands;
                    const int ph0 = static_cast<int>(u % bands) * band, ph1 = std::min(pho, ph0 + band);
                    int next = 0;  // next conv row to compute
                    for (int ph = ph0; ph < ph1; ++ph) {
                        const int h0 = ph * ps - pp;
                        const int hs = std::max(h0, 0), he = std::min(h0 + pk, a.ho);
                        next = std::max(next, hs);
                        for (; next < he; ++next)
                            kt.fconv_direct_row(a, xpad.data() + i * img, wp, c, k, stride, i, next,
                                                ring.data() + (next % pk) * rowsz);
                        for (int r = hs; r < he; ++r) rows[r - hs] = ring.data() + (r % pk) * rowsz;
                        kt.maxpool_rows(rows, std::max(he - hs, 0), a.out + ((i * pho + ph) * pwo) * a.cout, a.wo,
                                        a.cout, pk, ps, pp, pwo);
                    }
                }
            }
        }
        }  // GIL held again before `out` is returned
        return out;
    }
    std::vector<float> nhwc;  // NHWC copy of an NCHW input for the im2col path
    if (nchw) {
        nhwc.resize(static_cast<size_t>(n) * h * w * c);
        for (int64_t i = 0; i < n; ++i)
            for (int ch = 0; ch < c; ++ch)
                for (int64_t r = 0; r < static_cast<int64_t>(h) * w; ++r)
                    nhwc[(i * h * w + r) * c + ch] = xs[(i * c + ch) * h * w + r];
        xs = nhwc.data();
    }
    {
        py::gil_scoped_release nogil;
#pragma omp parallel num_threads(num_threads())
        {
            // Each thread im2cols one output row at a time into a small buffer that stays in cache.
            std::vector<float> cols(static_cast<size_t>(a.wo) * a.kdim);
#pragma omp for collapse(2) schedule(dynamic, 2)
            for (int64_t i = 0; i < n; ++i)
                for (int oh = 0; oh < a.ho; ++oh) {
                    const int ih0 = oh * stride - pad;
                    for (int ow = 0; ow < a.wo; ++ow) {
                        float* dst = cols.data() + static_cast<int64_t>(ow) * a.kdim;
                        const int iw0 = ow * stride - pad;
                        for (int kh = 0; kh < k; ++kh) {
                            const int ih = ih0 + kh;
                            if (ih < 0 || ih >= h) {
                                std::memset(dst, 0, sizeof(float) * c * k);
                                dst += static_cast<int64_t>(c) * k;
                                continue;
                            }
                            const float* src = xs + (i * h + ih) * w * c;
                            if (iw0 >= 0 && iw0 + k <= w) {  // whole kernel row inside: one contiguous run
                                std::memcpy(dst, src + static_cast<int64_t>(iw0) * c, sizeof(float) * c * k);
                                dst += static_cast<int64_t>(c) * k;
                                continue;
                            }
                            for (int kw = 0; kw < k; ++kw, dst += c) {
                                const int iw = iw0 + kw;
                                if (iw < 0 || iw >= w) std::memset(dst, 0, sizeof(float) * c);
                                else std::memcpy(dst, src + static_cast<int64_t>(iw) * c, sizeof(float) * c);
                            }
                        }
                    }
                    kt.fconv_row(a, cols.data(), i, oh);
                }
        }
    }
    return out;
}

F32 im2col(const F32& x, int k, int stride, int pad) {
    require(x.ndim() == 4, "im2col: x must be NHWC");
    const int64_t n = x.shape(0);
    const int h = static_cast<int>(x.shape(1)), w = static_cast<int>(x.shape(2)), c = static_cast<int>(x.shape(3));
    const int ho = out_size(h, k, stride, pad, false), wo = out_size(w, k, stride, pad, false);
    require(ho > 0 && wo > 0, "im2col: kernel larger than the padded input");
    const int64_t kc = static_cast<int64_t>(k) * k * c;
    F32 out({n * ho * wo, kc});
    float* d = out.mutable_data();
    const float* xs = x.data();
    {
        py::gil_scoped_release nogil;
#pragma omp parallel for num_threads(num_threads()) collapse(2) schedule(static)
        for (int64_t i = 0; i < n; ++i)
            for (int oh = 0; oh < ho; ++oh)
                for (int ow = 0; ow < wo; ++ow) {
                    float* dst = d + ((i * ho + oh) * wo + ow) * kc;
                    for (int kh = 0; kh < k; ++kh) {
                        const int ih = oh * stride - pad + kh;
                        for (int kw = 0; kw < k; ++kw, dst += c) {
                            const int iw = ow * stride - pad + kw;
                            if (ih < 0 || ih >= h || iw < 0 || iw >= w) std::memset(dst, 0, sizeof(float) * c);
                            else std::memcpy(dst, xs + ((i * h + ih) * w + iw) * c, sizeof(float) * c);
                        }
                    }
                }
    }
    return out;
}

// In-place per-channel transform of a (..., C) float tensor (e.g. a real conv's GEMM output).
F32 epilogue_inplace(F32 y, const OptF32& scale, const OptF32& bias, const OptF32& residual, const OptF32& slope,
                     const OptF32& shift_in, const OptF32& shift_out, bool act_first, Clamp clamp) {
    require(y.ndim() >= 1, "epilogue: empty tensor");
    const int64_t c = y.shape(y.ndim() - 1);
    const int64_t total = y.size();
    EpiHolder eh;
    make_epilogue(eh, c, scale, bias, slope, shift_in, shift_out, act_first, clamp);
    Epilogue& e = eh.e;
    if (residual) {
        require(residual->size() == total, "epilogue: residual must match the output size");
        e.res = residual->data();
    }
    float* d = y.mutable_data();
    {
        py::gil_scoped_release nogil;
#pragma omp parallel for num_threads(num_threads()) schedule(static) if (total > (1 << 16))
        for (int64_t i = 0; i < total / c; ++i)
            epilogue_store(e, 0, static_cast<int>(c), [&](int j) { return d[i * c + j]; },
                           e.res ? e.res + i * c : nullptr, d + i * c);
    }
    return y;
}

}  // namespace bireid
