// The portable epilogue and the tile finishers every ISA's kernels share (inline: each ISA's translation unit
// compiles them for its own target; -ffp-contract=off keeps the results identical).
#pragma once
#include <cstdint>

#include "kernels.h"

namespace bireid {

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

}  // namespace bireid
