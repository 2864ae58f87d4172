// AVX-512 path: VPOPCNTDQ popcount over 8 output channels per zmm, register-blocked 16 channels x 8 pixels with
// the epilogue applied from registers; real convs (im2col, or direct for small Cin such as the stem, optionally
// with a fused max pool) and max pooling.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <limits>
#include <vector>

// The target pragma comes before portable.h so its inline kernels are compiled for this ISA too.
#pragma GCC target("avx512f,avx512vpopcntdq,avx512bw,avx512dq,avx512vl,popcnt")

#include "portable.h"

namespace bireid {

namespace {

// The per-channel epilogue (see kernels.h) on 16 channels held in one zmm: the same float operations in the
// same order as epilogue_store, so every ISA path rounds identically (no FMA contraction in intrinsics).
struct EpiRegs {
    __m512 sc, bi, sl, si, so, lo, hi;
    EpiRegs(const Epilogue& e, int o0)
        : sc(_mm512_loadu_ps(e.scale + o0)), bi(_mm512_loadu_ps(e.bias + o0)), sl(_mm512_loadu_ps(e.slope + o0)),
          si(_mm512_loadu_ps(e.shift_in + o0)), so(_mm512_loadu_ps(e.shift_out + o0)),
          lo(_mm512_set1_ps(e.clamp_lo)), hi(_mm512_set1_ps(e.clamp_hi)), plain(e.plain), has_act(e.has_act) {}
    bool plain, has_act;
    // r: the residual of these 16 channels or null; act_first says on which side of the activation it is added.
    inline __m512 apply(__m512 d, const float* r, bool act_first) const {
        if (plain) {
            __m512 v = _mm512_add_ps(_mm512_mul_ps(d, sc), bi);
            if (r && !act_first) v = _mm512_add_ps(v, _mm512_loadu_ps(r));
            if (has_act)
                v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GE_OQ), _mm512_mul_ps(sl, v), v);
            if (r && act_first) v = _mm512_add_ps(v, _mm512_loadu_ps(r));
            return v;
        }
        const __m512 rv = r ? _mm512_loadu_ps(r) : _mm512_setzero_ps();
        const __m512 r1 = act_first ? _mm512_setzero_ps() : rv;
        const __m512 r2 = act_first ? rv : _mm512_setzero_ps();
        __m512 v = _mm512_add_ps(_mm512_mul_ps(d, sc), bi);
        v = _mm512_add_ps(v, r1);
        const __m512 u = _mm512_add_ps(v, si);
        const __mmask16 pos = _mm512_cmp_ps_mask(u, _mm512_setzero_ps(), _CMP_GE_OQ);
        v = _mm512_add_ps(_mm512_mask_blend_ps(pos, _mm512_mul_ps(sl, u), u), so);
        v = _mm512_add_ps(v, r2);
        // v < lo ? lo : (v > hi ? hi : v), NaN passes through like the scalar code.
        v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, hi, _CMP_GT_OQ), v, hi);
        v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, lo, _CMP_LT_OQ), v, lo);
        return v;
    }
};

