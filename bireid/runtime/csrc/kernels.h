// Shared declarations for the bireid bit-packed inference kernels (no torch, no Python here).
//
// Conventions (the .bnn format documents the same ones):
//  * activations are float32 NHWC; binarized activations are packed NHWC along channels into 64-bit words,
//    channel c -> bit (c % 64) of word (c / 64); a set bit means sign = -1 (value < threshold), a clear bit +1;
//    channels past Cin inside the last word are 0 in activations AND weights, so XOR leaves them 0 and they
//    never reach the popcount;
//  * packed activation buffers carry `pad` rows/columns of zero words (+1) around each image;
//  * binary weights are packed per output channel in (kh, kw, word) order: w[o][kh][kw][word].
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstddef>
#include <cmath>
#include <limits>
#include <vector>

namespace bireid {

enum Isa : int { ISA_PORTABLE = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };

constexpr int OCB = 16;  // output channels per register block (two zmm / four ymm of 64-bit lanes)

// Per-output-channel transform applied to the integer dot product (or to a float conv output):
//   v = dot * scale[o] + bias[o]
//   then, in the order given by act_first, the residual add (v += res) and the activation
//   (u = v + shift_in[o]; v = (u >= 0 ? u : slope[o] * u) + shift_out[o]); finally the clamp.
// Every pointer except `res` is non-null: absent parts get identity values (scale 1, slope 1, shifts 0,
// clamp to +-inf, a zero residual), which are exact no-ops in float arithmetic. That keeps the loop below
// branch-free so it vectorizes on every ISA. When there are no shifts and no clamp (`plain`), the identity steps
// are skipped instead (the branches are loop-invariant); the values are the same up to the sign of a zero.
struct Epilogue {
    const float* scale = nullptr;
    const float* bias = nullptr;
    const float* res = nullptr;        // same shape as the output (NHWC) or null
    const float* slope = nullptr;
    const float* shift_in = nullptr;
    const float* shift_out = nullptr;
    const float* zeros = nullptr;      // at least as many zeros as channels: the "no residual" operand
    bool act_first = false;
    float clamp_lo = 0.f, clamp_hi = 0.f;
    // No shifts and no clamp (the usual BN + residual + PReLU): the identity steps (+0, clamp to +-inf) are
    // skipped. They change nothing but the sign of a zero result, and every ISA path skips them alike.
    bool plain = false;
    bool has_act = false;  // slope given (otherwise the activation is the identity and is skipped when plain)
};

// y[j] = epilogue(load(j)) for channels o0..o0+n; r = residual values of these channels or null.
template <typename Load>
static inline void epilogue_store(const Epilogue& e, int o0, int n, Load load, const float* r, float* y) {
    const float* __restrict sc = e.scale + o0;
    const float* __restrict bi = e.bias + o0;
    const float* __restrict sl = e.slope + o0;
    const float* __restrict si = e.shift_in + o0;
    const float* __restrict so = e.shift_out + o0;
    const float* __restrict r1 = (r && !e.act_first) ? r : e.zeros;
    const float* __restrict r2 = (r && e.act_first) ? r : e.zeros;
    const float lo = e.clamp_lo, hi = e.clamp_hi;
    if (e.plain) {
        const float* __restrict ra = (r && !e.act_first) ? r : nullptr;
        const float* __restrict rb = (r && e.act_first) ? r : nullptr;
        for (int j = 0; j < n; ++j) {
            float v = load(j) * sc[j] + bi[j];
            if (ra) v += ra[j];
            if (e.has_act) v = v >= 0.f ? v : sl[j] * v;
            if (rb) v += rb[j];
            y[j] = v;
        }
        return;
    }
    for (int j = 0; j < n; ++j) {
        float v = load(j) * sc[j] + bi[j];
        v += r1[j];
        const float u = v + si[j];
        v = (u >= 0.f ? u : sl[j] * u) + so[j];
        v += r2[j];
        v = v < lo ? lo : (v > hi ? hi : v);
        y[j] = v;
    }
}

// Everything one binary conv call needs.
struct BConvArgs {
    const uint64_t* x;        // packed, padded input (N, Hp, Wp, wd)
    const uint64_t* wblk;     // blocked weights [cout_pad/OCB][k*k*wd][OCB]
    const int32_t* wsum;      // [cout_pad/OCB][k*k][OCB]: sum of the +-1 weights of each tap (Cin - 2*popcount),
                              // blocked like wblk so one tap's OCB sums are one vector (0 past cout)
    float* out;               // (N, Ho, Wo, cout)
    int64_t n;
    int h, w, hp, wp, wd, cin, cout, k, stride, pad, pad_value, ho, wo;
    Epilogue epi;
};

// One output row (n, oh) for one block of OCB output channels; one implementation per ISA.
void bconv_row_portable(const BConvArgs& a, int64_t n, int oh, int ob);
void bconv_row_avx2(const BConvArgs& a, int64_t n, int oh, int ob);
void bconv_row_avx512(const BConvArgs& a, int64_t n, int oh, int ob);

// True when output pixel (oh, ow) reads a zero-padded tap that the packed buffer holds as +1.
static inline bool needs_pad_correction(const BConvArgs& a, int oh, int ow) {
    if (a.pad_value != 0 || a.pad == 0) return false;
    const int ih0 = oh * a.stride - a.pad, iw0 = ow * a.stride - a.pad;
    return ih0 < 0 || ih0 + a.k > a.h || iw0 < 0 || iw0 + a.k > a.w;
}

// The zero-padding correction of output pixel (oh, ow) for the OCB channels of block ob: padded taps must contribute
// 0, but the packed buffer holds +1 there, so the sum of each padded tap's +-1 weights is subtracted from the dot
// product. corr[j] = that sum for channel ob*OCB + j (0 for channels past cout: their wsum is 0).
static inline void pad_correction(const BConvArgs& a, int oh, int ow, int ob, int32_t* corr) {
    const int kk = a.k * a.k;
    const int32_t* ws = a.wsum + static_cast<int64_t>(ob) * kk * OCB;
    const int ih0 = oh * a.stride - a.pad, iw0 = ow * a.stride - a.pad;
    for (int j = 0; j < OCB; ++j) corr[j] = 0;
    for (int kh = 0; kh < a.k; ++kh) {
        const int ih = ih0 + kh;
        const bool hin = ih >= 0 && ih < a.h;
        for (int kw = 0; kw < a.k; ++kw) {
            const int iw = iw0 + kw;
            if (hin && iw >= 0 && iw < a.w) continue;
            const int32_t* t = ws + (kh * a.k + kw) * OCB;
            for (int j = 0; j < OCB; ++j) corr[j] += t[j];
        }
    }
}

// Converts the popcounts of `np` pixels (row n, oh, starting at ow0) x OCB channels to outputs. Inline in the
// header so each ISA's translation unit vectorizes it (-ffp-contract=off keeps the results identical).
static inline void finish_tile(const BConvArgs& a, int64_t n, int oh, int ow0, int np, int ob, const int64_t* cnt) {
    const int o0 = ob * OCB;
    const int oc = a.cout - o0 < OCB ? a.cout - o0 : OCB;
    const int64_t kfull = static_cast<int64_t>(a.k) * a.k * a.cin;
    alignas(64) int32_t corr[OCB];
    for (int p = 0; p < np; ++p) {
        const int ow = ow0 + p;
        const int64_t* c = cnt + p * OCB;
        const int64_t idx = ((n * a.ho + oh) * a.wo + ow) * a.cout + o0;
        const float* r = a.epi.res ? a.epi.res + idx : nullptr;
        if (needs_pad_correction(a, oh, ow)) {
            pad_correction(a, oh, ow, ob, corr);
            epilogue_store(a.epi, o0, oc, [&](int j) { return static_cast<float>(kfull - 2 * c[j] - corr[j]); },
                           r, a.out + idx);
        } else if (oc == OCB) {
            epilogue_store(a.epi, o0, OCB, [&](int j) { return static_cast<float>(kfull - 2 * c[j]); }, r,
                           a.out + idx);
        } else {
            epilogue_store(a.epi, o0, oc, [&](int j) { return static_cast<float>(kfull - 2 * c[j]); }, r,
                           a.out + idx);
        }
    }
}

// Real-valued conv: one output row (n, oh). `cols` is that row's im2col buffer (wo x kdim, zero padded), weights
// are (kdim, cout_pad) with cout_pad a multiple of 16 (zero columns past cout). Every output accumulates
// fma(x_k, w_k, acc) for k = 0..kdim-1 in order, on every ISA, so all paths round identically.
struct FConvArgs {
    const float* w;
    float* out;  // (N, Ho, Wo, cout)
    int kdim, cout, cout_pad, ho, wo;
    Epilogue epi;
};
void fconv_row_portable(const FConvArgs& a, const float* cols, int64_t n, int oh);
void fconv_row_avx2(const FConvArgs& a, const float* cols, int64_t n, int oh);
void fconv_row_avx512(const FConvArgs& a, const float* cols, int64_t n, int oh);
// Direct form of fconv_row_avx512 (same arithmetic, same order): reads the image n zero-padded to rows of
// `wpad` pixels x cin channels (xpad points at its first padded row) instead of an im2col buffer.
// The row's outputs go to orow (wo x cout floats): a.out + (n * ho + oh) * wo * cout, or a scratch row.
void fconv_direct_row_avx512(const FConvArgs& a, const float* xpad, int wpad, int cin, int k, int stride, int64_t n,
                             int oh, float* orow);

// Stores P pixels x nch channels of accumulators `acc` (row stride ld) to the output with the epilogue.
static inline void fconv_store(const FConvArgs& a, int64_t n, int oh, int ow0, int np, int c0, int nch,
                               const float* acc, int ld) {
    const int oc = a.cout - c0 < nch ? a.cout - c0 : nch;
    if (oc <= 0) return;
    for (int p = 0; p < np; ++p) {
        const int64_t idx = ((n * a.ho + oh) * a.wo + ow0 + p) * a.cout + c0;
        const float* v = acc + p * ld;
        epilogue_store(a.epi, c0, oc, [&](int j) { return v[j]; }, a.epi.res ? a.epi.res + idx : nullptr,
                       a.out + idx);
    }
}

// ------------------------------------------------------------------ Winograd F(3,4) stride-2 real conv (the stem)
// A stride-2 k x k conv (the 7x7 stem) is, along each axis, two stride-1 correlations over the even and the odd
// input columns (rows), "phases", with the even and the odd taps. Each phase's taps go in chunks of at most four
// through Winograd F(3,4) on the points 0, 1, -1, 2, -2, inf (the point set of Lavin & Gray's F(4,3)): three
// outputs from six products V_j U_j. A chunk with fewer taps is zero-padded, which makes its inf product zero, so
// it takes five. Every chunk has the same output transform A^T, so all products are summed in the transformed
// domain (M_j += V_j U_j) and transformed back once:
//   y0 = (M0 + a) + c,   y1 = b + (d + d),   y2 = (a + 4 c) + M5,   a, b = M1 +- M2,  c, d = M3 +- M4.
// Inputs d0..d5 of a chunk (phase elements 3q + m0 + t, i.e. padded columns 6q + 2 m0 + ph + 2t) give
//   V0 = (4 d0 + d4) - 5 d2        V1 = 4 (d1 + d2) - (d3 + d4)   V2 = 4 (d2 - d1) + (d3 - d4)
//   V3 = 2 (d3 - d1) + (d4 - d2)   V4 = 2 (d1 - d3) + (d4 - d2)   V5 = (4 d1 + d5) - 5 d3      (V5: full chunks)
// and taps g0..g3 (zero past the chunk) U = (g0/4, (g0+g1+g2+g3)/6, (g0-g1+g2-g3)/6, (g0+2g1+4g2+8g3)/24,
// (g0-2g1+4g2-8g3)/24, g3). For k = 7: 11 products per 3 outputs instead of 21; the 2-D form below applies the
// same scheme along the height (121 instead of 441 multiply-adds per 3x3 outputs, input and output channel).
// Weights are transformed in double and rounded once. Every ISA runs exactly the same float operations in the same
// order per output value, so the paths agree bit for bit.
constexpr int kWinoM = 3;  // outputs per tile along each axis
constexpr int kWinoN = 6;  // products per full chunk (points)
constexpr int kWinoR = 4;  // taps per full chunk

struct WinoPlan {
    int k = 0, cin = 0;
    int nchunks = 0, nterms = 0;  // per axis; terms: 6 per full chunk, 5 per short one
    int cph[4] = {}, cm[4] = {}, cn[4] = {};  // phase, first phase tap, products of each chunk
    int span = 0;  // padded columns (rows) a tile reads: [6 q, 6 q + span)
    int acc[4 * kWinoN] = {};  // term -> accumulator (its product index j)
};

static inline WinoPlan make_wino_plan(int k, int cin) {
    WinoPlan pl;
    pl.k = k;
    pl.cin = cin;
    for (int ph = 0; ph < 2; ++ph) {
        const int ntaps = (k - ph + 1) / 2;  // kernel columns kw = 2m + ph
        for (int m = 0; m < ntaps; m += kWinoR) {
            const int c = pl.nchunks++;
            pl.cph[c] = ph;
            pl.cm[c] = m;
            pl.cn[c] = ntaps - m >= kWinoR ? kWinoN : kWinoN - 1;
            for (int j = 0; j < pl.cn[c]; ++j) pl.acc[pl.nterms++] = j;
            pl.span = std::max(pl.span, 2 * (m + pl.cn[c] - 1) + ph + 1);  // input t = cn - 1 is the last read
        }
    }
    return pl;
}

// Tiles per block of a transformed row (the AVX-512 register tile width).
#ifndef BIREID_WINO_QB
#define BIREID_WINO_QB 4
#endif
constexpr int kWinoQB = BIREID_WINO_QB;

// Column-transformed input rows (wino_transform_row) are laid out [ci][nqb][term][kWinoQB]: tiles of three output
// columns in blocks of kWinoQB (nqb = ceil(nq / kWinoQB); tiles past nq are computed and never stored), so a
// kernel block reads each term's inputs at fixed offsets.
static inline int wino_nqb(int nq) { return (nq + kWinoQB - 1) / kWinoQB; }
static inline int64_t wino_qs(int nq) { return static_cast<int64_t>(wino_nqb(nq)) * kWinoQB; }  // tile stride
// Floats per transformed row.
static inline int64_t wino_row_floats(const WinoPlan& pl, int nq) {
    return static_cast<int64_t>(pl.cin) * pl.nterms * wino_qs(nq);
}
// Offset of term j, tile q in the transformed row of one input channel.
static inline int64_t wino_at(int nt, int j, int q) {
    return (static_cast<int64_t>(q / kWinoQB) * nt + j) * kWinoQB + q % kWinoQB;
}

// The input transform of one chunk, elementwise over n lanes: term j of lane i goes to o[j * os + i]; d5 is read
// only when full (six products).
static inline void wino_terms(const float* __restrict d0, const float* __restrict d1, const float* __restrict d2,
                              const float* __restrict d3, const float* __restrict d4, const float* __restrict d5,
                              bool full, float* __restrict o, int64_t os, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float x0 = d0[i], x1 = d1[i], x2 = d2[i], x3 = d3[i], x4 = d4[i];
        o[i] = (4.f * x0 + x4) - 5.f * x2;
        o[os + i] = 4.f * (x1 + x2) - (x3 + x4);
        o[2 * os + i] = 4.f * (x2 - x1) + (x3 - x4);
        o[3 * os + i] = 2.f * (x3 - x1) + (x4 - x2);
        o[4 * os + i] = 2.f * (x1 - x3) + (x4 - x2);
    }
    if (full)
        for (int64_t i = 0; i < n; ++i) o[5 * os + i] = (4.f * d1[i] + d5[i]) - 5.f * d3[i];
}

