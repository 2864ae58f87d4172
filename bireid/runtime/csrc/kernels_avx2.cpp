// AVX2 path: no vector popcount instruction, so nibble-table popcount (vpshufb) + vpsadbw into 64-bit lanes,
// 16 output channels (four ymm) x 2 pixels per register block.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

// The target pragma comes before kernels.h so its inline helpers are compiled for this ISA too.
#pragma GCC target("avx2,fma,popcnt")

#include "portable.h"

namespace bireid {

namespace {

inline __m256i popcnt_epi64(__m256i v, __m256i lut, __m256i mask) {
    const __m256i lo = _mm256_and_si256(v, mask);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
    const __m256i bytes = _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
    return _mm256_sad_epu8(bytes, _mm256_setzero_si256());
}

template <int P>
inline void tile(const BConvArgs& a, const uint64_t* const* base, const uint64_t* wb, int64_t* cnt) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i mask = _mm256_set1_epi8(0x0f);
    __m256i acc[P][4];
    for (int p = 0; p < P; ++p)
        for (int v = 0; v < 4; ++v) acc[p][v] = _mm256_setzero_si256();
    const int k = a.k, wd = a.wd;
    const int64_t rs = static_cast<int64_t>(a.wp) * wd;
    const uint64_t* wp = wb;
    for (int kh = 0; kh < k; ++kh) {
        for (int kw = 0; kw < k; ++kw) {
            const int64_t off = kh * rs + static_cast<int64_t>(kw) * wd;
            for (int j = 0; j < wd; ++j, wp += OCB) {
                __m256i w[4];
                for (int v = 0; v < 4; ++v) w[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp + 4 * v));
                for (int p = 0; p < P; ++p) {
                    const __m256i xv = _mm256_set1_epi64x(static_cast<long long>(base[p][off + j]));
                    for (int v = 0; v < 4; ++v)
                        acc[p][v] = _mm256_add_epi64(acc[p][v], popcnt_epi64(_mm256_xor_si256(xv, w[v]), lut, mask));
                }
            }
        }
    }
    for (int p = 0; p < P; ++p)
        for (int v = 0; v < 4; ++v)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(cnt + p * OCB + 4 * v), acc[p][v]);
}

template <int P>
inline void run_tile(const BConvArgs& a, const uint64_t* row, const uint64_t* wb, int64_t n, int oh, int ow,
                     int ob, int64_t* cnt) {
    const uint64_t* base[P];
    for (int p = 0; p < P; ++p) base[p] = row + static_cast<int64_t>(ow + p) * a.stride * a.wd;
    tile<P>(a, base, wb, cnt);
    finish_tile(a, n, oh, ow, P, ob, cnt);
}

template <int P>
inline void ftile(const FConvArgs& a, const float* cols, int64_t n, int oh, int ow, int c0) {
    __m256 acc[P][2];
    for (int p = 0; p < P; ++p) acc[p][0] = acc[p][1] = _mm256_setzero_ps();
    const float* x = cols + static_cast<int64_t>(ow) * a.kdim;
    const float* w = a.w + c0;
    for (int k = 0; k < a.kdim; ++k, w += a.cout_pad) {
        const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
        for (int p = 0; p < P; ++p) {
            const __m256 xv = _mm256_set1_ps(x[p * a.kdim + k]);
            acc[p][0] = _mm256_fmadd_ps(xv, w0, acc[p][0]);
            acc[p][1] = _mm256_fmadd_ps(xv, w1, acc[p][1]);
        }
    }
    alignas(32) float buf[P * 16];
    for (int p = 0; p < P; ++p) {
        _mm256_store_ps(buf + p * 16, acc[p][0]);
        _mm256_store_ps(buf + p * 16 + 8, acc[p][1]);
    }
    fconv_store(a, n, oh, ow, P, c0, 16, buf, 16);
}

void fconv_row_avx2(const FConvArgs& a, const float* cols, int64_t n, int oh) {
    for (int c0 = 0; c0 < a.cout_pad; c0 += 16) {
        int ow = 0;
        for (; ow + 4 <= a.wo; ow += 4) ftile<4>(a, cols, n, oh, ow, c0);
        for (; ow < a.wo; ++ow) ftile<1>(a, cols, n, oh, ow, c0);
    }
}

void bconv_row_avx2(const BConvArgs& a, int64_t n, int oh, int ob) {
    constexpr int P = 2;
    alignas(32) int64_t cnt[P * OCB];
    const uint64_t* wb = a.wblk + static_cast<int64_t>(ob) * a.k * a.k * a.wd * OCB;
    const uint64_t* row = a.x + (n * a.hp + static_cast<int64_t>(oh) * a.stride) * a.wp * a.wd;
    int ow = 0;
    for (; ow + P <= a.wo; ow += P) run_tile<P>(a, row, wb, n, oh, ow, ob, cnt);
    if (ow < a.wo) run_tile<1>(a, row, wb, n, oh, ow, ob, cnt);
}

void wino_transform_row_avx2(const WinoPlan& pl, const float* x, bool nchw, int h, int w, int pad, int r, int nq,
                             float* dst, float* scratch) {
    wino_transform_row(pl, x, nchw, h, w, pad, r, nq, dst, scratch);
}

void wino2_tile_transform_avx2(const WinoPlan& pl, int nq, int s, const float* const* rowptrs, float* dst) {
    wino2_tile_transform(pl, nq, s, [&](int r) { return rowptrs[r]; }, dst);
}

double tsc_ticks() { return static_cast<double>(__rdtsc()); }

const KernelTable kTable = {
    "avx2",
    bconv_row_avx2,
    fconv_row_avx2,
    nullptr,  // no direct real conv: im2col
    pack_rows_portable,
    maxpool_rows_portable,
    wino_transform_row_avx2,
    wino2_tile_transform_avx2,
    wino2_rows_portable,
    tsc_ticks,
};

}  // namespace

const KernelTable* kernels_avx2(const char** why) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("popcnt"))
        return &kTable;
    *why = "this CPU lacks AVX2, FMA or POPCNT";
    return nullptr;
}

}  // namespace bireid

#else  // not x86
#include "kernels.h"
namespace bireid {
const KernelTable* kernels_avx2(const char** why) {
    *why = "not built for this architecture (x86-64 only)";
    return nullptr;
}
}  // namespace bireid
#endif