// P pixels x 16 output channels; the counts stay in registers and go straight through the vector epilogue
// unless the tile needs the scalar path (zero-padding correction at a border, or a partial channel block).
template <int P>
inline void tile(const BConvArgs& a, const uint64_t* row, const uint64_t* wb, int64_t n, int oh, int ow0, int ob) {
    __m512i acc0[P], acc1[P];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) acc0[p] = acc1[p] = _mm512_setzero_si512();
    const int k = a.k, wd = a.wd;
    const int64_t rs = static_cast<int64_t>(a.wp) * wd;
    const int64_t ps = static_cast<int64_t>(a.stride) * wd;  // words between neighbouring output pixels
    const uint64_t* base = row + static_cast<int64_t>(ow0) * ps;
    const uint64_t* wp = wb;
    for (int kh = 0; kh < k; ++kh) {
        for (int kw = 0; kw < k; ++kw) {
            const uint64_t* xq = base + kh * rs + static_cast<int64_t>(kw) * wd;
            for (int j = 0; j < wd; ++j, wp += OCB) {
                const __m512i w0 = _mm512_loadu_si512(wp);
                const __m512i w1 = _mm512_loadu_si512(wp + 8);
#pragma GCC unroll 8
                for (int p = 0; p < P; ++p) {
                    const __m512i xv = _mm512_set1_epi64(static_cast<long long>(xq[p * ps + j]));
                    acc0[p] = _mm512_add_epi64(acc0[p], _mm512_popcnt_epi64(_mm512_xor_si512(xv, w0)));
                    acc1[p] = _mm512_add_epi64(acc1[p], _mm512_popcnt_epi64(_mm512_xor_si512(xv, w1)));
                }
            }
        }
    }
    const int o0 = ob * OCB;
    if (a.cout - o0 < OCB) {
        alignas(64) int64_t cnt[P * OCB];
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
            _mm512_store_si512(cnt + p * OCB, acc0[p]);
            _mm512_store_si512(cnt + p * OCB + 8, acc1[p]);
        }
        finish_tile(a, n, oh, ow0, P, ob, cnt);
        return;
    }
    const EpiRegs er(a.epi, o0);
    // The counts fit in 32 bits (the caller checks K < 2^31): gather the low dwords of both int64 halves into one
    // vector of 16 int32 in channel order, then dot = K - 2 * popcount and one int32 -> float conversion (exact
    // below 2^24 in magnitude, and rounded like the scalar int64 -> float conversion above that).
    const __m512i lows = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i kfull = _mm512_set1_epi32(static_cast<int>(static_cast<int64_t>(a.k) * a.k * a.cin));
    const int64_t idx0 = ((n * a.ho + oh) * a.wo + ow0) * a.cout + o0;
    // Zero padding: the padded rows' taps are the same for the whole tile (rowc); per pixel only the padded columns
    // of the rows inside the image [kh_lo, kh_hi) are added.
    const bool zpad = a.pad_value == 0 && a.pad > 0;
    const int32_t* ws = a.wsum + static_cast<int64_t>(ob) * a.k * a.k * OCB;
    const int ih0 = oh * a.stride - a.pad;
    const int kh_lo = ih0 < 0 ? -ih0 : 0, kh_hi = a.h - ih0 < a.k ? a.h - ih0 : a.k;
    __m512i rowc = _mm512_setzero_si512();
    if (zpad && (kh_lo > 0 || kh_hi < a.k))
        for (int kh = 0; kh < a.k; ++kh)
            if (kh < kh_lo || kh >= kh_hi)
                for (int kw = 0; kw < a.k; ++kw)
                    rowc = _mm512_add_epi32(rowc, _mm512_loadu_si512(ws + (kh * a.k + kw) * OCB));
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) {
        const int64_t idx = idx0 + static_cast<int64_t>(p) * a.cout;
        const __m512i cnt = _mm512_permutex2var_epi32(acc0[p], lows, acc1[p]);
        __m512i dot = _mm512_sub_epi32(kfull, _mm512_slli_epi32(cnt, 1));
        if (zpad) {  // zero padding: subtract the weight sums of the padded taps (pad_correction in kernels.h)
            const int iw0 = (ow0 + p) * a.stride - a.pad;
            const int kw_lo = iw0 < 0 ? -iw0 : 0, kw_hi = a.w - iw0 < a.k ? a.w - iw0 : a.k;
            __m512i corr = rowc;
            if (kw_lo > 0 || kw_hi < a.k)
                for (int kh = kh_lo; kh < kh_hi; ++kh)
                    for (int kw = 0; kw < a.k; ++kw)
                        if (kw < kw_lo || kw >= kw_hi)
                            corr = _mm512_add_epi32(corr, _mm512_loadu_si512(ws + (kh * a.k + kw) * OCB));
            dot = _mm512_sub_epi32(dot, corr);
        }
        const __m512 d = _mm512_cvtepi32_ps(dot);
        _mm512_storeu_ps(a.out + idx, er.apply(d, a.epi.res ? a.epi.res + idx : nullptr, a.epi.act_first));
    }
}