// Transforms padded input row r (image rows shifted by pad; rows and columns outside the image are zeros) of one
// image x (NCHW: c x h x w, or NHWC: h x w x c) into dst (layout above). `scratch` holds at least
// wino_scratch_floats(pl, nq) floats.
static inline int wino_scratch_cols(const WinoPlan& pl, int nq) { return wino_nqb(nq) * kWinoQB + pl.span / 6 + 2; }
static inline int64_t wino_scratch_floats(const WinoPlan& pl, int nq) {
    return 6 * static_cast<int64_t>(wino_scratch_cols(pl, nq)) + pl.nterms * wino_qs(nq);
}
static inline void wino_transform_row(const WinoPlan& pl, const float* x, bool nchw, int h, int w, int pad, int r,
                                      int nq, float* dst, float* scratch) {
    const int c = pl.cin, nt = pl.nterms;
    const int64_t qs = wino_qs(nq);
    const int ih = r - pad;
    if (ih < 0 || ih >= h) {
        for (int64_t i = 0; i < wino_row_floats(pl, nq); ++i) dst[i] = 0.f;
        return;
    }
    // The padded row split by column mod 6: R[m][i] = padded column 6 i + m (zero outside the image). Input t of a
    // tile q reads padded column 6 q + o for a fixed o, i.e. R[o % 6][q + o / 6]: contiguous in q.
    const int nr = wino_scratch_cols(pl, nq);
    float* R[6];
    for (int m = 0; m < 6; ++m) R[m] = scratch + m * nr;
    float* tt = scratch + 6 * nr;  // [term][tile]: the terms over whole rows, then blocked into dst
    const int64_t es = nchw ? 1 : c;  // element stride along the row
    for (int ci = 0; ci < c; ++ci) {
        const float* src = nchw ? x + (static_cast<int64_t>(ci) * h + ih) * w : x + static_cast<int64_t>(ih) * w * c + ci;
        for (int m = 0; m < 6; ++m) {
            // padded column 6 i + m is image column 6 i + m - pad: inside for i in [i0, i1)
            const int i0 = std::min(nr, std::max(0, (pad - m + 5) / 6));
            const int i1 = std::min(nr, std::max(i0, (w + pad - m + 5) / 6));
            float* __restrict d = R[m];
            for (int i = 0; i < i0; ++i) d[i] = 0.f;
            const float* __restrict s = src + (6 * static_cast<int64_t>(i0) + m - pad) * es;
            const int64_t step = 6 * es;
            for (int i = 0; i < i1 - i0; ++i) d[i0 + i] = s[i * step];
            for (int i = i1; i < nr; ++i) d[i] = 0.f;
        }
        float* t = tt;
        // Tiles past nq (the last block's tail) are computed like the others and never stored.
        for (int ch = 0; ch < pl.nchunks; ++ch) {
            const float* d[6] = {};
            for (int j = 0; j < pl.cn[ch]; ++j) {
                const int o = 2 * (pl.cm[ch] + j) + pl.cph[ch];  // input j is padded column 6 q + o
                d[j] = R[o % 6] + o / 6;
            }
            const bool full = pl.cn[ch] == kWinoN;
            wino_terms(d[0], d[1], d[2], d[3], d[4], d[5], full, t, qs, qs);
            t += pl.cn[ch] * qs;
        }
        float* o = dst + static_cast<int64_t>(ci) * nt * qs;
        for (int64_t q0 = 0; q0 < qs; q0 += kWinoQB)
            for (int j = 0; j < nt; ++j, o += kWinoQB)
                for (int p = 0; p < kWinoQB; ++p) o[p] = tt[j * qs + q0 + p];
    }
}

