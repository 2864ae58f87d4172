// The portable kernels: plain C++ for any CPU, and the definition of the float operations (and their order) that
// every ISA's kernels reproduce. Inline, so an ISA's kernel file can also compile any of them for its own target
// (the compiler vectorizes them there; -ffp-contract=off keeps the values identical).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "epilogue.h"
#include "kernels.h"
#include "winograd.h"

namespace bireid {

static inline int popcount64(uint64_t v) {
    // SWAR popcount: no dependence on the popcnt instruction, so this path runs on any x86-64 (or other) CPU.
    v = v - ((v >> 1) & 0x5555555555555555ULL);
    v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
    v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return static_cast<int>((v * 0x0101010101010101ULL) >> 56);
}

// XNOR-popcount, one output pixel at a time, the epilogue per pixel (finish_tile).
static inline void bconv_row_portable(const BConvArgs& a, int64_t n, int oh, int ob) {
    int64_t cnt[OCB];
    const int64_t kwords = static_cast<int64_t>(a.k) * a.k * a.wd;
    const uint64_t* wb = a.wblk + ob * kwords * OCB;
    const uint64_t* row = a.x + (n * a.hp + static_cast<int64_t>(oh) * a.stride) * a.wp * a.wd;
    const int64_t rs = static_cast<int64_t>(a.wp) * a.wd;
    for (int ow = 0; ow < a.wo; ++ow) {
        const uint64_t* base = row + static_cast<int64_t>(ow) * a.stride * a.wd;
        for (int j = 0; j < OCB; ++j) cnt[j] = 0;
        const uint64_t* wp = wb;
        for (int kh = 0; kh < a.k; ++kh)
            for (int kw = 0; kw < a.k; ++kw) {
                const uint64_t* xp = base + kh * rs + static_cast<int64_t>(kw) * a.wd;
                for (int j = 0; j < a.wd; ++j, wp += OCB) {
                    const uint64_t xv = xp[j];
                    for (int o = 0; o < OCB; ++o) cnt[o] += popcount64(xv ^ wp[o]);
                }
            }
        finish_tile(a, n, oh, ow, 1, ob, cnt);
    }
}

static inline void bconv_rows_portable(const BConvArgs& a, int64_t n, int oh, int ob0, int ob1) {
    for (int ob = ob0; ob < ob1; ++ob) bconv_row_portable(a, n, oh, ob);
}

// Real conv over im2col rows: one pixel x 16 channels at a time, fma over k in order.
static inline void fconv_row_portable(const FConvArgs& a, const float* cols, int64_t n, int oh) {
    float acc[16];
    for (int ow = 0; ow < a.wo; ++ow) {
        const float* x = cols + static_cast<int64_t>(ow) * a.kdim;
        for (int c0 = 0; c0 < a.cout_pad; c0 += 16) {
            for (int j = 0; j < 16; ++j) acc[j] = 0.f;
            const float* w = a.w + c0;
            for (int k = 0; k < a.kdim; ++k, w += a.cout_pad)
                for (int j = 0; j < 16; ++j) acc[j] = std::fma(x[k], w[j], acc[j]);
            fconv_store(a, n, oh, ow, 1, c0, 16, acc, 16);
        }
    }
}

// sign(x - t) per channel into bits (see kernels.h); t == null: threshold 0.
static inline void pack_rows_portable(const float* x, const float* t, uint64_t* dst, int64_t npix, int c, int wd) {
    for (int64_t i = 0; i < npix; ++i) {
        const float* xp = x + i * c;
        uint64_t* d = dst + i * wd;
        for (int j = 0; j < wd; ++j) {
            uint64_t word = 0;
            const int c1 = std::min(c, (j + 1) * 64);
            for (int ch = j * 64; ch < c1; ++ch)
                if ((t ? xp[ch] - t[ch] : xp[ch]) < 0.f) word |= 1ULL << (ch - j * 64);
            d[j] = word;
        }
    }
}

// Max of a window given as nrows input rows (w x c floats each), for wo output columns, with PyTorch's rule (take p
// when p > acc or p is NaN, so NaN propagates; rows in order, then columns): every ISA selects the same bits.
static inline void maxpool_rows_portable(const float* const* rows, int nrows, float* dst, int w, int64_t c, int k,
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

}  // namespace bireid
