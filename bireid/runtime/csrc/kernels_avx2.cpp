// AVX2 + FMA kernels (x86-64 since Haswell / Zen 1): binary convs with a table-lookup popcount, register-blocked,
// with the epilogue applied from registers; real convs with FMA; the Winograd stem.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <algorithm>
#include <limits>
#include <vector>

// The target pragma comes before portable.h so its inline kernels are compiled for this ISA too.
#pragma GCC target("avx2,fma,popcnt")

#include "portable.h"

namespace bireid {

namespace {

// ---------------------------------------------------------------------------------------------- epilogue
// The per-channel epilogue (epilogue_store in epilogue.h) on 8 channels held in one ymm: the same float operations in
// the same order (separate multiply and add, as the portable code compiles with -ffp-contract=off), so every ISA
// path rounds identically.
struct Epi8 {
    __m256 sc, bi, sl;
    const Epilogue& e;
    const float* si;
    const float* so;
    Epi8(const Epilogue& e_, int o0)
        : sc(_mm256_loadu_ps(e_.scale + o0)), bi(_mm256_loadu_ps(e_.bias + o0)), sl(_mm256_loadu_ps(e_.slope + o0)),
          e(e_), si(e_.shift_in + o0), so(e_.shift_out + o0) {}
    // r: the residual of these 8 channels or null.
    inline __m256 apply(__m256 d, const float* r) const {
        const __m256 zero = _mm256_setzero_ps();
        __m256 v = _mm256_add_ps(_mm256_mul_ps(d, sc), bi);
        if (e.plain) {
            if (r && !e.act_first) v = _mm256_add_ps(v, _mm256_loadu_ps(r));
            if (e.has_act) v = _mm256_blendv_ps(_mm256_mul_ps(sl, v), v, _mm256_cmp_ps(v, zero, _CMP_GE_OQ));
            if (r && e.act_first) v = _mm256_add_ps(v, _mm256_loadu_ps(r));
            return v;
        }
        const __m256 rv = r ? _mm256_loadu_ps(r) : zero;
        v = _mm256_add_ps(v, e.act_first ? zero : rv);
        const __m256 u = _mm256_add_ps(v, _mm256_loadu_ps(si));
        v = _mm256_add_ps(_mm256_blendv_ps(_mm256_mul_ps(sl, u), u, _mm256_cmp_ps(u, zero, _CMP_GE_OQ)),
                          _mm256_loadu_ps(so));
        v = _mm256_add_ps(v, e.act_first ? rv : zero);
        // v < lo ? lo : (v > hi ? hi : v); NaN passes through like the scalar code.
        const __m256 lo = _mm256_set1_ps(e.clamp_lo), hi = _mm256_set1_ps(e.clamp_hi);
        v = _mm256_blendv_ps(v, hi, _mm256_cmp_ps(v, hi, _CMP_GT_OQ));
        return _mm256_blendv_ps(v, lo, _mm256_cmp_ps(v, lo, _CMP_LT_OQ));
    }
};

// ---------------------------------------------------------------------------------------------- binary conv
// AVX2 has no vector popcount. Per 64-bit channel word, popcount(x ^ w) = sum over its bytes of T[low nibble] +
// T[high nibble] with T the 16-entry bit-count table (vpshufb). The weights come split into nibble planes (wnib),
// and so do the input rows (split once per kernel call, for all its channel blocks and the k output pixels that read
// each word), so one ymm of 4 channel-words costs 2 xor + 2 vpshufb + 2 byte adds. Byte counts grow by at most 8
// per word: they are summed into 64-bit lanes (vpsadbw) only every kFlush words.
constexpr int kFlush = 31;

inline __m256i pack_lo32(__m256i a, __m256i b) {  // the low dwords of a's and b's four int64 lanes, in order
    const __m256 s = _mm256_shuffle_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_permute4x64_epi64(_mm256_castps_si256(s), _MM_SHUFFLE(3, 1, 2, 0));
}

// The popcounts of one output pixel x 16 channels (four ymm of 64-bit lanes) into tot[16]; `base` is the pixel's first
// input word in the split rows (two words, low then high nibble plane, per input word; rows `rs` words apart). The
// register block is one pixel: the 4 byte accumulators, the table, the pixel's nibbles and the temporaries fit the
// 16 ymm registers, and the weight vectors are memory operands of the xor (two pixels' blocks made the compiler spill
// accumulators: slower).
// K, WD > 0: the kernel size and words per tap known at compile time (the loops unroll), 0: read from `a`.
template <int K, int WD>
inline void bcount(const BConvArgs& a, const uint64_t* base, int64_t rs, const uint64_t* wn, int64_t* tot) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i zero = _mm256_setzero_si256();
    __m256i acc[4] = {zero, zero, zero, zero};  // byte counts since the last flush
    bool first = true;  // the first flush stores, later ones add
    auto flush = [&]() {
        for (int v = 0; v < 4; ++v) {
            __m256i* t = reinterpret_cast<__m256i*>(tot + 4 * v);
            const __m256i c = _mm256_sad_epu8(acc[v], zero);
            _mm256_store_si256(t, first ? c : _mm256_add_epi64(_mm256_load_si256(t), c));
            acc[v] = zero;
        }
        first = false;
    };
    const int k = K ? K : a.k, wd = WD ? WD : a.wd;
    const uint64_t* w = wn;
    auto words = [&](const uint64_t* xq, int nw) {  // nw consecutive input words against the next weights
        for (int j = 0; j < nw; ++j, w += 2 * OCB) {
            const __m256i xl = _mm256_set1_epi64x(static_cast<long long>(xq[2 * j]));
            const __m256i xh = _mm256_set1_epi64x(static_cast<long long>(xq[2 * j + 1]));
            for (int v = 0; v < 4; ++v) {
                const __m256i wl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 4 * v));
                const __m256i wh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + OCB + 4 * v));
                const __m256i c = _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_xor_si256(xl, wl)),
                                                  _mm256_shuffle_epi8(lut, _mm256_xor_si256(xh, wh)));
                acc[v] = _mm256_add_epi8(acc[v], c);
            }
        }
    };
    // Flush after every `tpf` taps (whole taps: the word loop stays free of the check), or within a tap when one tap
    // has more than kFlush words (Cin > 1984).
    const int tpf = wd <= kFlush ? kFlush / wd : 0;
    int taps = 0;
    for (int kh = 0; kh < k; ++kh)
        for (int kw = 0; kw < k; ++kw) {
            const uint64_t* xq = base + kh * rs + 2 * static_cast<int64_t>(kw) * wd;
            if (tpf) {
                words(xq, wd);
                if (++taps == tpf) {
                    flush();
                    taps = 0;
                }
                continue;
            }
            for (int j0 = 0; j0 < wd; j0 += kFlush) {
                words(xq + 2 * j0, std::min(kFlush, wd - j0));
                flush();
            }
        }
    if (taps) flush();
}

