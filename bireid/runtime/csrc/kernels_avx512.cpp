// AVX-512 path: VPOPCNTDQ popcount over 8 output channels per zmm, register-blocked 16 channels x 6 pixels.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

// The target pragma comes before kernels.h so its inline helpers are compiled for this ISA too.
#pragma GCC target("avx512f,avx512vpopcntdq,avx512bw,avx512dq,avx512vl,popcnt")

#include "kernels.h"

namespace bireid {

namespace {

template <int P>
inline void tile(const BConvArgs& a, const uint64_t* const* base, const uint64_t* wb, int64_t* cnt) {
    __m512i acc0[P], acc1[P];
    for (int p = 0; p < P; ++p) acc0[p] = acc1[p] = _mm512_setzero_si512();
    const int k = a.k, wd = a.wd;
    const int64_t rs = static_cast<int64_t>(a.wp) * wd;
    const uint64_t* wp = wb;
    for (int kh = 0; kh < k; ++kh) {
        for (int kw = 0; kw < k; ++kw) {
            const int64_t off = kh * rs + static_cast<int64_t>(kw) * wd;
            for (int j = 0; j < wd; ++j, wp += OCB) {
                const __m512i w0 = _mm512_loadu_si512(wp);
                const __m512i w1 = _mm512_loadu_si512(wp + 8);
                for (int p = 0; p < P; ++p) {
                    const __m512i xv = _mm512_set1_epi64(static_cast<long long>(base[p][off + j]));
                    acc0[p] = _mm512_add_epi64(acc0[p], _mm512_popcnt_epi64(_mm512_xor_si512(xv, w0)));
                    acc1[p] = _mm512_add_epi64(acc1[p], _mm512_popcnt_epi64(_mm512_xor_si512(xv, w1)));
                }
            }
        }
    }
    for (int p = 0; p < P; ++p) {
        _mm512_storeu_si512(cnt + p * OCB, acc0[p]);
        _mm512_storeu_si512(cnt + p * OCB + 8, acc1[p]);
    }
}

template <int P>
inline void run_tile(const BConvArgs& a, const uint64_t* row, const uint64_t* wb, int64_t n, int oh, int ow,
                     int ob, int64_t* cnt) {
    const uint64_t* base[P];
    for (int p = 0; p < P; ++p) base[p] = row + static_cast<int64_t>(ow + p) * a.stride * a.wd;
    tile<P>(a, base, wb, cnt);
    finish_tile(a, n, oh, ow, P, ob, cnt);
}

}  // namespace

void bconv_row_avx512(const BConvArgs& a, int64_t n, int oh, int ob) {
    constexpr int P = 6;
    alignas(64) int64_t cnt[P * OCB];
    const uint64_t* wb = a.wblk + static_cast<int64_t>(ob) * a.k * a.k * a.wd * OCB;
    const uint64_t* row = a.x + (n * a.hp + static_cast<int64_t>(oh) * a.stride) * a.wp * a.wd;
    int ow = 0;
    for (; ow + P <= a.wo; ow += P) run_tile<P>(a, row, wb, n, oh, ow, ob, cnt);
    switch (a.wo - ow) {
        case 5: run_tile<5>(a, row, wb, n, oh, ow, ob, cnt); break;
        case 4: run_tile<4>(a, row, wb, n, oh, ow, ob, cnt); break;
        case 3: run_tile<3>(a, row, wb, n, oh, ow, ob, cnt); break;
        case 2: run_tile<2>(a, row, wb, n, oh, ow, ob, cnt); break;
        case 1: run_tile<1>(a, row, wb, n, oh, ow, ob, cnt); break;
        default: break;
    }
}

namespace {

template <int P, int G>
inline void ftile(const FConvArgs& a, const float* cols, int64_t n, int oh, int ow, int c0) {
    __m512 acc[P][G];
    for (int p = 0; p < P; ++p)
        for (int g = 0; g < G; ++g) acc[p][g] = _mm512_setzero_ps();
    const float* x = cols + static_cast<int64_t>(ow) * a.kdim;
    const float* w = a.w + c0;
    for (int k = 0; k < a.kdim; ++k, w += a.cout_pad) {
        __m512 wv[G];
        for (int g = 0; g < G; ++g) wv[g] = _mm512_loadu_ps(w + 16 * g);
        for (int p = 0; p < P; ++p) {
            const __m512 xv = _mm512_set1_ps(x[p * a.kdim + k]);
            for (int g = 0; g < G; ++g) acc[p][g] = _mm512_fmadd_ps(xv, wv[g], acc[p][g]);
        }
    }
    alignas(64) float buf[P * G * 16];
    for (int p = 0; p < P; ++p)
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

}  // namespace

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

void pack_rows_avx512(const float* x, const float* t, uint64_t* dst, int64_t npix, int c, int wd) {
    // dst rows are strided by wd words; `dst` addresses are computed by the caller per pixel, so here a
    // "row" is one pixel: npix pixels, each c floats in and wd words out, consecutive.
    const __m512 zero = _mm512_setzero_ps();
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

}  // namespace bireid

#else  // not x86: never selected (isa_supported() is false), stubs keep the link complete
#include "kernels.h"
namespace bireid {
void bconv_row_avx512(const BConvArgs&, int64_t, int, int) {}
void fconv_row_avx512(const FConvArgs&, const float*, int64_t, int) {}
void pack_rows_avx512(const float*, const float*, uint64_t*, int64_t, int, int) {}
}  // namespace bireid
#endif