void bconv_row_avx512(const BConvArgs& a, int64_t n, int oh, int ob) {
    constexpr int P = 8;
    const uint64_t* wb = a.wblk + static_cast<int64_t>(ob) * a.k * a.k * a.wd * OCB;
    const uint64_t* row = a.x + (n * a.hp + static_cast<int64_t>(oh) * a.stride) * a.wp * a.wd;
    int ow = 0;
    for (; ow + P <= a.wo; ow += P) tile<P>(a, row, wb, n, oh, ow, ob);
    switch (a.wo - ow) {
        case 7: tile<7>(a, row, wb, n, oh, ow, ob); break;
        case 6: tile<6>(a, row, wb, n, oh, ow, ob); break;
        case 5: tile<5>(a, row, wb, n, oh, ow, ob); break;
        case 4: tile<4>(a, row, wb, n, oh, ow, ob); break;
        case 3: tile<3>(a, row, wb, n, oh, ow, ob); break;
        case 2: tile<2>(a, row, wb, n, oh, ow, ob); break;
        case 1: tile<1>(a, row, wb, n, oh, ow, ob); break;
        default: break;
    }
}

void bconv_rows_avx512(const BConvArgs& a, int64_t n, int oh, int ob0, int ob1) {
    for (int ob = ob0; ob < ob1; ++ob) bconv_row_avx512(a, n, oh, ob);
}

template <int P, int G>
inline void ftile(const FConvArgs& a, const float* cols, int64_t n, int oh, int ow, int c0) {
    __m512 acc[P][G];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
        for (int g = 0; g < G; ++g) acc[p][g] = _mm512_setzero_ps();
    const float* x = cols + static_cast<int64_t>(ow) * a.kdim;
    const float* w = a.w + c0;
    for (int k = 0; k < a.kdim; ++k, w += a.cout_pad) {
        __m512 wv[G];
#pragma GCC unroll 4
        for (int g = 0; g < G; ++g) wv[g] = _mm512_loadu_ps(w + 16 * g);
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
            const __m512 xv = _mm512_set1_ps(x[p * a.kdim + k]);
#pragma GCC unroll 4
            for (int g = 0; g < G; ++g) acc[p][g] = _mm512_fmadd_ps(xv, wv[g], acc[p][g]);
        }
    }
    alignas(64) float buf[P * G * 16];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
        for (int g = 0; g < G; ++g) _mm512_store_ps(buf + p * G * 16 + 16 * g, acc[p][g]);
    fconv_store(a, n, oh, ow, P, c0, G * 16, buf, G * 16);
}

template <int G>
inline void frow(const FConvArgs& a, const float* cols, int64_t n, int oh, int c0) {
    int ow = 0;
    for (; ow + 6 <= a.wo; ow += 6) ftile<6, G>(a, cols, n, oh, ow, c0);
    switch (a.wo - ow) {
        case 5: ftile<5, G>(a, cols, n, oh, ow, c0); break;
        case 4: ftile<4, G>(a, cols, n, oh, ow, c0); break;
        case 3: ftile<3, G>(a, cols, n, oh, ow, c0); break;
        case 2: ftile<2, G>(a, cols, n, oh, ow, c0); break;
        case 1: ftile<1, G>(a, cols, n, oh, ow, c0); break;
        default: break;
    }
}

void fconv_row_avx512(const FConvArgs& a, const float* cols, int64_t n, int oh) {
    int c0 = 0;
    for (; c0 + 64 <= a.cout_pad; c0 += 64) frow<4>(a, cols, n, oh, c0);
    switch ((a.cout_pad - c0) / 16) {
        case 3: frow<3>(a, cols, n, oh, c0); break;
        case 2: frow<2>(a, cols, n, oh, c0); break;
        case 1: frow<1>(a, cols, n, oh, c0); break;
        default: break;
    }
}