// One channel block of output row (n, oh) from the split input rows (planes: row kh at planes + kh * rs).
template <int K, int WD>
inline void bconv_block_row(const BConvArgs& a, int64_t n, int oh, int ob, const uint64_t* planes, int64_t rs) {
    constexpr int kRun = 32;
    alignas(32) int64_t tot[kRun][OCB];
    const uint64_t* wn = a.wnib + ob * static_cast<int64_t>(a.k) * a.k * a.wd * 2 * OCB;
    const int o0 = ob * OCB;
    const __m256i kfull = _mm256_set1_epi32(static_cast<int>(static_cast<int64_t>(a.k) * a.k * a.cin));
    const int32_t* ws = a.wsum + static_cast<int64_t>(ob) * a.k * a.k * OCB;
    const int ih0 = oh * a.stride - a.pad;
    const bool zpad = a.pad_value == 0 && a.pad > 0;
    for (int ow0 = 0; ow0 < a.wo; ow0 += kRun) {
        const int np = std::min(kRun, a.wo - ow0);
        for (int p = 0; p < np; ++p)
            bcount<K, WD>(a, planes + 2 * static_cast<int64_t>(ow0 + p) * a.stride * a.wd, rs, wn, tot[p]);
        if (a.cout - o0 < OCB) {  // a partial channel block: the portable per-pixel epilogue
            finish_tile(a, n, oh, ow0, np, ob, tot[0]);
            continue;
        }
        // dot = K - 2 * popcount - (padded taps' weight sums), converted once from int32 (the counts fit: K < 2^30;
        // the conversion rounds like the portable int64 -> float one).
        const int64_t idx0 = ((n * a.ho + oh) * a.wo + ow0) * a.cout + o0;
        for (int hf = 0; hf < 2; ++hf) {
            const Epi8 er(a.epi, o0 + 8 * hf);
            for (int p = 0; p < np; ++p) {
                const __m256i* t = reinterpret_cast<const __m256i*>(tot[p] + 8 * hf);
                const __m256i cnt = pack_lo32(_mm256_load_si256(t), _mm256_load_si256(t + 1));
                __m256i dot = _mm256_sub_epi32(kfull, _mm256_slli_epi32(cnt, 1));
                const int iw0 = (ow0 + p) * a.stride - a.pad;
                if (zpad && (ih0 < 0 || ih0 + a.k > a.h || iw0 < 0 || iw0 + a.k > a.w)) {
                    // zero padding: subtract the weight sums of the padded taps (pad_correction in epilogue.h)
                    __m256i corr = _mm256_setzero_si256();
                    for (int kh = 0; kh < a.k; ++kh)
                        for (int kw = 0; kw < a.k; ++kw) {
                            const int ih = ih0 + kh, iw = iw0 + kw;
                            if (ih >= 0 && ih < a.h && iw >= 0 && iw < a.w) continue;
                            const int32_t* wsp = ws + (kh * a.k + kw) * OCB + 8 * hf;
                            corr = _mm256_add_epi32(corr, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wsp)));
                        }
                    dot = _mm256_sub_epi32(dot, corr);
                }
                const int64_t idx = idx0 + static_cast<int64_t>(p) * a.cout + 8 * hf;
                _mm256_storeu_ps(a.out + idx, er.apply(_mm256_cvtepi32_ps(dot), a.epi.res ? a.epi.res + idx : nullptr));
            }
        }
    }
}

