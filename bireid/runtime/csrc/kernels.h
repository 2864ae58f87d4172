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
#include <cstdint>
#include <cstddef>

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
    const int32_t* wsum;      // [cout][k*k]: sum of the +-1 weights of each tap (Cin - 2*popcount)
    float* out;               // (N, Ho, Wo, cout)
    int64_t n;
    int h, w, hp, wp, wd, cin, cout, k, stride, pad, pad_value, ho, wo;
    Epilogue epi;
};

// One output row (n, oh) for one block of OCB output channels; one implementation per ISA.
void bconv_row_portable(const BConvArgs& a, int64_t n, int oh, int ob);
void bconv_row_avx2(const BConvArgs& a, int64_t n, int oh, int ob);
void bconv_row_avx512(const BConvArgs& a, int64_t n, int oh, int ob);

// Converts the popcounts of `np` pixels (row n, oh, starting at ow0) x OCB channels to outputs. Inline in the
// header so each ISA's translation unit vectorizes it (-ffp-contract=off keeps the results identical).
static inline void finish_tile(const BConvArgs& a, int64_t n, int oh, int ow0, int np, int ob, const int64_t* cnt) {
    const int o0 = ob * OCB;
    const int oc = a.cout - o0 < OCB ? a.cout - o0 : OCB;
    const int64_t kfull = static_cast<int64_t>(a.k) * a.k * a.cin;
    const int ih0 = oh * a.stride - a.pad;
    const bool row_border = ih0 < 0 || ih0 + a.k > a.h;
    const int kk = a.k * a.k;
    alignas(64) int64_t corr[OCB];
    for (int p = 0; p < np; ++p) {
        const int ow = ow0 + p;
        const int iw0 = ow * a.stride - a.pad;
        const int64_t* c = cnt + p * OCB;
        const int64_t idx = ((n * a.ho + oh) * a.wo + ow) * a.cout + o0;
        const float* r = a.epi.res ? a.epi.res + idx : nullptr;
        // With zero padding (pad_value 0) padded taps must contribute 0, but the packed buffer holds +1 there:
        // subtract each padded tap's +1 contribution, i.e. the sum of that tap's +-1 weights.
        if (a.pad_value == 0 && a.pad > 0 && (row_border || iw0 < 0 || iw0 + a.k > a.w)) {
            for (int j = 0; j < OCB; ++j) corr[j] = 0;
            for (int j = 0; j < oc; ++j) {
                const int32_t* ws = a.wsum + static_cast<int64_t>(o0 + j) * kk;
                for (int kh = 0; kh < a.k; ++kh) {
                    const int ih = ih0 + kh;
                    const bool hin = ih >= 0 && ih < a.h;
                    for (int kw = 0; kw < a.k; ++kw) {
                        const int iw = iw0 + kw;
                        if (!hin || iw < 0 || iw >= a.w) corr[j] += ws[kh * a.k + kw];
                    }
                }
            }
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