// The same transform compiled for AVX-512 (vectorized by the compiler; the same operations, so the same values).
void wino_transform_row_avx512(const WinoPlan& pl, const float* x, bool nchw, int h, int w, int pad, int r, int nq,
                               float* dst, float* scratch);


// ---- 2-D form: the same chunks along the height. Output rows 3s .. 3s+2 are a stride-1 correlation over the even
// and the odd padded rows; row chunk (ph, m0) reads column-transformed rows D_t = padded row 6s + 2 (m0 + t) + ph
// and makes its row terms with the same formulas (elementwise over whole rows). Per row accumulator RA and column
// accumulator CA, M[RA][CA] accumulates fma(t, u, M) over the row terms of RA in order, ci, then the column terms
// of CA in order; then the output transform along the columns (per RA: M[RA][0..5] -> Y[RA][e]) and along the
// rows (Y[0..5][e] -> rows 3s .. 3s+2).

// Everything a 2-D call needs: `u` the 2-D transformed weights [cout_pad / 16][rterm][ci][cterm][16]; `t` the row
// tile's transformed input, nterms rows of wino_row_floats(pl, nq) floats (one per row term, layout of a
// column-transformed row).
struct Wino2Args {
    const float* u;
    const float* t;
    int nq;
    WinoPlan pl;
};