// Output row (n, oh) of channel blocks [ob0, ob1): the k input rows it reads split into nibble planes once, then per
// block, runs of up to kRun pixels: the popcounts of the run, then its epilogue from registers (the zero-padding
// correction, the int32 conversion and Epi8), set up once per run.
void bconv_rows_avx2(const BConvArgs& a, int64_t n, int oh, int ob0, int ob1) {
    const int64_t rw = static_cast<int64_t>((a.wo - 1) * a.stride + a.k) * a.wd;  // words of a row that are read
    thread_local std::vector<uint64_t> planes;
    planes.resize(static_cast<size_t>(2 * a.k * rw));
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int kh = 0; kh < a.k; ++kh) {
        const uint64_t* src = a.x + ((n * a.hp + static_cast<int64_t>(oh) * a.stride + kh) * a.wp) * a.wd;
        uint64_t* dst = planes.data() + 2 * kh * rw;
        int64_t q = 0;
        for (; q + 4 <= rw; q += 4) {  // 4 words -> low / high planes, interleaved per word
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + q));
            const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            const __m256i u0 = _mm256_unpacklo_epi64(lo, hi), u1 = _mm256_unpackhi_epi64(lo, hi);  // per 128-bit lane
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * q), _mm256_permute2x128_si256(u0, u1, 0x20));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 2 * q + 4), _mm256_permute2x128_si256(u0, u1, 0x31));
        }
        for (; q < rw; ++q) {
            dst[2 * q] = src[q] & 0x0f0f0f0f0f0f0f0fULL;
            dst[2 * q + 1] = (src[q] >> 4) & 0x0f0f0f0f0f0f0f0fULL;
        }
    }
    // Short rows (3x3 convs of 64 and 128 channels: 9 and 18 words; 1x1 downsample convs of up to 256) with the tap
    // loops unrolled at compile time; longer ones through the general loop (unrolling 36 or 72 words made them slower).
    auto run = [&](auto block_row) {
        for (int ob = ob0; ob < ob1; ++ob) block_row(a, n, oh, ob, planes.data(), 2 * rw);
    };
    if (a.k == 3 && a.wd == 1) run(bconv_block_row<3, 1>);
    else if (a.k == 3 && a.wd == 2) run(bconv_block_row<3, 2>);
    else if (a.k == 1 && a.wd == 1) run(bconv_block_row<1, 1>);  // 1x1 downsample convs
    else if (a.k == 1 && a.wd == 2) run(bconv_block_row<1, 2>);
    else if (a.k == 1 && a.wd == 4) run(bconv_block_row<1, 4>);
    else run(bconv_block_row<0, 0>);
}