// Direct real conv tile: P pixels x 16*G channels read straight from the zero-padded NHWC image (no im2col).
// The reduction index runs over (kh, kw, c) in the same order as the im2col path, one fma per step, so the
// result is bit-identical to fconv_row_* on every ISA.
template <int P, int G>
inline void dtile(const FConvArgs& a, const float* xrow, int64_t xstride, int pstep, int kc, int k, int64_t n, int oh,
                  int ow, int c0, float* orow) {
    __m512 acc[P][G];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
        for (int g = 0; g < G; ++g) acc[p][g] = _mm512_setzero_ps();
    const float* w = a.w + c0;
    const float* x0 = xrow + static_cast<int64_t>(ow) * pstep;
    for (int kh = 0; kh < k; ++kh) {
        const float* x = x0 + kh * xstride;
        for (int q = 0; q < kc; ++q, w += a.cout_pad) {
            __m512 wv[G];
#pragma GCC unroll 4
            for (int g = 0; g < G; ++g) wv[g] = _mm512_loadu_ps(w + 16 * g);
#pragma GCC unroll 8
            for (int p = 0; p < P; ++p) {
                const __m512 xv = _mm512_set1_ps(x[p * pstep + q]);
#pragma GCC unroll 4
                for (int g = 0; g < G; ++g) acc[p][g] = _mm512_fmadd_ps(xv, wv[g], acc[p][g]);
            }
        }
    }
    const int64_t idx0 = ((n * a.ho + oh) * a.wo + ow) * a.cout;  // residual index of the first pixel
    float* o0 = orow + static_cast<int64_t>(ow) * a.cout;
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
        const int cg = c0 + 16 * g;
        if (cg + 16 > a.cout) {  // partial (or padding-only) channel group: scalar epilogue
            if (cg >= a.cout) continue;
            alignas(64) float buf[P * 16];
#pragma GCC unroll 8
            for (int p = 0; p < P; ++p) _mm512_store_ps(buf + p * 16, acc[p][g]);
            for (int p = 0; p < P; ++p) {
                const int64_t off = static_cast<int64_t>(p) * a.cout + cg;
                const float* v = buf + p * 16;
                epilogue_store(a.epi, cg, a.cout - cg, [&](int j) { return v[j]; },
                               a.epi.res ? a.epi.res + idx0 + off : nullptr, o0 + off);
            }
            continue;
        }
        const EpiRegs er(a.epi, cg);
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
            const int64_t off = static_cast<int64_t>(p) * a.cout + cg;
            _mm512_storeu_ps(o0 + off, er.apply(acc[p][g], a.epi.res ? a.epi.res + idx0 + off : nullptr,
                                                a.epi.act_first));
        }
    }
}

template <int G>
inline void drow(const FConvArgs& a, const float* xrow, int64_t xstride, int pstep, int kc, int k, int64_t n, int oh,
                 int c0, float* orow) {
    int ow = 0;
    for (; ow + 6 <= a.wo; ow += 6) dtile<6, G>(a, xrow, xstride, pstep, kc, k, n, oh, ow, c0, orow);
    switch (a.wo - ow) {
        case 5: dtile<5, G>(a, xrow, xstride, pstep, kc, k, n, oh, ow, c0, orow); break;
        case 4: dtile<4, G>(a, xrow, xstride, pstep, kc, k, n, oh, ow, c0, orow); break;
        case 3: dtile<3, G>(a, xrow, xstride, pstep, kc, k, n, oh, ow, c0, orow); break;
        case 2: dtile<2, G>(a, xrow, xstride, pstep, kc, k, n, oh, ow, c0, orow); break;
        case 1: dtile<1, G>(a, xrow, xstride, pstep, kc, k, n, oh, ow, c0, orow); break;
        default: break;
    }
}

void fconv_direct_row_avx512(const FConvArgs& a, const float* xpad, int wpad, int cin, int k, int stride, int64_t n,
                             int oh, float* orow) {
    const int64_t xstride = static_cast<int64_t>(wpad) * cin;
    const float* xrow = xpad + static_cast<int64_t>(oh) * stride * xstride;
    const int kc = k * cin, pstep = stride * cin;
    int c0 = 0;
    for (; c0 + 64 <= a.cout_pad; c0 += 64) drow<4>(a, xrow, xstride, pstep, kc, k, n, oh, c0, orow);
    switch ((a.cout_pad - c0) / 16) {
        case 3: drow<3>(a, xrow, xstride, pstep, kc, k, n, oh, c0, orow); break;
        case 2: drow<2>(a, xrow, xstride, pstep, kc, k, n, oh, c0, orow); break;
        case 1: drow<1>(a, xrow, xstride, pstep, kc, k, n, oh, c0, orow); break;
        default: break;
    }
}

