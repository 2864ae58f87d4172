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

// ------------------------------------------------------------------------ Winograd F(2,3) stride-2 real conv
// A stride-2 k x k conv (the 7x7 stem) is, along each axis, two stride-1 convs over the even and the odd input
// columns (rows): "phases". Each phase's taps go in groups of three through Winograd F(2,3) (two outputs from four
// products instead of six) and the leftover taps directly. Along the width, per output column pair q, a group with
// inputs d0..d3 (the phase's columns 2q+m0 .. 2q+m0+3) and taps g0..g2 gives the four terms t = (d0-d2, d1+d2,
// d2-d1, d1-d3) with weights u = (g0, (g0+g1+g2)/2, (g0-g1+g2)/2, g2) for accumulators M0..M3; a direct tap g at
// column 2q+m gives (d_m, g) for M0 and (d_{m+1}, -g) for M3; then y(2q) = (M0 + M1) + M2 and
// y(2q+1) = (M1 - M2) - M3 (10 instead of 14 products per output pair for k = 7). wino_transform_row makes the
// column terms of one input row; the 2-D form below applies the same transform along the height. Weights are
// transformed in double and rounded once. Every ISA runs exactly the same float operations in the same order per
// output value, so the paths agree bit for bit.
struct WinoPlan {
    int k = 0, cin = 0;
    int ngroups = 0, ndirect = 0, nterms = 0;  // per (kh, ci): 4 terms per group, then 2 per direct tap
    int gph[8] = {}, gm[8] = {}, dph[8] = {}, dm[8] = {};  // phase and first phase column of groups / directs
};

static inline WinoPlan make_wino_plan(int k, int cin) {
    WinoPlan pl;
    pl.k = k;
    pl.cin = cin;
    for (int ph = 0; ph < 2; ++ph) {
        const int ntaps = (k - ph + 1) / 2;  // kernel columns kw = 2m + ph
        int m = 0;
        for (; m + 3 <= ntaps; m += 3) {
            pl.gph[pl.ngroups] = ph;
            pl.gm[pl.ngroups++] = m;
        }
        for (; m < ntaps; ++m) {
            pl.dph[pl.ndirect] = ph;
            pl.dm[pl.ndirect++] = m;
        }
    }
    pl.nterms = 4 * pl.ngroups + 2 * pl.ndirect;
    return pl;
}

// Column pairs per block of a transformed row (the AVX-512 tile width).
#ifndef BIREID_WINO_QB
#define BIREID_WINO_QB 4
#endif
constexpr int kWinoQB = BIREID_WINO_QB;

// Column-transformed input rows (wino_transform_row) are laid out [ci][nqb][term][kWinoQB]: column pairs in blocks
// of kWinoQB (nqb = ceil(nq / kWinoQB); pairs past nq are computed and never stored), so a kernel tile reads each
// term's inputs at fixed offsets.
static inline int wino_nqb(int nq) { return (nq + kWinoQB - 1) / kWinoQB; }
// Floats per transformed row.
static inline int64_t wino_row_floats(const WinoPlan& pl, int nq) {
    return static_cast<int64_t>(pl.cin) * wino_nqb(nq) * pl.nterms * kWinoQB;
}


// The F(2,3) input transform of one block of column pairs: t[j * B + p] from d_j = a_j[p].
static inline void wino_group_terms(const float* __restrict a0, const float* __restrict a1, const float* __restrict a2,
                                    const float* __restrict a3, float* __restrict t) {
    constexpr int B = kWinoQB;
    for (int p = 0; p < B; ++p) {
        t[p] = a0[p] - a2[p];
        t[B + p] = a1[p] + a2[p];
        t[2 * B + p] = a2[p] - a1[p];
        t[3 * B + p] = a1[p] - a3[p];
    }
}

