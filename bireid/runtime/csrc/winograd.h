// The stem's Winograd F(3,4) stride-2 real conv: the plan, the data layouts and the portable kernels (every ISA
// reproduces their float operations in the same order).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels.h"
#include "epilogue.h"

namespace bireid {

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
// The steps of each accumulator M[RA][CA] of the 2-D kernel in the portable order (row terms of RA, ci, column terms
// of CA), for vector kernels that compute one accumulator at a time: offsets into the row tile's input t (at tile
// block 0) and into a 16-channel block's weights u; accumulator RA * 6 + CA runs steps [first[i], first[i + 1]).
static inline void wino2_steps(const WinoPlan& pl, int nq, std::vector<int64_t>& toff, std::vector<int64_t>& uoff,
                               int (&first)[kWinoN * kWinoN + 1]) {
    const int c = pl.cin, nt = pl.nterms;
    const int64_t tsz = wino_row_floats(pl, nq), cstride = nt * wino_qs(nq);
    toff.clear();
    uoff.clear();
    for (int ra = 0; ra < kWinoN; ++ra)
        for (int ca = 0; ca < kWinoN; ++ca) {
            first[ra * kWinoN + ca] = static_cast<int>(toff.size());
            for (int rt = 0; rt < nt; ++rt) {
                if (pl.acc[rt] != ra) continue;
                for (int ci = 0; ci < c; ++ci)
                    for (int ct = 0; ct < nt; ++ct) {
                        if (pl.acc[ct] != ca) continue;
                        toff.push_back(rt * tsz + ci * cstride + ct * kWinoQB);
                        uoff.push_back(((static_cast<int64_t>(rt) * c + ci) * nt + ct) * 16);
                    }
            }
        }
    first[kWinoN * kWinoN] = static_cast<int>(toff.size());
}

// The output transform of six accumulators (one lane): y[0..2] (the formulas above).
static inline void wino_out3(float m0, float m1, float m2, float m3, float m4, float m5, float* y) {
    const float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
    y[0] = (m0 + a) + c;
    y[1] = b + (d + d);
    y[2] = (a + 4.f * c) + m5;
}

// The portable 2-D kernel for output rows 3s + er (orows[er], null when past the output): 16 channels x one tile of
// three columns at a time.
static inline void wino2_rows_portable(const FConvArgs& a, const Wino2Args& wa, int64_t n, int s,
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
}  // namespace bireid