void wino_transform_row_avx512(const WinoPlan& pl, const float* x, bool nchw, int h, int w, int pad, int r, int nq,
                               float* dst, float* scratch) {
    wino_transform_row(pl, x, nchw, h, w, pad, r, nq, dst, scratch);
}

// wino_out3 on 16 lanes (the same operations).
inline void out3(__m512 m0, __m512 m1, __m512 m2, __m512 m3, __m512 m4, __m512 m5, __m512* y) {
    const __m512 a = _mm512_add_ps(m1, m2), b = _mm512_sub_ps(m1, m2), c = _mm512_add_ps(m3, m4),
                 d = _mm512_sub_ps(m3, m4);
    y[0] = _mm512_add_ps(_mm512_add_ps(m0, a), c);
    y[1] = _mm512_add_ps(b, _mm512_add_ps(d, d));
    y[2] = _mm512_add_ps(_mm512_add_ps(a, _mm512_mul_ps(c, _mm512_set1_ps(4.f))), m5);
}

// One pass of the 2-D kernel: the accumulators M[RA][CA][p] (6 column accumulators x PB tiles) of row accumulator
// RA for one block of tiles and 16 channels, transformed along the columns (Y[RA][e] = out3 of M[RA][0..5]) and
// stored to m[e][p][16] (p with stride kWinoQB). NC > 0: the plan has NC chunks of CN0, CN1 products
// (compile-time loops); NC == 0: any plan.
template <int PB, int NC, int CN0, int CN1>
inline void w2pass(const Wino2Args& wa, int ra, int qb, const float* ub, float* m) {
    constexpr int B = kWinoQB, N = kWinoN;
    const WinoPlan& pl = wa.pl;
    const int c = pl.cin, nt = pl.nterms;
    const int nch = NC > 0 ? NC : pl.nchunks;
    const int64_t tsz = wino_row_floats(pl, wa.nq), qs = wino_qs(wa.nq);
    const int64_t cstride = nt * qs;
    auto cn = [&](int ch) { return NC > 0 ? (ch == 0 ? CN0 : CN1) : pl.cn[ch]; };
    __m512 acc[N][PB];
#pragma GCC unroll 6
    for (int ca = 0; ca < N; ++ca)
#pragma GCC unroll 4
        for (int p = 0; p < PB; ++p) acc[ca][p] = _mm512_setzero_ps();
    auto run_rt = [&](int rt) {
        const float* t = wa.t + rt * tsz + static_cast<int64_t>(qb) * nt * B;
        const float* u = ub + static_cast<int64_t>(rt) * c * nt * 16;
        for (int ci = 0; ci < c; ++ci, t += cstride) {
            const float* tt = t;
#pragma GCC unroll 2
            for (int ch = 0; ch < nch; ++ch) {
                const int n = cn(ch);
#pragma GCC unroll 6
                for (int j = 0; j < N; ++j) {
                    if (j >= n) break;
                    __m512 wv = _mm512_loadu_ps(u + j * 16);
                    __asm__("" : "+v"(wv));  // one weight load per j, reused by the PB tiles
#pragma GCC unroll 4
                    for (int p = 0; p < PB; ++p)
                        acc[j][p] = _mm512_fmadd_ps(_mm512_set1_ps(tt[j * B + p]), wv, acc[j][p]);
                }
                tt += n * B;
                u += n * 16;
            }
        }
    };
    // The row terms of accumulator ra, in plan order: product ra of each chunk that has it.
    for (int ch = 0, rt = 0; ch < nch; rt += cn(ch), ++ch)
        if (ra < cn(ch)) run_rt(rt + ra);
#pragma GCC unroll 4
    for (int p = 0; p < PB; ++p) {
        __m512 y[kWinoM];
        out3(acc[0][p], acc[1][p], acc[2][p], acc[3][p], acc[4][p], acc[5][p], y);
#pragma GCC unroll 3
        for (int e = 0; e < kWinoM; ++e) _mm512_store_ps(m + (e * B + p) * 16, y[e]);
    }
}