// Transforms padded input row r (image rows shifted by pad; rows and columns outside the image are zeros) of one
// image x (NCHW: c x h x w, or NHWC: h x w x c) into dst (layout above). `scratch` holds at least
// wino_scratch_floats(pl, nq) floats.
static inline int64_t wino_scratch_floats(const WinoPlan& pl, int nq) {
    return 4 * (static_cast<int64_t>(wino_nqb(nq)) * kWinoQB + pl.k + 4);
}
static inline void wino_transform_row(const WinoPlan& pl, const float* x, bool nchw, int h, int w, int pad, int r,
                                      int nq, float* dst, float* scratch) {
    const int c = pl.cin, nt = pl.nterms, nqb = wino_nqb(nq);
    constexpr int B = kWinoQB;
    const int ih = r - pad;
    if (ih < 0 || ih >= h) {
        for (int64_t i = 0; i < wino_row_floats(pl, nq); ++i) dst[i] = 0.f;
        return;
    }
    // The padded row split by column mod 4: R[m][i] = padded column 4 i + m (zero outside the image). A term of
    // pair q reads padded column 4 q + o for a fixed o, i.e. R[o % 4][q + o / 4]: contiguous in q.
    const int nr = nqb * B + pl.k + 4;
    float* R[4] = {scratch, scratch + nr, scratch + 2 * nr, scratch + 3 * nr};
    const int64_t es = nchw ? 1 : c;  // element stride along the row
    for (int ci = 0; ci < c; ++ci) {
        const float* src = nchw ? x + (static_cast<int64_t>(ci) * h + ih) * w : x + static_cast<int64_t>(ih) * w * c + ci;
        for (int m = 0; m < 4; ++m) {
            // padded column 4 i + m is image column 4 i + m - pad: inside for i in [i0, i1)
            const int i0 = std::min(nr, std::max(0, (pad - m + 3) / 4));
            const int i1 = std::min(nr, std::max(i0, (w + pad - m + 3) / 4));
            float* __restrict d = R[m];
            for (int i = 0; i < i0; ++i) d[i] = 0.f;
            const float* __restrict s = src + (4 * static_cast<int64_t>(i0) + m - pad) * es;
            const int64_t step = 4 * es;
            for (int i = 0; i < i1 - i0; ++i) d[i0 + i] = s[i * step];
            for (int i = i1; i < nr; ++i) d[i] = 0.f;
        }
        float* t = dst + static_cast<int64_t>(ci) * nqb * nt * B;
        // Pairs past nq (the last block's tail) are computed like the others and never stored.
        for (int qb = 0; qb < nqb; ++qb) {
            const int q0 = qb * B;
            for (int g = 0; g < pl.ngroups; ++g, t += 4 * B) {
                const int o = 2 * pl.gm[g] + pl.gph[g];  // d_j is padded column 4 q + o + 2 j
                const float* a0 = R[o & 3] + q0 + (o >> 2);
                const float* a1 = R[(o + 2) & 3] + q0 + ((o + 2) >> 2);
                const float* a2 = R[(o + 4) & 3] + q0 + ((o + 4) >> 2);
                const float* a3 = R[(o + 6) & 3] + q0 + ((o + 6) >> 2);
                wino_group_terms(a0, a1, a2, a3, t);
            }
            for (int d = 0; d < pl.ndirect; ++d, t += 2 * B) {
                const int o = 2 * pl.dm[d] + pl.dph[d];  // columns 4 q + o and 4 q + o + 2
                const float* a0 = R[o & 3] + q0 + (o >> 2);
                const float* a1 = R[(o + 2) & 3] + q0 + ((o + 2) >> 2);
                for (int p = 0; p < B; ++p) {
                    t[p] = a0[p];
                    t[B + p] = a1[p];
                }
            }
        }
    }
}

// The same transform compiled for AVX-512 (vectorized by the compiler; adds and subtracts only, so the values are
// identical).
void wino_transform_row_avx512(const WinoPlan& pl, const float* x, bool nchw, int h, int w, int pad, int r, int nq,
                               float* dst, float* scratch);