// Builds the row tile's 2-D input from the column-transformed padded rows: rows(r) returns row r (padded index).
template <typename Rows>
static inline void wino2_tile_transform(const WinoPlan& pl, int nq, int s, Rows rows, float* dst) {
    const int64_t tsz = wino_row_floats(pl, nq);
    float* d = dst;
    for (int ch = 0; ch < pl.nchunks; ++ch) {
        const float* D[6] = {};
        for (int j = 0; j < pl.cn[ch]; ++j) D[j] = rows(6 * s + 2 * (pl.cm[ch] + j) + pl.cph[ch]);
        const bool full = pl.cn[ch] == kWinoN;
        wino_terms(D[0], D[1], D[2], D[3], D[4], D[5], full, d, tsz, tsz);
        d += pl.cn[ch] * tsz;
    }
}
void wino2_tile_transform_avx512(const WinoPlan& pl, int nq, int s, const float* const* rowptrs, float* dst);

// The output transform of six accumulators (one lane): y[0..2] (the formulas above).
static inline void wino_out3(float m0, float m1, float m2, float m3, float m4, float m5, float* y) {
    const float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
    y[0] = (m0 + a) + c;
    y[1] = b + (d + d);
    y[2] = (a + 4.f * c) + m5;
}

// Generic 2-D kernel for output rows 3s + er (orows[er], null when past the output): 16 channels x one tile of
// three columns at a time.
static inline void wino2_rows_generic(const FConvArgs& a, const Wino2Args& wa, int64_t n, int s,
                                      float* const* orows) {
    const WinoPlan& pl = wa.pl;
    const int c = pl.cin, nt = pl.nterms, nq = wa.nq;
    constexpr int N = kWinoN, M = kWinoM;
    const int64_t tsz = wino_row_floats(pl, nq), qs = wino_qs(nq);
    const int64_t cstride = nt * qs;  // per input channel
    const int64_t ublk = static_cast<int64_t>(nt) * c * nt * 16;
    float acc[N][N][16];
    float Y[N][M][16], y[M][M][16];
    for (int q = 0; q < nq; ++q)
        for (int c0 = 0; c0 < a.cout_pad && c0 < a.cout; c0 += 16) {
            for (int ra = 0; ra < N; ++ra) {
                for (int ca = 0; ca < N; ++ca)
                    for (int l = 0; l < 16; ++l) acc[ra][ca][l] = 0.f;
                for (int rt = 0; rt < nt; ++rt) {
                    if (pl.acc[rt] != ra) continue;
                    for (int ci = 0; ci < c; ++ci) {
                        const float* t = wa.t + rt * tsz + ci * cstride + wino_at(nt, 0, q);
                        const float* u = wa.u + (c0 / 16) * ublk + (static_cast<int64_t>(rt) * c + ci) * nt * 16;
                        for (int ct = 0; ct < nt; ++ct) {
                            const int ca = pl.acc[ct];
                            const float tv = t[ct * kWinoQB];
                            for (int l = 0; l < 16; ++l) acc[ra][ca][l] = std::fma(tv, u[ct * 16 + l], acc[ra][ca][l]);
                        }
                    }
                }
            }
            float v[M];
            for (int ra = 0; ra < N; ++ra)
                for (int l = 0; l < 16; ++l) {
                    const float(*A)[16] = acc[ra];
                    wino_out3(A[0][l], A[1][l], A[2][l], A[3][l], A[4][l], A[5][l], v);
                    for (int e = 0; e < M; ++e) Y[ra][e][l] = v[e];
                }
            for (int e = 0; e < M; ++e)
                for (int l = 0; l < 16; ++l) {
                    wino_out3(Y[0][e][l], Y[1][e][l], Y[2][e][l], Y[3][e][l], Y[4][e][l], Y[5][e][l], v);
                    for (int er = 0; er < M; ++er) y[er][e][l] = v[er];
                }
            const int oc = a.cout - c0 < 16 ? a.cout - c0 : 16;
            for (int er = 0; er < M; ++er) {
                float* orow = orows[er];
                if (!orow) continue;
                const int oh = M * s + er;
                for (int e = 0; e < M && M * q + e < a.wo; ++e) {
                    const int ow = M * q + e;
                    const int64_t idx = ((n * a.ho + oh) * a.wo + ow) * a.cout + c0;
                    const float* yv = y[er][e];
                    epilogue_store(a.epi, c0, oc, [&](int j) { return yv[j]; }, a.epi.res ? a.epi.res + idx : nullptr,
                                   orow + static_cast<int64_t>(ow) * a.cout + c0);
                }
            }
        }
}
void wino2_rows_avx512(const FConvArgs& a, const Wino2Args& wa, int64_t n, int s, float* const* orows);
// The generic Winograd / pooling code compiled for AVX2 + FMA (kernels_avx2.cpp).
void wino_transform_row_avx2(const WinoPlan& pl, const float* x, bool nchw, int h, int w, int pad, int r, int nq,
                             float* dst, float* scratch);
