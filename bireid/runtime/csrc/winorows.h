// The Winograd stem run row by row on demand, with an optional fused max pool (used by conv2d_float and by the
// wavefront chain's stem).
#pragma once
#include <algorithm>
#include <memory>
#include <vector>

#include "engine.h"

namespace bireid {

// The 2-D Winograd stride-2 conv (see winograd.h) of one image at a time, on demand: conv rows come in tiles of three
// (3s .. 3s + 2) from column-transformed padded rows [6s, 6s + span), kept in a ring; with a max pool, conv rows go
// to a ring of pk + 2 rows and each pooled row is made as soon as its window is complete. Neither the padded input
// nor the full conv output is stored. One per thread (its scratch buffers); start() begins an image.
struct WinoRows {
    const FConvArgs& a;  // weights, epilogue (a residual is indexed by image n), a.out for unpooled rows
    const WinoPlan& pl;
    const KernelTable& kt;
    const int h, w, pad;
    const bool nchw;
    const int pk, ps, pp, pwo;  // the fused max pool (pk == 0: none)
    const int nq, nring, ncring;
    const int64_t tsz, rowsz;
    // Scratch buffers, each written before it is read: left uninitialised.
    std::unique_ptr<float[]> tring, t2, scratch, cring;
    std::vector<const float*> rowptrs;
    const Wino2Args wa;
    const float* img = nullptr;
    int64_t n = 0;
    int tnext = 0, next = 0;  // next padded input row to transform, next conv row to compute

    WinoRows(const FConvArgs& a_, const FConvWeights& fw, const KernelTable& kt_, int h_, int w_, int pad_, bool nchw_,
             int pk_, int ps_, int pp_, int pwo_)
        : a(a_), pl(fw.plan), kt(kt_), h(h_), w(w_), pad(pad_), nchw(nchw_), pk(pk_), ps(ps_), pp(pp_), pwo(pwo_),
          nq((a_.wo + kWinoM - 1) / kWinoM), nring(fw.plan.span + 2 * kWinoM), ncring(pk_ + kWinoM - 1),
          tsz(wino_row_floats(fw.plan, nq)), rowsz(static_cast<int64_t>(a_.wo) * a_.cout),
          tring(new float[static_cast<size_t>(nring) * tsz]), t2(new float[static_cast<size_t>(pl.nterms) * tsz]),
          scratch(new float[static_cast<size_t>(wino_scratch_floats(pl, nq))]),
          cring(new float[pk_ ? static_cast<size_t>(ncring) * rowsz : 1]),
          rowptrs(static_cast<size_t>(2 * kWinoM * ((a_.ho + kWinoM - 1) / kWinoM) + pl.span)),
          wa{fw.wino2.data(), t2.get(), nq, fw.plan} {}

    void start(const float* image, int64_t idx) {
        img = image;
        n = idx;
        tnext = next = 0;
    }

    // Conv rows 3s .. 3s + 2 into dst[0..2] (null past the output).
    void tile(int s3, float* const* dst) {
        const int r0 = 2 * kWinoM * s3, r1 = r0 + pl.span;
        tnext = std::max(tnext, r0);
        for (; tnext < r1; ++tnext) {
            float* d = tring.get() + (tnext % nring) * tsz;
            kt.wino_transform_row(pl, img, nchw, h, w, pad, tnext, nq, d, scratch.get());
        }
        for (int r = r0; r < r1; ++r) rowptrs[r] = tring.get() + (r % nring) * tsz;
        kt.wino2_tile_transform(pl, nq, s3, rowptrs.data(), t2.get());
        kt.wino2_rows(a, wa, n, s3, dst);
    }

    // Conv rows [b0, b1) (b0 a multiple of three) into the output a.out.
    void rows(int b0, int b1) {
        float* dst[kWinoM];
        for (int s3 = b0 / kWinoM; kWinoM * s3 < b1; ++s3) {
            for (int e = 0; e < kWinoM; ++e) {
                const int r = kWinoM * s3 + e;
                dst[e] = r < a.ho ? a.out + (n * a.ho + r) * rowsz : nullptr;
            }
            tile(s3, dst);
        }
    }

    // Pooled row ph (pwo x cout floats) into dst. Rows of one image must come in increasing order.
    void pooled_row(int ph, float* dst) {
        const int h0 = ph * ps - pp;
        const int hs = std::max(h0, 0), he = std::min(h0 + pk, a.ho);
        next = std::max(next, hs);
        float* cdst[kWinoM];
        while (next < he) {
            const int s3 = next / kWinoM;
            for (int e = 0; e < kWinoM; ++e) {
                const int r = kWinoM * s3 + e;
                cdst[e] = r < a.ho ? cring.get() + (r % ncring) * rowsz : nullptr;
            }
            tile(s3, cdst);
            next = kWinoM * s3 + kWinoM;
        }
        const float* prow[64];
        for (int r = hs; r < he; ++r) prow[r - hs] = cring.get() + (r % ncring) * rowsz;
        const int nr = std::max(he - hs, 0);
        kt.maxpool_rows(prow, nr, dst, a.wo, a.cout, pk, ps, pp, pwo);
    }
};

}  // namespace bireid
