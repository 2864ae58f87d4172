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
// AVX2 has no vector popcount. For one byte, popcount(x ^ w) = T[x_lo][w_lo] + T[x_hi][w_hi] with T[a][b] =
// popcount(a ^ b) over 4-bit values, and vpshufb looks up one 16-entry table row for 32 bytes at once. So each
// input byte x selects a pair of rows (kPairLut[x]: its low nibble's row in the low 128-bit lane, its high nibble's
// in the high lane) and the weights come as nibble bytes (wnib: per weight byte, 16 channels' low nibbles, then
// their high nibbles): one vpshufb and one byte add count 16 channels x 8 bits, with no xor and no preparation of
// the input (its bytes are read where they were packed). Register block: P pixels x B blocks of 16 channels, so a
// step loads P table rows and B weight vectors for P*B vpshufb. Byte counts grow by at most 4 per step, 32 per
// word: they are widened into 16-bit totals every kFlush words (one per channel, at most 64 per word), which hold
// kMaxWords words; longer reductions (Cin > 7,200 at 3x3) take the portable kernel.
constexpr int kFlush = 7;
constexpr int64_t kMaxWords = 65535 / 64;
constexpr int kRun = 32;  // pixels whose counts are made before their epilogue runs

struct PairLut {
    alignas(32) uint8_t row[256][32];
};
constexpr PairLut make_pair_lut() {
    PairLut t{};
    for (int x = 0; x < 256; ++x)
        for (int e = 0; e < 16; ++e) {
            const int lo = (x & 15) ^ e, hi = (x >> 4) ^ e;
            t.row[x][e] = static_cast<uint8_t>((lo & 1) + (lo >> 1 & 1) + (lo >> 2 & 1) + (lo >> 3 & 1));
            t.row[x][16 + e] = static_cast<uint8_t>((hi & 1) + (hi >> 1 & 1) + (hi >> 2 & 1) + (hi >> 3 & 1));
        }
    return t;
}
constexpr PairLut kPairLut = make_pair_lut();

// acc += vpshufb(table, idx), as one asm statement: written as intrinsics, GCC regroups a chain of byte adds into
// a tree (they are associative), which keeps every lookup of the unrolled step alive at once and spills them.
inline void lookup_add(__m256i& acc, __m256i table, __m256i idx) {
    __m256i t;
    asm("vpshufb %3, %2, %1\n\tvpaddb %1, %0, %0" : "+x"(acc), "=&x"(t) : "x"(table), "x"(idx));
}

// A channel's count in a pass as 16 bits: its byte in the low-nibble lane plus its byte in the high-nibble lane.
inline __m256i pass_sum(__m256i a) {
    return _mm256_add_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(a)),
                            _mm256_cvtepu8_epi16(_mm256_extracti128_si256(a, 1)));
}

// The popcounts of P pixels x B channel blocks into cnt[b][p0 + p][16] (int32). xp[p]: pixel p's first input byte
// (tap 0, 0); woff[q]: the byte offset of the pixel's q-th input word (taps in weight order), q < nw; wb: the
// first block's weight bytes, the next blocks wbs bytes apart. No vector register outside the accumulators, the
// table rows, the weights and one temporary stays live in the word loop (8 + 4 + 2 + 1 of the 16 for 4 x 2): the
// flushes widen with vpmovzxbw, which needs no zero register.
template <int P, int B>
inline void bcount(const uint8_t* const* xp, const int64_t* woff, int64_t nw, const uint8_t* wb, int64_t wbs, int p0,
                   int32_t (*cnt)[kRun][OCB]) {
    const uint8_t* lut = &kPairLut.row[0][0];
    __m256i acc[P][B];
    alignas(32) uint16_t tot[P][B][OCB];  // 16-bit totals per channel
    const uint8_t* w = wb;
    auto pass = [&](int64_t q0, int64_t qe) {  // words [q0, qe) into the byte counters
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
            for (int b = 0; b < B; ++b) acc[p][b] = _mm256_setzero_si256();
        for (int64_t q = q0; q < qe; ++q, w += 8 * 32) {
            const int64_t off = woff[q];
#pragma GCC unroll 8
            for (int i = 0; i < 8; ++i) {
                __m256i t[P];
#pragma GCC unroll 4
                for (int p = 0; p < P; ++p)
                    t[p] = _mm256_load_si256(reinterpret_cast<const __m256i*>(lut + (size_t{xp[p][off + i]} << 5)));
#pragma GCC unroll 2
                for (int b = 0; b < B; ++b) {
                    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * wbs + 32 * i));
#pragma GCC unroll 4
                    for (int p = 0; p < P; ++p) lookup_add(acc[p][b], t[p], wv);
                }
            }
        }
    };
    pass(0, std::min(nw, int64_t{kFlush}));
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
        for (int b = 0; b < B; ++b) _mm256_store_si256(reinterpret_cast<__m256i*>(tot[p][b]), pass_sum(acc[p][b]));
    for (int64_t q0 = kFlush; q0 < nw; q0 += kFlush) {
        pass(q0, std::min(nw, q0 + kFlush));
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
            for (int b = 0; b < B; ++b) {
                __m256i* t = reinterpret_cast<__m256i*>(tot[p][b]);
                *t = _mm256_add_epi16(*t, pass_sum(acc[p][b]));
            }
    }
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
        for (int b = 0; b < B; ++b) {
            const __m256i t = _mm256_load_si256(reinterpret_cast<const __m256i*>(tot[p][b]));
            int32_t* c = cnt[b][p0 + p];
            _mm256_store_si256(reinterpret_cast<__m256i*>(c), _mm256_cvtepu16_epi32(_mm256_castsi256_si128(t)));
            _mm256_store_si256(reinterpret_cast<__m256i*>(c + 8), _mm256_cvtepu16_epi32(_mm256_extracti128_si256(t, 1)));
        }
}