// ---- 2-D form: F(2,3) along the height too. Output rows 2s and 2s+1 are a stride-1 correlation over the even and
// the odd padded rows, split into the same groups / direct taps as the columns (the plan is the same for both
// axes). A row term combines column-transformed rows (each as wino_transform_row makes it): a group with rows
// D0..D3 (padded rows 2 (2s + m0 + j) + ph) gives D0-D2, D1+D2, D2-D1, D1-D3 for row accumulators 0..3, a direct
// tap gives D_m (row accumulator 0) and D_{m+1} (row accumulator 3, negated weight). Per row accumulator RA and
// column accumulator CA, M[RA][CA] accumulates fma(t, u, M) over the row terms of RA in order, ci, then the column
// terms of CA in order; then per output column e: Y[RA] = (M[RA][0] + M[RA][1]) + M[RA][2] (e = 0) or
// (M[RA][1] - M[RA][2]) - M[RA][3] (e = 1), and row 2s = (Y[0] + Y[1]) + Y[2], row 2s+1 = (Y[1] - Y[2]) - Y[3].
// 100 instead of 196 multiply-adds per 2x2 outputs, input channel and output channel for k = 7.

// Row term rt of the plan -> its row accumulator.
static inline int wino_term_acc(const WinoPlan& pl, int rt) {
    return rt < 4 * pl.ngroups ? rt % 4 : ((rt - 4 * pl.ngroups) % 2 == 0 ? 0 : 3);
}

// Everything a 2-D call needs: `u` the 2-D transformed weights [cout_pad / 16][rterm][ci][cterm][16]; `t` the row
// pair's transformed input, nterms rows of wino_row_floats(pl, nq) floats (one per row term, layout of a
// column-transformed row).
struct Wino2Args {
    const float* u;
    const float* t;
    int nq;
    WinoPlan pl;
};

// The F(2,3) transform across four rows, elementwise (separate function: restrict-qualified, so it vectorizes).
static inline void wino_rows_group(const float* __restrict D0, const float* __restrict D1, const float* __restrict D2,
                                   const float* __restrict D3, float* __restrict o0, float* __restrict o1,
                                   float* __restrict o2, float* __restrict o3, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        o0[i] = D0[i] - D2[i];
        o1[i] = D1[i] + D2[i];
        o2[i] = D2[i] - D1[i];
        o3[i] = D1[i] - D3[i];
    }
}

// Builds the row pair's 2-D input from the column-transformed padded rows: rows(r) returns row r (padded index).
template <typename Rows>
static inline void wino2_pair_transform(const WinoPlan& pl, int nq, int s, Rows rows, float* dst) {
    const int64_t tsz = wino_row_floats(pl, nq);
    float* d = dst;
    for (int g = 0; g < pl.ngroups; ++g) {
        const int ph = pl.gph[g], m0 = pl.gm[g];
        const float* __restrict D0 = rows(2 * (2 * s + m0) + ph);
        const float* __restrict D1 = rows(2 * (2 * s + m0 + 1) + ph);
        const float* __restrict D2 = rows(2 * (2 * s + m0 + 2) + ph);
        const float* __restrict D3 = rows(2 * (2 * s + m0 + 3) + ph);
        wino_rows_group(D0, D1, D2, D3, d, d + tsz, d + 2 * tsz, d + 3 * tsz, tsz);
        d += 4 * tsz;
    }
    for (int dt = 0; dt < pl.ndirect; ++dt) {
        const int ph = pl.dph[dt], m = pl.dm[dt];
        const float* __restrict D0 = rows(2 * (2 * s + m) + ph);
        const float* __restrict D1 = rows(2 * (2 * s + m + 1) + ph);
        for (int64_t i = 0; i < tsz; ++i) {
            d[i] = D0[i];
            d[tsz + i] = D1[i];
        }
        d += 2 * tsz;
    }
}
void wino2_pair_transform_avx512(const WinoPlan& pl, int nq, int s, const float* const* rowptrs, float* dst);