template <int NC, int CN0, int CN1>
inline void w2rows(const FConvArgs& a, const Wino2Args& wa, int64_t n, int s, float* const* orows) {
    constexpr int B = kWinoQB, N = kWinoN, M = kWinoM;
    const WinoPlan& pl = wa.pl;
    const int64_t ublk = static_cast<int64_t>(pl.nterms) * pl.cin * pl.nterms * 16;
    const int nqb = wino_nqb(wa.nq);
    alignas(64) float m[N][M * B * 16];  // [RA][e][p][16]
    for (int c0 = 0; c0 < a.cout_pad && c0 < a.cout; c0 += 16) {
        const float* ub = wa.u + (c0 / 16) * ublk;
        const bool part = c0 + 16 > a.cout;
        const EpiRegs er(a.epi, part ? 0 : c0);
        for (int qb = 0; qb < nqb; ++qb) {
            const int pb = std::min(B, wa.nq - qb * B);  // tiles of this block that reach the output
            for (int ra = 0; ra < N; ++ra) {
                switch (pb) {
                    case 1: w2pass<1, NC, CN0, CN1>(wa, ra, qb, ub, m[ra]); break;
                    case 2: w2pass<2, NC, CN0, CN1>(wa, ra, qb, ub, m[ra]); break;
                    case 3: w2pass<3, NC, CN0, CN1>(wa, ra, qb, ub, m[ra]); break;
                    default: w2pass<B, NC, CN0, CN1>(wa, ra, qb, ub, m[ra]); break;
                }
            }
            for (int p = 0; p < pb; ++p) {
                const int q = qb * B + p;
                for (int e = 0; e < M && M * q + e < a.wo; ++e) {
                    __m512 yr[M];
                    const int64_t off = (e * B + p) * 16;
                    out3(_mm512_load_ps(m[0] + off), _mm512_load_ps(m[1] + off), _mm512_load_ps(m[2] + off),
                         _mm512_load_ps(m[3] + off), _mm512_load_ps(m[4] + off), _mm512_load_ps(m[5] + off), yr);
                    const int ow = M * q + e;
                    for (int r = 0; r < M; ++r) {
                        float* orow = orows[r];
                        if (!orow) continue;
                        const int64_t ridx = ((n * a.ho + M * s + r) * a.wo + ow) * a.cout + c0;
                        float* dst = orow + static_cast<int64_t>(ow) * a.cout + c0;
                        if (!part) {
                            _mm512_storeu_ps(dst, er.apply(yr[r], a.epi.res ? a.epi.res + ridx : nullptr,
                                                           a.epi.act_first));
                        } else {
                            alignas(64) float buf[16];
                            _mm512_store_ps(buf, yr[r]);
                            epilogue_store(a.epi, c0, a.cout - c0, [&](int j) { return buf[j]; },
                                           a.epi.res ? a.epi.res + ridx : nullptr, dst);
                        }
                    }
                }
            }
        }
    }
}

void wino2_rows_avx512(const FConvArgs& a, const Wino2Args& wa, int64_t n, int s, float* const* orows) {
    const WinoPlan& pl = wa.pl;
    if (pl.nchunks == 2 && pl.cn[0] == 6 && pl.cn[1] == 5) w2rows<2, 6, 5>(a, wa, n, s, orows);  // k = 7
    else w2rows<0, 0, 0>(a, wa, n, s, orows);
}

void wino2_tile_transform_avx512(const WinoPlan& pl, int nq, int s, const float* const* rowptrs, float* dst) {
    wino2_tile_transform(pl, nq, s, [&](int r) { return rowptrs[r]; }, dst);
}

