// NEON kernels (AArch64, where Advanced SIMD is always present): binary convs with CNT per byte and widening
// pairwise adds, the epilogue (zero-padding correction included) applied from registers; real convs with fused
// multiply-add (FMLA rounds like std::fma); the Winograd stem; packing; max pooling. Every float operation is the
// portable code's, in its order, so this path gives the same bits.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "portable.h"

namespace bireid {

namespace {

static_assert(kWinoQB == 4, "the NEON Winograd kernel holds one tile block in the four lanes of a q register");

// ---------------------------------------------------------------------------------------------- epilogue
// epilogue_store (epilogue.h) on 4 channels in one q register: the same float operations in the same order (separate
// multiply and add; the select of the activation and the clamp by compare + bit select, so NaN and -0 pass exactly
// as in the scalar code).
// The flags and clamp bounds are copied into the object: NEON stores may alias anything, so fields read through the
// Epilogue would be reloaded after every store.
struct Epi4 {
    float32x4_t sc, bi, sl, lo, hi;
    const float* si;
    const float* so;
    bool plain, act_first, has_act;
    Epi4(const Epilogue& e, int o0)
        : sc(vld1q_f32(e.scale + o0)), bi(vld1q_f32(e.bias + o0)), sl(vld1q_f32(e.slope + o0)),
          lo(vdupq_n_f32(e.clamp_lo)), hi(vdupq_n_f32(e.clamp_hi)), si(e.shift_in + o0), so(e.shift_out + o0),
          plain(e.plain), act_first(e.act_first), has_act(e.has_act) {}
    // r: the residual of these 4 channels or null.
    inline float32x4_t apply(float32x4_t d, const float* r) const {
        const float32x4_t zero = vdupq_n_f32(0.f);
        float32x4_t v = vaddq_f32(vmulq_f32(d, sc), bi);
        if (plain) {
            if (r && !act_first) v = vaddq_f32(v, vld1q_f32(r));
            if (has_act) v = vbslq_f32(vcgeq_f32(v, zero), v, vmulq_f32(sl, v));
            if (r && act_first) v = vaddq_f32(v, vld1q_f32(r));
            return v;
        }
        const float32x4_t rv = r ? vld1q_f32(r) : zero;
        v = vaddq_f32(v, act_first ? zero : rv);
        const float32x4_t u = vaddq_f32(v, vld1q_f32(si));
        v = vaddq_f32(vbslq_f32(vcgeq_f32(u, zero), u, vmulq_f32(sl, u)), vld1q_f32(so));
        v = vaddq_f32(v, act_first ? rv : zero);
        // v < lo ? lo : (v > hi ? hi : v); NaN compares false and passes through like the scalar code.
        v = vbslq_f32(vcgtq_f32(v, hi), hi, v);
        return vbslq_f32(vcltq_f32(v, lo), lo, v);
    }
};

// ---------------------------------------------------------------------------------------------- binary conv
// One q register holds two channel words (channels 2v, 2v + 1 of the block). Per input word and register: EOR with
// the broadcast input word, CNT (popcount per byte, 0..8), byte ADD into an 8-bit accumulator. Byte lanes are
// widened by a pairwise add-accumulate (UADALP) into 16-bit lanes every kFlush8 words (31 x 8 = 248 < 256), and the
// 16-bit lanes into the 32-bit per-channel totals every kFlush16 byte flushes (ADDP of two registers' lanes, then
// UADDLP: 64 x 2 x 248 x 2 = 63488 < 65536 in the ADDP), so the inner loop is three instructions per 128 bits.
constexpr int kFlush8 = 31;
constexpr int kFlush16 = 64;

// The popcounts of one output pixel x 16 channels into tot[16] (uint32, channel order); `base` is the pixel's first
// input word (rows `rs` words apart), `wb` the block's weights [k*k*wd][16].
// K, WD > 0: the kernel size and words per tap known at compile time (the loops unroll), 0: read from `a`.
template <int K, int WD>
inline void bcount(const BConvArgs& a, const uint64_t* base, int64_t rs, const uint64_t* wb, uint32_t* tot) {
    uint8x16_t acc8[8];
    uint16x8_t acc16[8];
    for (int v = 0; v < 8; ++v) {
        acc8[v] = vdupq_n_u8(0);
        acc16[v] = vdupq_n_u16(0);
    }
    int n16 = 0;        // byte flushes since the last 16-bit flush
    bool first = true;  // the first 16-bit flush stores, later ones add
    auto flush16 = [&]() {
        for (int q = 0; q < 4; ++q) {
            const uint32x4_t c = vpaddlq_u16(vpaddq_u16(acc16[2 * q], acc16[2 * q + 1]));  // channels 4q .. 4q+3
            vst1q_u32(tot + 4 * q, first ? c : vaddq_u32(vld1q_u32(tot + 4 * q), c));
            acc16[2 * q] = acc16[2 * q + 1] = vdupq_n_u16(0);
        }
        first = false;
        n16 = 0;
    };
    auto flush8 = [&]() {
        for (int v = 0; v < 8; ++v) {
            acc16[v] = vpadalq_u8(acc16[v], acc8[v]);
            acc8[v] = vdupq_n_u8(0);
        }
        if (++n16 == kFlush16) flush16();
    };
    const int k = K ? K : a.k, wd = WD ? WD : a.wd;
    const uint64_t* w = wb;
    auto words = [&](const uint64_t* xq, int nw) {  // nw consecutive input words against the next weights
#pragma GCC unroll 4
        for (int j = 0; j < nw; ++j, w += OCB) {
            const uint8x16_t xv = vreinterpretq_u8_u64(vld1q_dup_u64(xq + j));
            for (int v = 0; v < 8; ++v) {
                const uint8x16_t wv = vld1q_u8(reinterpret_cast<const uint8_t*>(w + 2 * v));
                acc8[v] = vaddq_u8(acc8[v], vcntq_u8(veorq_u8(xv, wv)));
            }
        }
    };
    if constexpr (K > 0 && WD > 0 && K * K * WD <= kFlush8) {  // one flush per pixel: the taps unroll fully
#pragma GCC unroll 9
        for (int kh = 0; kh < K; ++kh)
#pragma GCC unroll 9
            for (int kw = 0; kw < K; ++kw) words(base + kh * rs + kw * WD, WD);
        flush8();
        flush16();
        return;
    }
    // Flush after every `tpf` whole taps, or within a tap when one tap has more than kFlush8 words (Cin > 1984).
    const int tpf = wd <= kFlush8 ? kFlush8 / wd : 0;
    int taps = 0;
    for (int kh = 0; kh < k; ++kh)
        for (int kw = 0; kw < k; ++kw) {
            const uint64_t* xq = base + kh * rs + static_cast<int64_t>(kw) * wd;
            if (tpf) {
                words(xq, wd);
                if (++taps == tpf) {
                    flush8();
                    taps = 0;
                }
                continue;
            }
            for (int j0 = 0; j0 < wd; j0 += kFlush8) {
                words(xq + j0, std::min(kFlush8, wd - j0));
                flush8();
            }
        }
    if (taps) flush8();
    if (n16 || first) flush16();
}

// One channel block of output row (n, oh): runs of up to kRun pixels, their popcounts, then their epilogue from
// registers (the zero-padding correction, the int32 -> float conversion and Epi4), set up once per run.
template <int K, int WD>
inline void bconv_block_row(const BConvArgs& a, int64_t n, int oh, int ob) {
    constexpr int kRun = 32;
    alignas(16) uint32_t tot[kRun][OCB];
    const int64_t kwords = static_cast<int64_t>(a.k) * a.k * a.wd;
    const uint64_t* wb = a.wblk + ob * kwords * OCB;
    const uint64_t* row = a.x + (n * a.hp + static_cast<int64_t>(oh) * a.stride) * a.wp * a.wd;
    const int64_t rs = static_cast<int64_t>(a.wp) * a.wd;
    const int o0 = ob * OCB;
    const int32x4_t kfull = vdupq_n_s32(static_cast<int>(static_cast<int64_t>(a.k) * a.k * a.cin));
    const int32_t* ws = a.wsum + static_cast<int64_t>(ob) * a.k * a.k * OCB;
    const int ih0 = oh * a.stride - a.pad;
    const bool zpad = a.pad_value == 0 && a.pad > 0;
    for (int ow0 = 0; ow0 < a.wo; ow0 += kRun) {
        const int np = std::min(kRun, a.wo - ow0);
        for (int p = 0; p < np; ++p)
            bcount<K, WD>(a, row + static_cast<int64_t>(ow0 + p) * a.stride * a.wd, rs, wb, tot[p]);
        if (a.cout - o0 < OCB) {  // a partial channel block: the portable per-pixel epilogue
            int64_t cnt[kRun * OCB];
            for (int i = 0; i < np * OCB; ++i) cnt[i] = tot[i / OCB][i % OCB];
            finish_tile(a, n, oh, ow0, np, ob, cnt);
            continue;
        }
        // dot = K - 2 * popcount - (padded taps' weight sums), converted once from int32 (the counts fit: K < 2^30;
        // the conversion rounds like the portable int64 -> float one). The arguments are read into locals first.
        const int k = a.k, h = a.h, w = a.w, stride = a.stride, pad = a.pad;
        const int64_t cout = a.cout, idx0 = ((n * a.ho + oh) * a.wo + ow0) * cout + o0;
        float* const out = a.out;
        const float* const res = a.epi.res;
        const bool row_pad = zpad && (ih0 < 0 || ih0 + k > h);
        for (int q = 0; q < OCB / 4; ++q) {
            const Epi4 er(a.epi, o0 + 4 * q);
            for (int p = 0; p < np; ++p) {
                const int32x4_t cnt = vreinterpretq_s32_u32(vld1q_u32(tot[p] + 4 * q));
                int32x4_t dot = vsubq_s32(kfull, vshlq_n_s32(cnt, 1));
                const int iw0 = (ow0 + p) * stride - pad;
                if (zpad && (row_pad || iw0 < 0 || iw0 + k > w)) {
                    // zero padding: subtract the weight sums of the padded taps (pad_correction in epilogue.h)
                    int32x4_t corr = vdupq_n_s32(0);
                    for (int kh = 0; kh < k; ++kh)
                        for (int kw = 0; kw < k; ++kw) {
                            const int ih = ih0 + kh, iw = iw0 + kw;
                            if (ih >= 0 && ih < h && iw >= 0 && iw < w) continue;
                            corr = vaddq_s32(corr, vld1q_s32(ws + (kh * k + kw) * OCB + 4 * q));
                        }
                    dot = vsubq_s32(dot, corr);
                }
                const int64_t idx = idx0 + p * cout + 4 * q;
                vst1q_f32(out + idx, er.apply(vcvtq_f32_s32(dot), res ? res + idx : nullptr));
            }
        }
    }
}

// Output row (n, oh) of channel blocks [ob0, ob1). Short rows (3x3 convs of 64 and 128 channels; the 1x1
// downsamples of up to 256) with the tap loops unrolled at compile time, others through the general loop.
void bconv_rows_neon(const BConvArgs& a, int64_t n, int oh, int ob0, int ob1) {
    auto run = [&](auto block_row) {
        for (int ob = ob0; ob < ob1; ++ob) block_row(a, n, oh, ob);
    };
    if (a.k == 3 && a.wd == 1) run(bconv_block_row<3, 1>);
    else if (a.k == 3 && a.wd == 2) run(bconv_block_row<3, 2>);
    else if (a.k == 1 && a.wd == 1) run(bconv_block_row<1, 1>);
    else if (a.k == 1 && a.wd == 2) run(bconv_block_row<1, 2>);
    else if (a.k == 1 && a.wd == 4) run(bconv_block_row<1, 4>);
    else run(bconv_block_row<0, 0>);
}

// ---------------------------------------------------------------------------------------------- real conv
// P pixels x 16 channels (four q registers each) of a real conv, read from `nrows` runs of kc floats (run r of
// pixel p at x0 + r * xstride + p * pstep): per step 4 weight loads and P scalar loads feed 4P FMLA by element
// (fma(x_k, w_k, acc) in k order, as the portable kernel). One im2col row is one run of kdim floats; the direct
// path reads the k rows of the zero-padded image (k * cin floats each), the same values in the same order.
template <int P>
inline void ftile(const FConvArgs& a, const float* x0, int64_t xstride, int pstep, int nrows, int kc, int64_t n,
                  int oh, int ow, int c0, float* orow) {
    float32x4_t acc[P][4];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p)
        for (int g = 0; g < 4; ++g) acc[p][g] = vdupq_n_f32(0.f);
    const float* w = a.w + c0;
    for (int r = 0; r < nrows; ++r) {
        const float* x = x0 + r * xstride;
        for (int q = 0; q < kc; ++q, w += a.cout_pad) {
            const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4), w2 = vld1q_f32(w + 8), w3 = vld1q_f32(w + 12);
#pragma GCC unroll 8
            for (int p = 0; p < P; ++p) {
                const float xv = x[p * pstep + q];
                acc[p][0] = vfmaq_n_f32(acc[p][0], w0, xv);
                acc[p][1] = vfmaq_n_f32(acc[p][1], w1, xv);
                acc[p][2] = vfmaq_n_f32(acc[p][2], w2, xv);
                acc[p][3] = vfmaq_n_f32(acc[p][3], w3, xv);
            }
        }
    }
    const int64_t ridx = ((n * a.ho + oh) * a.wo + ow) * a.cout + c0;  // residual index of the first value
    float* o = orow + static_cast<int64_t>(ow) * a.cout + c0;
    if (c0 + 16 > a.cout) {  // a partial channel group: the portable epilogue
        alignas(16) float buf[16];
        const int oc = a.cout - c0;
        for (int p = 0; p < P; ++p) {
            for (int g = 0; g < 4; ++g) vst1q_f32(buf + 4 * g, acc[p][g]);
            const int64_t off = static_cast<int64_t>(p) * a.cout;
            epilogue_store(a.epi, c0, oc, [&](int j) { return buf[j]; }, a.epi.res ? a.epi.res + ridx + off : nullptr,
                           o + off);
        }
        return;
    }
    for (int g = 0; g < 4; ++g) {
        const Epi4 er(a.epi, c0 + 4 * g);
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
            const int64_t off = static_cast<int64_t>(p) * a.cout + 4 * g;
            vst1q_f32(o + off, er.apply(acc[p][g], a.epi.res ? a.epi.res + ridx + off : nullptr));
        }
    }
}