// Combines the 16 accumulator values M[RA][CA] (each 16 lanes, at m + (RA * 4 + CA) * 16) of one column pair into
// the two rows x two columns of outputs y[er][ec][16].
static inline void wino2_combine(const float* m, float (*y)[2][16]) {
    float Y[4][2][16];
    for (int ra = 0; ra < 4; ++ra)
        for (int l = 0; l < 16; ++l) {
            const float* M = m + ra * 64;
            Y[ra][0][l] = (M[l] + M[16 + l]) + M[32 + l];
            Y[ra][1][l] = (M[16 + l] - M[32 + l]) - M[48 + l];
        }
    for (int e = 0; e < 2; ++e)
        for (int l = 0; l < 16; ++l) {
            y[0][e][l] = (Y[0][e][l] + Y[1][e][l]) + Y[2][e][l];
            y[1][e][l] = (Y[1][e][l] - Y[2][e][l]) - Y[3][e][l];
        }
}

// Generic 2-D kernel for output rows 2s (orow0) and 2s+1 (orow1, null when past the output): 16 channels x one
// column pair at a time.
static inline void wino2_rows_generic(const FConvArgs& a, const Wino2Args& wa, int64_t n, int s, float* orow0,
                                      float* orow1) {
    const WinoPlan& pl = wa.pl;
    const int c = pl.cin, nt = pl.nterms, nq = wa.nq;
    constexpr int B = kWinoQB;
    const int64_t tsz = wino_row_floats(pl, nq);
    const int64_t cstride = static_cast<int64_t>(wino_nqb(nq)) * nt * B;
    const int64_t ublk = static_cast<int64_t>(nt) * c * nt * 16;
    alignas(64) float M[16][16];
    float y[2][2][16];
    for (int q = 0; q < nq; ++q)
        for (int c0 = 0; c0 < a.cout_pad && c0 < a.cout; c0 += 16) {
            for (int ra = 0; ra < 4; ++ra) {
                for (int ca = 0; ca < 4; ++ca)
                    for (int l = 0; l < 16; ++l) M[ra * 4 + ca][l] = 0.f;
                for (int rt = 0; rt < nt; ++rt) {
                    if (wino_term_acc(pl, rt) != ra) continue;
                    for (int ci = 0; ci < c; ++ci) {
                        const float* t = wa.t + rt * tsz + ci * cstride + (q / B) * nt * B + q % B;
                        const float* u = wa.u + (c0 / 16) * ublk + (static_cast<int64_t>(rt) * c + ci) * nt * 16;
                        for (int ct = 0; ct < nt; ++ct) {
                            const int ca = wino_term_acc(pl, ct);
                            const float tv = t[ct * B];
                            for (int l = 0; l < 16; ++l) M[ra * 4 + ca][l] = std::fma(tv, u[ct * 16 + l], M[ra * 4 + ca][l]);
                        }
                    }
                }
            }
            wino2_combine(&M[0][0], y);
            const int oc = a.cout - c0 < 16 ? a.cout - c0 : 16;
            for (int er = 0; er < 2; ++er) {
                float* orow = er == 0 ? orow0 : orow1;
                if (!orow) continue;
                const int oh = 2 * s + er;
                for (int e = 0; e < 2 && 2 * q + e < a.wo; ++e) {
                    const int ow = 2 * q + e;
                    const int64_t idx = ((n * a.ho + oh) * a.wo + ow) * a.cout + c0;
                    const float* v = y[er][e];
                    epilogue_store(a.epi, c0, oc, [&](int j) { return v[j]; }, a.epi.res ? a.epi.res + idx : nullptr,
                                   orow + static_cast<int64_t>(ow) * a.cout + c0);
                }
            }
        }
}
void wino2_rows_avx512(const FConvArgs& a, const Wino2Args& wa, int64_t n, int s, float* orow0, float* orow1);
// The generic Winograd / pooling code compiled for AVX2 + FMA (kernels_avx2.cpp).
void wino_transform_row_avx2(const WinoPlan& pl, const float* x, bool nchw, int h, int w, int pad, int r, int nq,
                             float* dst, float* scratch);
void wino2_pair_transform_avx2(const WinoPlan& pl, int nq, int s, const float* const* rowptrs, float* dst);
void wino2_rows_avx2(const FConvArgs& a, const Wino2Args& wa, int64_t n, int s, float* orow0, float* orow1);
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