// ---------------------------------------------------------------------------------------------- real conv
// P pixels x 16 channels (two ymm each): per k, 2 weight loads and P broadcasts feed 2P FMAs (fma(x_k, w_k, acc) in
// k order, as the portable kernel); the epilogue from registers (Epi8) for a whole 16-channel group.
template <int P>
inline void ftile(const FConvArgs& a, const float* cols, int64_t n, int oh, int ow, int c0) {
    __m256 acc[P][2];
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) acc[p][0] = acc[p][1] = _mm256_setzero_ps();
    const float* x = cols + static_cast<int64_t>(ow) * a.kdim;
    const float* w = a.w + c0;
    for (int k = 0; k < a.kdim; ++k, w += a.cout_pad) {
        const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
            const __m256 xv = _mm256_broadcast_ss(x + p * a.kdim + k);
            acc[p][0] = _mm256_fmadd_ps(xv, w0, acc[p][0]);
            acc[p][1] = _mm256_fmadd_ps(xv, w1, acc[p][1]);
        }
    }
    if (c0 + 16 > a.cout) {  // a partial channel group: the portable epilogue
        alignas(32) float buf[P * 16];
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
            _mm256_store_ps(buf + p * 16, acc[p][0]);
            _mm256_store_ps(buf + p * 16 + 8, acc[p][1]);
        }
        fconv_store(a, n, oh, ow, P, c0, 16, buf, 16);
        return;
    }
    const int64_t idx0 = ((n * a.ho + oh) * a.wo + ow) * a.cout + c0;
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
        const Epi8 er(a.epi, c0 + 8 * h);
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
            const int64_t idx = idx0 + static_cast<int64_t>(p) * a.cout + 8 * h;
            _mm256_storeu_ps(a.out + idx, er.apply(acc[p][h], a.epi.res ? a.epi.res + idx : nullptr));
        }
    }
}

void fconv_row_avx2(const FConvArgs& a, const float* cols, int64_t n, int oh) {
    for (int c0 = 0; c0 < a.cout_pad; c0 += 16) {
        int ow = 0;
        for (; ow + 6 <= a.wo; ow += 6) ftile<6>(a, cols, n, oh, ow, c0);
        switch (a.wo - ow) {
            case 5: ftile<5>(a, cols, n, oh, ow, c0); break;
            case 4: ftile<4>(a, cols, n, oh, ow, c0); break;
            case 3: ftile<3>(a, cols, n, oh, ow, c0); break;
            case 2: ftile<2>(a, cols, n, oh, ow, c0); break;
            case 1: ftile<1>(a, cols, n, oh, ow, c0); break;
            default: break;
        }
    }
}