// All output pixels of one row, 16 channels at a time, in tiles of up to six pixels.
inline void frow(const FConvArgs& a, const float* xrow, int64_t xstride, int pstep, int nrows, int kc, int64_t n,
                 int oh, float* orow) {
    for (int c0 = 0; c0 < a.cout_pad && c0 < a.cout; c0 += 16) {
        int ow = 0;
        for (; ow + 6 <= a.wo; ow += 6)
            ftile<6>(a, xrow + static_cast<int64_t>(ow) * pstep, xstride, pstep, nrows, kc, n, oh, ow, c0, orow);
        const float* x = xrow + static_cast<int64_t>(ow) * pstep;
        switch (a.wo - ow) {
            case 5: ftile<5>(a, x, xstride, pstep, nrows, kc, n, oh, ow, c0, orow); break;
            case 4: ftile<4>(a, x, xstride, pstep, nrows, kc, n, oh, ow, c0, orow); break;
            case 3: ftile<3>(a, x, xstride, pstep, nrows, kc, n, oh, ow, c0, orow); break;
            case 2: ftile<2>(a, x, xstride, pstep, nrows, kc, n, oh, ow, c0, orow); break;
            case 1: ftile<1>(a, x, xstride, pstep, nrows, kc, n, oh, ow, c0, orow); break;
            default: break;
        }
    }
}