void maxpool_rows_avx512(const float* const* rows, int nrows, float* dst, int w, int64_t c, int k, int stride, int pad,
                         int wo) {
    // Same selection rule and visiting order as the scalar pool2d: take p when p > acc or p is NaN (PyTorch
    // propagates NaN), rows in order, then columns.
    for (int ow = 0; ow < wo; ++ow) {
        const int w0 = ow * stride - pad;
        const int ws = w0 < 0 ? 0 : w0, we = w0 + k < w ? w0 + k : w;
        float* d = dst + static_cast<int64_t>(ow) * c;
        for (int64_t j = 0; j < c; j += 16) {
            const __mmask16 m = c - j >= 16 ? static_cast<__mmask16>(0xFFFF)
                                            : static_cast<__mmask16>((1u << (c - j)) - 1u);
            __m512 acc = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
            for (int r = 0; r < nrows; ++r)
                for (int iw = ws; iw < we; ++iw) {
                    const __m512 v = _mm512_maskz_loadu_ps(m, rows[r] + static_cast<int64_t>(iw) * c + j);
                    // vmaxps(v, acc) is v > acc ? v : acc, and acc when either is NaN: right unless v is NaN.
                    acc = _mm512_mask_mov_ps(_mm512_max_ps(v, acc), _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
                }
            _mm512_mask_storeu_ps(d + j, m, acc);
        }
    }
}

void pack_rows_avx512(const float* x, const float* t, uint64_t* dst, int64_t npix, int c, int wd) {
    // dst rows are strided by wd words; `dst` addresses are computed by the caller per pixel, so here a
    // "row" is one pixel: npix pixels, each c floats in and wd words out, consecutive.
    const __m512 zero = _mm512_setzero_ps();
    if (c % 64 == 0) {  // whole words: no masks; t == null means threshold 0 (x - 0 < 0 is x < 0 for every x)
        for (int64_t i = 0; i < npix; ++i) {
            const float* xp = x + i * c;
            uint64_t* d = dst + i * wd;
            for (int j = 0; j < wd; ++j) {
                uint64_t word = 0;
                for (int q = 0; q < 4; ++q) {
                    const int c0 = j * 64 + q * 16;
                    __m512 v = _mm512_loadu_ps(xp + c0);
                    if (t) v = _mm512_sub_ps(v, _mm512_loadu_ps(t + c0));
                    word |= static_cast<uint64_t>(_mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ)) << (q * 16);
                }
                d[j] = word;
            }
        }
        return;
    }
    std::vector<float> tz;
    if (!t) {
        tz.assign(static_cast<size_t>(c), 0.f);
        t = tz.data();
    }
    for (int64_t i = 0; i < npix; ++i) {
        const float* xp = x + i * c;
        uint64_t* d = dst + i * wd;
        for (int j = 0; j < wd; ++j) {
            uint64_t word = 0;
            for (int q = 0; q < 4; ++q) {
                const int c0 = j * 64 + q * 16;
                if (c0 >= c) break;
                const int rem = c - c0;
                const __mmask16 m = rem >= 16 ? static_cast<__mmask16>(0xFFFF)
                                              : static_cast<__mmask16>((1u << rem) - 1u);
                const __m512 xv = _mm512_maskz_loadu_ps(m, xp + c0);
                const __m512 tv = _mm512_maskz_loadu_ps(m, t + c0);
                const __mmask16 neg = _mm512_mask_cmp_ps_mask(m, _mm512_sub_ps(xv, tv), zero, _CMP_LT_OQ);
                word |= static_cast<uint64_t>(neg) << (q * 16);
            }
            d[j] = word;
        }
    }
}

double tsc_ticks() { return static_cast<double>(__rdtsc()); }

const KernelTable kTable = {
    "avx512",
    bconv_rows_avx512,
    fconv_row_avx512,
    fconv_direct_row_avx512,
    pack_rows_avx512,
    maxpool_rows_avx512,
    wino_transform_row_avx512,
    wino2_tile_transform_avx512,
    wino2_rows_avx512,
    tsc_ticks,
};

}  // namespace

const KernelTable* kernels_avx512(const char** why) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return &kTable;
    *why = "this CPU lacks AVX-512 F/BW/DQ/VL or VPOPCNTDQ";
    return nullptr;
}

}  // namespace bireid

#else  // not x86
#include "kernels.h"
namespace bireid {
const KernelTable* kernels_avx512(const char** why) {
    *why = "not built for this architecture (x86-64 only)";
    return nullptr;
}
}  // namespace bireid
#endif