// ---------------------------------------------------------------------------------------------- Winograd stem
// The 2-D F(3,4) kernel (winograd.h) with AVX2 registers: 16 ymm hold too few accumulators for all six column
// accumulators of a tile block (the AVX-512 kernel's block), so each pass computes one accumulator M[RA][CA] for a
// block of kWinoQB tiles x 16 channels (8 ymm): per step 2 weight loads + 4 broadcasts feed 8 FMAs, which keeps
// the two FMA pipes busier than the two load ports. Each accumulator sees the portable kernel's products in the
// portable order (row terms of RA, ci, column terms of CA), and the output transforms are wino_out3's operations,
// so the values are the same bits.
inline void out3(__m256 m0, __m256 m1, __m256 m2, __m256 m3, __m256 m4, __m256 m5, __m256* y) {
    const __m256 a = _mm256_add_ps(m1, m2), b = _mm256_sub_ps(m1, m2), c = _mm256_add_ps(m3, m4),
                 d = _mm256_sub_ps(m3, m4);
    y[0] = _mm256_add_ps(_mm256_add_ps(m0, a), c);
    y[1] = _mm256_add_ps(b, _mm256_add_ps(d, d));
    y[2] = _mm256_add_ps(_mm256_add_ps(a, _mm256_mul_ps(c, _mm256_set1_ps(4.f))), m5);
}