void fconv_row_neon(const FConvArgs& a, const float* cols, int64_t n, int oh) {
    frow(a, cols, 0, a.kdim, 1, a.kdim, n, oh, a.out + (n * a.ho + oh) * static_cast<int64_t>(a.wo) * a.cout);
}

void fconv_direct_row_neon(const FConvArgs& a, const float* xpad, int wpad, int cin, int k, int stride, int64_t n,
                           int oh, float* orow) {
    const int64_t xstride = static_cast<int64_t>(wpad) * cin;
    frow(a, xpad + static_cast<int64_t>(oh) * stride * xstride, xstride, stride * cin, k, k * cin, n, oh, orow);
}

// ---------------------------------------------------------------------------------------------- Winograd stem
// The 2-D F(3,4) kernel (winograd.h): each pass computes one accumulator M[RA][CA] for a block of kWinoQB = 4 tiles
// x 16 channels (16 q registers); per step the 4 tiles' inputs are one q load and the 16 channels' weights four, which
// feed 16 FMLA by element. Each accumulator sees the portable kernel's products in the portable order (row terms of
// RA, ci, column terms of CA), and the output transforms are wino_out3's operations: the same bits.
inline void out3(float32x4_t m0, float32x4_t m1, float32x4_t m2, float32x4_t m3, float32x4_t m4, float32x4_t m5,
                 float32x4_t* y) {
    const float32x4_t a = vaddq_f32(m1, m2), b = vsubq_f32(m1, m2), c = vaddq_f32(m3, m4), d = vsubq_f32(m3, m4);
    y[0] = vaddq_f32(vaddq_f32(m0, a), c);
    y[1] = vaddq_f32(b, vaddq_f32(d, d));
    y[2] = vaddq_f32(vaddq_f32(a, vmulq_f32(vdupq_n_f32(4.f), c)), m5);
}