void wino2_tile_transform_avx2(const WinoPlan& pl, int nq, int s, const float* const* rowptrs, float* dst);
void wino2_rows_avx2(const FConvArgs& a, const Wino2Args& wa, int64_t n, int s, float* const* orows);
void maxpool_rows_avx2(const float* const* rows, int nrows, float* dst, int w, int64_t c, int k, int stride, int pad,
                       int wo);

// Max of a window given as nrows input rows (w x c floats each), for wo output columns: the scalar pool2d's rule
// (take p when p > acc or p is NaN; rows in order, then columns), so it is exact and equal on every ISA.
static inline void maxpool_rows_generic(const float* const* rows, int nrows, float* dst, int w, int64_t c, int k,
                                        int stride, int pad, int wo) {
    for (int ow = 0; ow < wo; ++ow) {
        const int w0 = ow * stride - pad;
        const int ws = w0 < 0 ? 0 : w0, we = w0 + k < w ? w0 + k : w;
        float* d = dst + static_cast<int64_t>(ow) * c;
        for (int64_t j = 0; j < c; ++j) d[j] = -std::numeric_limits<float>::infinity();
        for (int r = 0; r < nrows; ++r)
            for (int iw = ws; iw < we; ++iw) {
                const float* p = rows[r] + static_cast<int64_t>(iw) * c;
                for (int64_t j = 0; j < c; ++j) d[j] = (p[j] > d[j] || p[j] != p[j]) ? p[j] : d[j];
            }
    }
}

// sign(x - t) of npix consecutive pixels (c floats each) -> wd words each; t == null means a zero threshold.
void pack_rows_portable(const float* x, const float* t, uint64_t* dst, int64_t npix, int c, int wd);
void pack_rows_avx512(const float* x, const float* t, uint64_t* dst, int64_t npix, int c, int wd);

// Max pooling of one output row oh (all wo pixels, all c channels) of one NHWC image x (h, w, c) into dst.
// Exact (a max), so it may differ from the scalar pool2d only in speed.
void maxpool_row_avx512(const float* x, float* dst, int h, int w, int64_t c, int k, int stride, int pad, int oh,
                        int wo);
// The same for a window given as its nrows (already clipped) input rows, each w x c floats.
void maxpool_rows_avx512(const float* const* rows, int nrows, float* dst, int w, int64_t c, int k, int stride, int pad,
                         int wo);

}  // namespace bireid