void wino2_rows_avx2(const FConvArgs& a, const Wino2Args& wa, int64_t n, int s, float* const* orows) {
    constexpr int B = kWinoQB, N = kWinoN, M = kWinoM;
    const WinoPlan& pl = wa.pl;
    const int c = pl.cin, nt = pl.nterms;
    const int64_t ublk = static_cast<int64_t>(nt) * c * nt * 16;
    std::vector<int64_t> toff, uoff;
    int first[N * N + 1];
    wino2_steps(pl, wa.nq, toff, uoff, first);
    alignas(32) float mbuf[N][N][B][16];  // M[RA][CA][tile][channel]
    alignas(32) float ybuf[N][M][B][16];  // after the column transform
    const int nqb = wino_nqb(wa.nq);
    for (int c0 = 0; c0 < a.cout_pad && c0 < a.cout; c0 += 16) {
        const float* ub = wa.u + (c0 / 16) * ublk;
        const bool part = c0 + 16 > a.cout;
        for (int qb = 0; qb < nqb; ++qb) {
            const float* tb = wa.t + static_cast<int64_t>(qb) * nt * B;
            for (int ra = 0; ra < N; ++ra) {
                for (int ca = 0; ca < N; ++ca) {
                    __m256 acc[B][2];
                    for (int p = 0; p < B; ++p) acc[p][0] = acc[p][1] = _mm256_setzero_ps();
                    for (int st = first[ra * N + ca]; st < first[ra * N + ca + 1]; ++st) {
                        const float* t = tb + toff[st];
                        const float* u = ub + uoff[st];
                        const __m256 u0 = _mm256_loadu_ps(u), u1 = _mm256_loadu_ps(u + 8);
                        for (int p = 0; p < B; ++p) {
                            const __m256 tv = _mm256_broadcast_ss(t + p);
                            acc[p][0] = _mm256_fmadd_ps(tv, u0, acc[p][0]);
                            acc[p][1] = _mm256_fmadd_ps(tv, u1, acc[p][1]);
                        }
                    }
                    for (int p = 0; p < B; ++p) {
                        _mm256_store_ps(mbuf[ra][ca][p], acc[p][0]);
                        _mm256_store_ps(mbuf[ra][ca][p] + 8, acc[p][1]);
                    }
                }
                for (int p = 0; p < B; ++p)
                    for (int h = 0; h < 16; h += 8) {
                        __m256 y[M];
                        out3(_mm256_load_ps(mbuf[ra][0][p] + h), _mm256_load_ps(mbuf[ra][1][p] + h),
                             _mm256_load_ps(mbuf[ra][2][p] + h), _mm256_load_ps(mbuf[ra][3][p] + h),
                             _mm256_load_ps(mbuf[ra][4][p] + h), _mm256_load_ps(mbuf[ra][5][p] + h), y);
                        for (int e = 0; e < M; ++e) _mm256_store_ps(ybuf[ra][e][p] + h, y[e]);
                    }
            }
            const int pb = std::min(B, wa.nq - qb * B);  // tiles of this block that reach the output
            for (int p = 0; p < pb; ++p) {
                const int q = qb * B + p;
                for (int e = 0; e < M && M * q + e < a.wo; ++e) {
                    const int ow = M * q + e;
                    for (int h = 0; h < 16; h += 8) {
                        __m256 yr[M];
                        out3(_mm256_load_ps(ybuf[0][e][p] + h), _mm256_load_ps(ybuf[1][e][p] + h),
                             _mm256_load_ps(ybuf[2][e][p] + h), _mm256_load_ps(ybuf[3][e][p] + h),
                             _mm256_load_ps(ybuf[4][e][p] + h), _mm256_load_ps(ybuf[5][e][p] + h), yr);
                        for (int r = 0; r < M; ++r) {
                            float* orow = orows[r];
                            if (!orow) continue;
                            const int64_t ridx = ((n * a.ho + M * s + r) * a.wo + ow) * a.cout + c0 + h;
                            float* dst = orow + static_cast<int64_t>(ow) * a.cout + c0 + h;
                            const float* res = a.epi.res ? a.epi.res + ridx : nullptr;
                            if (!part) {
                                _mm256_storeu_ps(dst, Epi8(a.epi, c0 + h).apply(yr[r], res));
                            } else if (c0 + h < a.cout) {
                                alignas(32) float buf[8];
                                _mm256_store_ps(buf, yr[r]);
                                const int nc = std::min(8, a.cout - c0 - h);
                                epilogue_store(a.epi, c0 + h, nc, [&](int j) { return buf[j]; }, res, dst);
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------- packing
// pack_rows_portable's test, (x - t) < 0 per channel (-0 and NaN give +1), eight channels per compare + movemask.
void pack_rows_avx2(const float* x, const float* t, uint64_t* dst, int64_t npix, int c, int wd) {
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t i = 0; i < npix; ++i) {
        const float* xp = x + i * c;
        uint64_t* d = dst + i * wd;
        for (int j = 0; j < wd; ++j) {
            const int c0 = 64 * j, ng = std::min(8, (c - c0) / 8);  // whole groups of 8 channels in this word
            uint64_t word = 0;
            for (int g = 0; g < ng; ++g) {
                __m256 v = _mm256_loadu_ps(xp + c0 + 8 * g);
                if (t) v = _mm256_sub_ps(v, _mm256_loadu_ps(t + c0 + 8 * g));
                const int m = _mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ));
                word |= static_cast<uint64_t>(static_cast<uint32_t>(m)) << (8 * g);
            }
            for (int ch = c0 + 8 * ng; ch < std::min(c, c0 + 64); ++ch)
                if ((t ? xp[ch] - t[ch] : xp[ch]) < 0.f) word |= 1ULL << (ch - c0);
            d[j] = word;
        }
    }
}

// ---------------------------------------------------------------------------------------------- max pool
// maxpool_rows_portable's rule and order with vmaxps: max(v, acc) is v > acc ? v : acc, and acc when either is NaN,
// which is right unless v is NaN (then v is taken). Channels past the last multiple of 8: the portable loop.
void maxpool_rows_avx2(const float* const* rows, int nrows, float* dst, int w, int64_t c, int k, int stride, int pad,
                       int wo) {
    const int64_t cv = c / 8 * 8;
    for (int ow = 0; ow < wo; ++ow) {
        const int w0 = ow * stride - pad;
        const int ws = w0 < 0 ? 0 : w0, we = w0 + k < w ? w0 + k : w;
        float* d = dst + static_cast<int64_t>(ow) * c;
        for (int64_t j = 0; j < cv; j += 8) {
            __m256 acc = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
            for (int r = 0; r < nrows; ++r)
                for (int iw = ws; iw < we; ++iw) {
                    const __m256 v = _mm256_loadu_ps(rows[r] + static_cast<int64_t>(iw) * c + j);
                    acc = _mm256_blendv_ps(_mm256_max_ps(v, acc), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
                }
            _mm256_storeu_ps(d + j, acc);
        }
        for (int64_t j = cv; j < c; ++j) {
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
    bconv_rows_avx2,
    fconv_row_avx2,
    nullptr,  // no direct real conv: im2col
    pack_rows_avx2,
    maxpool_rows_avx2,
    wino_transform_row_avx2,
    wino2_tile_transform_avx2,
    wino2_rows_avx2,
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