template <int L>
inline void wfma(float32x4_t (&acc)[4], const float32x4_t (&u)[4], float32x4_t t) {
    for (int g = 0; g < 4; ++g) acc[g] = vfmaq_laneq_f32(acc[g], u[g], t, L);
}

void wino2_rows_neon(const FConvArgs& a, const Wino2Args& wa, int64_t n, int s, float* const* orows) {
    constexpr int B = kWinoQB, N = kWinoN, M = kWinoM;
    const WinoPlan& pl = wa.pl;
    const int c = pl.cin, nt = pl.nterms;
    const int64_t ublk = static_cast<int64_t>(nt) * c * nt * 16;
    thread_local std::vector<int64_t> toff, uoff;  // the steps of each accumulator (winograd.h)
    int first[N * N + 1];
    wino2_steps(pl, wa.nq, toff, uoff, first);
    alignas(16) float mbuf[N][N][B][16];  // M[RA][CA][tile][channel]
    alignas(16) float ybuf[N][M][B][16];  // after the column transform
    const int nqb = wino_nqb(wa.nq);
    for (int c0 = 0; c0 < a.cout_pad && c0 < a.cout; c0 += 16) {
        const float* ub = wa.u + (c0 / 16) * ublk;
        for (int qb = 0; qb < nqb; ++qb) {
            const float* tb = wa.t + static_cast<int64_t>(qb) * nt * B;
            for (int ra = 0; ra < N; ++ra) {
                for (int ca = 0; ca < N; ++ca) {
                    float32x4_t acc[B][4];
                    for (int p = 0; p < B; ++p)
                        for (int g = 0; g < 4; ++g) acc[p][g] = vdupq_n_f32(0.f);
                    for (int st = first[ra * N + ca]; st < first[ra * N + ca + 1]; ++st) {
                        const float* u = ub + uoff[st];
                        const float32x4_t uv[4] = {vld1q_f32(u), vld1q_f32(u + 4), vld1q_f32(u + 8), vld1q_f32(u + 12)};
                        const float32x4_t tv = vld1q_f32(tb + toff[st]);  // the block's 4 tiles
                        wfma<0>(acc[0], uv, tv);
                        wfma<1>(acc[1], uv, tv);
                        wfma<2>(acc[2], uv, tv);
                        wfma<3>(acc[3], uv, tv);
                    }
                    for (int p = 0; p < B; ++p)
                        for (int g = 0; g < 4; ++g) vst1q_f32(mbuf[ra][ca][p] + 4 * g, acc[p][g]);
                }
                for (int p = 0; p < B; ++p)
                    for (int h = 0; h < 16; h += 4) {
                        float32x4_t y[M];
                        out3(vld1q_f32(mbuf[ra][0][p] + h), vld1q_f32(mbuf[ra][1][p] + h), vld1q_f32(mbuf[ra][2][p] + h),
                             vld1q_f32(mbuf[ra][3][p] + h), vld1q_f32(mbuf[ra][4][p] + h), vld1q_f32(mbuf[ra][5][p] + h),
                             y);
                        for (int e = 0; e < M; ++e) vst1q_f32(ybuf[ra][e][p] + h, y[e]);
                    }
            }
            const int pb = std::min(B, wa.nq - qb * B);  // tiles of this block that reach the output
            for (int p = 0; p < pb; ++p) {
                const int q = qb * B + p;
                for (int e = 0; e < M && M * q + e < a.wo; ++e) {
                    const int ow = M * q + e;
                    for (int h = 0; h < 16 && c0 + h < a.cout; h += 4) {
                        float32x4_t yr[M];
                        out3(vld1q_f32(ybuf[0][e][p] + h), vld1q_f32(ybuf[1][e][p] + h), vld1q_f32(ybuf[2][e][p] + h),
                             vld1q_f32(ybuf[3][e][p] + h), vld1q_f32(ybuf[4][e][p] + h), vld1q_f32(ybuf[5][e][p] + h),
                             yr);
                        for (int r = 0; r < M; ++r) {
                            float* orow = orows[r];
                            if (!orow) continue;
                            const int64_t ridx = ((n * a.ho + M * s + r) * a.wo + ow) * a.cout + c0 + h;
                            float* dst = orow + static_cast<int64_t>(ow) * a.cout + c0 + h;
                            const float* res = a.epi.res ? a.epi.res + ridx : nullptr;
                            if (c0 + h + 4 <= a.cout) {
                                vst1q_f32(dst, Epi4(a.epi, c0 + h).apply(yr[r], res));
                            } else {  // the last, partial group of channels: the portable epilogue
                                alignas(16) float buf[4];
                                vst1q_f32(buf, yr[r]);
                                epilogue_store(a.epi, c0 + h, a.cout - c0 - h, [&](int j) { return buf[j]; }, res, dst);
                            }
                        }
                    }
                }
            }
        }
    }
}