// Pixels [ow0, ow0 + np) of output row (n, oh) for channel blocks ob .. ob + B - 1: counts, then the epilogue of
// each block from registers (the zero-padding correction, the int32 conversion and Epi8, set up once per run).
template <int B>
void bconv_run(const BConvArgs& a, const int64_t* woff, int64_t n, int oh, int ob, int ow0, int np) {
    alignas(32) int32_t cnt[B][kRun][OCB];
    const int64_t kwords = static_cast<int64_t>(a.k) * a.k * a.wd;
    const int64_t ps = static_cast<int64_t>(a.stride) * a.wd * 8;  // bytes between output pixels' inputs
    const uint8_t* row = reinterpret_cast<const uint8_t*>(a.x + (n * a.hp + static_cast<int64_t>(oh) * a.stride) *
                                                                   a.wp * a.wd);
    const int64_t wbs = kwords * 8 * 32;
    const uint8_t* wb = reinterpret_cast<const uint8_t*>(a.wnib) + ob * wbs;
    for (int p = 0; p < np;) {
        const uint8_t* xp[4];
        for (int q = 0; q < 4; ++q) xp[q] = row + (ow0 + p + q) * ps;
        switch (std::min(4, np - p)) {
            case 4: bcount<4, B>(xp, woff, kwords, wb, wbs, p, cnt); p += 4; break;
            case 3: bcount<3, B>(xp, woff, kwords, wb, wbs, p, cnt); p += 3; break;
            case 2: bcount<2, B>(xp, woff, kwords, wb, wbs, p, cnt); p += 2; break;
            default: bcount<1, B>(xp, woff, kwords, wb, wbs, p, cnt); p += 1; break;
        }
    }
    const __m256i kfull = _mm256_set1_epi32(static_cast<int>(kwords / a.wd * a.cin));
    const int ih0 = oh * a.stride - a.pad;
    const bool zpad = a.pad_value == 0 && a.pad > 0;
    for (int b = 0; b < B; ++b) {
        const int o0 = (ob + b) * OCB;
        if (a.cout - o0 < OCB) {  // a partial channel block: the portable per-pixel epilogue
            int64_t c64[kRun][OCB];
            for (int p = 0; p < np; ++p)
                for (int j = 0; j < OCB; ++j) c64[p][j] = cnt[b][p][j];
            finish_tile(a, n, oh, ow0, np, ob + b, c64[0]);
            continue;
        }
        const int32_t* ws = a.wsum + static_cast<int64_t>(ob + b) * a.k * a.k * OCB;
        const int64_t idx0 = ((n * a.ho + oh) * a.wo + ow0) * a.cout + o0;
        for (int hf = 0; hf < 2; ++hf) {
            const Epi8 er(a.epi, o0 + 8 * hf);
            for (int p = 0; p < np; ++p) {
                // dot = K - 2 * popcount - (padded taps' weight sums), converted once from int32 (the counts fit:
                // K < 2^30; the conversion rounds like the portable int64 -> float one).
                const __m256i c = _mm256_load_si256(reinterpret_cast<const __m256i*>(cnt[b][p] + 8 * hf));
                __m256i dot = _mm256_sub_epi32(kfull, _mm256_slli_epi32(c, 1));
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

// Output row (n, oh) of channel blocks [ob0, ob1): pairs of blocks (the last one alone), runs of kRun pixels.
void bconv_rows_avx2(const BConvArgs& a, int64_t n, int oh, int ob0, int ob1) {
    if (static_cast<int64_t>(a.k) * a.k * a.wd > kMaxWords) {
        bconv_rows_portable(a, n, oh, ob0, ob1);
        return;
    }
    // The byte offset of each input word a pixel reads (taps in weight order) from its first one.
    thread_local std::vector<int64_t> woff;
    woff.clear();
    for (int kh = 0; kh < a.k; ++kh)
        for (int kw = 0; kw < a.k; ++kw)
            for (int j = 0; j < a.wd; ++j) woff.push_back(8 * ((static_cast<int64_t>(kh) * a.wp + kw) * a.wd + j));
    for (int ob = ob0; ob < ob1; ob += 2)
        for (int ow0 = 0; ow0 < a.wo; ow0 += kRun) {
            const int np = std::min(kRun, a.wo - ow0);
            if (ob + 1 < ob1) bconv_run<2>(a, woff.data(), n, oh, ob, ow0, np);
            else bconv_run<1>(a, woff.data(), n, oh, ob, ow0, np);
        }
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