void wino_transform_row_neon(const WinoPlan& pl, const float* x, bool nchw, int h, int w, int pad, int r, int nq,
                             float* dst, float* scratch) {
    wino_transform_row(pl, x, nchw, h, w, pad, r, nq, dst, scratch);  // the portable code, vectorized for NEON
}

void wino2_tile_transform_neon(const WinoPlan& pl, int nq, int s, const float* const* rowptrs, float* dst) {
    wino2_tile_transform(pl, nq, s, [&](int r) { return rowptrs[r]; }, dst);
}

// ---------------------------------------------------------------------------------------------- packing
// pack_rows_portable's test, (x - t) < 0 per channel (-0 and NaN give +1). A whole word: 16 compare masks narrowed to
// bytes, ANDed with each byte lane's bit, and summed pairwise (ADDP) four times into the 64-bit word; a word's last
// whole groups of 16 channels the same way per group, the remaining channels scalar.
inline uint8x16_t neg16(const float* x, const float* t) {  // 0xff per channel whose x - t < 0, channel order
    uint32x4_t m[4];
    for (int g = 0; g < 4; ++g) {
        float32x4_t v = vld1q_f32(x + 4 * g);
        if (t) v = vsubq_f32(v, vld1q_f32(t + 4 * g));
        m[g] = vcltq_f32(v, vdupq_n_f32(0.f));
    }
    const uint16x8_t lo = vcombine_u16(vmovn_u32(m[0]), vmovn_u32(m[1])), hi = vcombine_u16(vmovn_u32(m[2]), vmovn_u32(m[3]));
    return vcombine_u8(vmovn_u16(lo), vmovn_u16(hi));
}

void pack_rows_neon(const float* x, const float* t, uint64_t* dst, int64_t npix, int c, int wd) {
    static const uint8_t kBits[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x16_t bits = vld1q_u8(kBits);
    for (int64_t i = 0; i < npix; ++i) {
        const float* xp = x + i * c;
        uint64_t* d = dst + i * wd;
        for (int j = 0; j < wd; ++j) {
            const int c0 = 64 * j;
            const float* tp = t ? t + c0 : nullptr;
            if (c - c0 >= 64) {
                uint8x16_t m[4];
                for (int g = 0; g < 4; ++g) m[g] = vandq_u8(neg16(xp + c0 + 16 * g, tp ? tp + 16 * g : nullptr), bits);
                const uint8x16_t s = vpaddq_u8(vpaddq_u8(m[0], m[1]), vpaddq_u8(m[2], m[3]));  // 4 channels a byte
                d[j] = vgetq_lane_u64(vreinterpretq_u64_u8(vpaddq_u8(s, s)), 0);
                continue;
            }
            const int ng = (c - c0) / 16;  // whole groups of 16 channels in this last, partial word
            uint64_t word = 0;
            for (int g = 0; g < ng; ++g) {
                uint8x16_t s = vandq_u8(neg16(xp + c0 + 16 * g, tp ? tp + 16 * g : nullptr), bits);
                s = vpaddq_u8(s, s);
                s = vpaddq_u8(s, s);
                s = vpaddq_u8(s, s);  // bytes 0, 1: channels 0-7, 8-15
                word |= static_cast<uint64_t>(vgetq_lane_u16(vreinterpretq_u16_u8(s), 0)) << (16 * g);
            }
            for (int ch = c0 + 16 * ng; ch < c; ++ch)
                if ((t ? xp[ch] - t[ch] : xp[ch]) < 0.f) word |= 1ULL << (ch - c0);
            d[j] = word;
        }
    }
}

// ---------------------------------------------------------------------------------------------- max pool
// maxpool_rows_portable's rule and order: take p when p > acc or p is NaN, by compare + bit select (FMAX would
// differ: it returns NaN when acc is NaN, and +0 for max(-0, +0) in either order). Four registers of channels at a
// time, then one, then the scalar loop.
inline float32x4_t take(float32x4_t acc, float32x4_t v) {
    return vbslq_f32(vorrq_u32(vcgtq_f32(v, acc), vmvnq_u32(vceqq_f32(v, v))), v, acc);
}

void maxpool_rows_neon(const float* const* rows, int nrows, float* dst, int w, int64_t c, int k, int stride, int pad,
                       int wo) {
    const float32x4_t ninf = vdupq_n_f32(-std::numeric_limits<float>::infinity());
    for (int ow = 0; ow < wo; ++ow) {
        const int w0 = ow * stride - pad;
        const int ws = w0 < 0 ? 0 : w0, we = w0 + k < w ? w0 + k : w;
        float* d = dst + static_cast<int64_t>(ow) * c;
        int64_t j = 0;
        for (; j + 16 <= c; j += 16) {
            float32x4_t acc[4] = {ninf, ninf, ninf, ninf};
            for (int r = 0; r < nrows; ++r)
                for (int iw = ws; iw < we; ++iw) {
                    const float* p = rows[r] + static_cast<int64_t>(iw) * c + j;
                    for (int g = 0; g < 4; ++g) acc[g] = take(acc[g], vld1q_f32(p + 4 * g));
                }
            for (int g = 0; g < 4; ++g) vst1q_f32(d + j + 4 * g, acc[g]);
        }
        for (; j + 4 <= c; j += 4) {
            float32x4_t acc = ninf;
            for (int r = 0; r < nrows; ++r)
                for (int iw = ws; iw < we; ++iw) acc = take(acc, vld1q_f32(rows[r] + static_cast<int64_t>(iw) * c + j));
            vst1q_f32(d + j, acc);
        }
        for (; j < c; ++j) {
            float m = -std::numeric_limits<float>::infinity();
            for (int r = 0; r < nrows; ++r)
                for (int iw = ws; iw < we; ++iw) {
                    const float p = rows[r][static_cast<int64_t>(iw) * c + j];
                    m = (p > m || p != p) ? p : m;
                }
            d[j] = m;
        }
    }
}

// The virtual counter: a cheap timestamp (the profile uses shares only).
double cntvct_ticks() {
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return static_cast<double>(v);
}

const KernelTable kTable = {
    "neon",
    bconv_rows_neon,
    fconv_row_neon,
    fconv_direct_row_neon,
    pack_rows_neon,
    maxpool_rows_neon,
    wino_transform_row_neon,
    wino2_tile_transform_neon,
    wino2_rows_neon,
    cntvct_ticks,
};

}  // namespace

const KernelTable* kernels_neon(const char**) { return &kTable; }  // Advanced SIMD is part of every AArch64 CPU

}  // namespace bireid

#else  // not AArch64
#include "kernels.h"
namespace bireid {
const KernelTable* kernels_neon(const char** why) {
    *why = "not built for this architecture (AArch64 only)";
    return nullptr;
}
}  // namespace bireid
#endif
