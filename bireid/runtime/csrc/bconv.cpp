// The binary conv ops: on packed input, and with the packing (and a 1x1 downsample) fused in.
#include <algorithm>
#include <vector>

#include "engine.h"

namespace bireid {

F32 binary_conv2d(const U64& xp, const BConvWeights& bw, int stride, int pad, int pad_value, const OptF32& scale,
                  const OptF32& bias, const OptF32& residual, const OptF32& slope, const OptF32& shift_in,
                  const OptF32& shift_out, bool act_first, Clamp clamp) {
    require(xp.ndim() == 4, "binary_conv2d: packed input must be (N, Hp, Wp, words)");
    require(xp.shape(3) == bw.wd, "binary_conv2d: packed input has " + std::to_string(xp.shape(3)) +
                                      " words per pixel, weights expect " + std::to_string(bw.wd));
    require(stride >= 1 && pad >= 0 && (pad_value == 0 || pad_value == 1), "binary_conv2d: bad stride/pad/pad_value");
    BConvArgs a{};
    a.n = xp.shape(0);
    a.hp = static_cast<int>(xp.shape(1));
    a.wp = static_cast<int>(xp.shape(2));
    a.h = a.hp - 2 * pad;
    a.w = a.wp - 2 * pad;
    require(a.h > 0 && a.w > 0, "binary_conv2d: packed input smaller than its padding");
    a.wd = bw.wd;
    a.cin = bw.cin;
    a.cout = bw.cout;
    a.k = bw.k;
    a.stride = stride;
    a.pad = pad;
    a.pad_value = pad_value;
    a.ho = out_size(a.h, a.k, stride, pad, false);
    a.wo = out_size(a.w, a.k, stride, pad, false);
    require(a.ho > 0 && a.wo > 0, "binary_conv2d: kernel larger than the padded input");
    a.x = xp.data();
    bw.point(a);
    EpiHolder eh;
    make_epilogue(eh, a.cout, scale, bias, slope, shift_in, shift_out, act_first, clamp);
    a.epi = eh.e;
    attach_residual(a.epi, residual, a.n, a.ho, a.wo, a.cout, "binary_conv2d");
    F32 out({a.n, static_cast<int64_t>(a.ho), static_cast<int64_t>(a.wo), static_cast<int64_t>(a.cout)});
    a.out = out.mutable_data();
    const KernelTable& kt = kernels();
    const int nblk = (a.cout + OCB - 1) / OCB;
    const int64_t rows = a.n * a.ho;
    const int nth = num_threads();
    const int obc = bconv_blocks_per_unit(rows, nblk, nth), ngrp = (nblk + obc - 1) / obc;
    {
        py::gil_scoped_release nogil;
        // Dynamic scheduling: on a shared machine a descheduled thread must not stall the others at the barrier.
#pragma omp parallel for num_threads(nth) collapse(2) schedule(dynamic, 4)
        for (int64_t r = 0; r < rows; ++r)
            for (int g = 0; g < ngrp; ++g)
                kt.bconv_rows(a, r / a.ho, static_cast<int>(r % a.ho), g * obc, std::min(nblk, (g + 1) * obc));
    }
    return out;
}

// sign(x - thresh) packing fused with the binary conv in one call: no packed array goes back to Python, a 1x1
// strided conv packs only the pixels it reads, and with at least as many images as threads each thread packs
// an image's rows just ahead of the output rows that need them, so the float input (usually also the residual)
// is still in cache when the epilogue reads it.
F32 binary_conv2d_fused(const F32& x, const BConvWeights& bw, int stride, int pad, int pad_value, const OptF32& thresh,
                        const OptF32& scale, const OptF32& bias, const OptF32& residual, const OptF32& slope,
                        const OptF32& shift_in, const OptF32& shift_out, bool act_first, Clamp clamp,
                        const BConvWeights* ds, const OptF32& ds_scale, const OptF32& ds_bias) {
    require(x.ndim() == 4, "binary_conv2d_fused: x must be NHWC (4-D)");
    require(x.shape(3) == bw.cin, "binary_conv2d_fused: x has " + std::to_string(x.shape(3)) +
                                      " channels, weights expect " + std::to_string(bw.cin));
    require(stride >= 1 && pad >= 0 && (pad_value == 0 || pad_value == 1),
            "binary_conv2d_fused: bad stride/pad/pad_value");
    const int64_t n = x.shape(0);
    const int h = static_cast<int>(x.shape(1)), w = static_cast<int>(x.shape(2)), c = bw.cin;
    require(h > 0 && w > 0, "binary_conv2d_fused: empty input");
    const float* t = opt_vec(thresh, c, "thresh");  // null: threshold 0 (the packers skip the subtraction)
    std::vector<float> tzeros;
    if (!t && c % 64 != 0) {  // the masked AVX-512 packer wants a threshold vector: give it zeros once
        tzeros.assign(c, 0.f);
        t = tzeros.data();
    }
    BConvArgs a{};
    a.n = n;
    a.ho = out_size(h, bw.k, stride, pad, false);
    a.wo = out_size(w, bw.k, stride, pad, false);
    require(a.ho > 0 && a.wo > 0, "binary_conv2d_fused: kernel larger than the padded input");
    // A 1x1 unpadded strided conv reads every stride-th pixel only: pack just those, then it is a stride-1 conv.
    const bool compact = bw.k == 1 && pad == 0 && stride > 1;
    const int pstride = compact ? stride : 1;  // input pixels per packed pixel
    a.h = compact ? a.ho : h;
    a.w = compact ? a.wo : w;
    a.stride = compact ? 1 : stride;
    a.pad = pad;
    a.pad_value = pad_value;
    a.hp = a.h + 2 * pad;
    a.wp = a.w + 2 * pad;
    a.wd = bw.wd;
    a.cin = bw.cin;
    a.cout = bw.cout;
    a.k = bw.k;
    bw.point(a);
    EpiHolder eh;
    make_epilogue(eh, a.cout, scale, bias, slope, shift_in, shift_out, act_first, clamp);
    a.epi = eh.e;
    attach_residual(a.epi, residual, n, a.ho, a.wo, a.cout, "binary_conv2d_fused");
    // A fused downsample (the 1x1 stride-s binary conv of a ResNet shortcut, on the same packed input): its
    // BN-folded output is computed row by row just before the rows that take it as their residual.
    BConvArgs d{};
    EpiHolder deh;
    std::vector<float> dsout;
    if (ds) {
        require(!residual, "binary_conv2d_fused: a fused downsample is the residual; do not pass both");
        require(ds->k == 1 && ds->cin == c && ds->cout == bw.cout,
                "binary_conv2d_fused: the downsample must be a 1x1 conv with the same Cin and Cout");
        require(!compact && out_size(h, 1, stride, 0, false) == a.ho && out_size(w, 1, stride, 0, false) == a.wo,
                "binary_conv2d_fused: the downsample's output shape must match the conv's");
        make_epilogue(deh, ds->cout, ds_scale, ds_bias, std::nullopt, std::nullopt, std::nullopt, false, std::nullopt);
        d = a;  // same input geometry (x is set below), 1x1 taps at the stride, no padding
        d.k = 1;
        d.pad = 0;
        ds->point(d);
        d.epi = deh.e;
        dsout.resize(static_cast<size_t>(n) * a.ho * a.wo * a.cout);
        d.out = dsout.data();
        a.epi.res = dsout.data();
    }
    F32 out({n, static_cast<int64_t>(a.ho), static_cast<int64_t>(a.wo), static_cast<int64_t>(a.cout)});
    a.out = out.mutable_data();
    const float* xs = x.data();
    const KernelTable& kt = kernels();
    const int nblk = (a.cout + OCB - 1) / OCB;
    const int64_t img_words = static_cast<int64_t>(a.hp) * a.wp * a.wd;
    {
        py::gil_scoped_release nogil;
        // Zero words are +1 bits: the padding border (pad_value 0 is corrected in the kernels).
        std::vector<uint64_t> packed(static_cast<size_t>(n * img_words), 0);
        a.x = packed.data();
        // The downsample reads the unpadded pixels: the same buffer from the first interior pixel, same row pitch.
        d.x = packed.data() + (static_cast<int64_t>(pad) * a.wp + pad) * a.wd;
        // Packs packed row r (0 <= r < a.h) of image i.
        auto pack_row = [&](int64_t i, int r) {
            uint64_t* dst = packed.data() + i * img_words + (static_cast<int64_t>(r + pad) * a.wp + pad) * a.wd;
            const float* src = xs + ((i * h + static_cast<int64_t>(r) * pstride) * w) * c;
            if (pstride == 1) {
                kt.pack_rows(src, t, dst, a.w, c, a.wd);
                return;
            }
            for (int q = 0; q < a.w; ++q) {
                const float* sp = src + static_cast<int64_t>(q) * pstride * c;
                kt.pack_rows(sp, t, dst + static_cast<int64_t>(q) * a.wd, 1, c, a.wd);
            }
        };
        if (n >= num_threads()) {
#pragma omp parallel for num_threads(num_threads()) schedule(dynamic, 1)
            for (int64_t i = 0; i < n; ++i) {
                int next = 0;  // first packed row not yet packed
                for (int oh = 0; oh < a.ho; ++oh) {
                    // rows [0, need) must be packed (the downsample reads row oh * stride)
                    const int need = std::min(a.h, std::max(oh * a.stride - pad + a.k, ds ? oh * a.stride + 1 : 0));
                    for (; next < need; ++next) pack_row(i, next);
                    if (ds)
                        kt.bconv_rows(d, i, oh, 0, nblk);
                    kt.bconv_rows(a, i, oh, 0, nblk);
                }
            }
        } else {
            const int nth = num_threads();  // read here: inside the region it is per thread
            const int64_t rows = n * a.ho;
            const int obc = bconv_blocks_per_unit(rows, nblk, nth), ngrp = (nblk + obc - 1) / obc;
#pragma omp parallel num_threads(nth)
            {
#pragma omp for collapse(2) schedule(static)
                for (int64_t i = 0; i < n; ++i)
                    for (int r = 0; r < a.h; ++r) pack_row(i, r);
                for (const BConvArgs* args : {ds ? &d : nullptr, &a}) {  // the downsample first: it is the residual
                    if (!args) continue;
#pragma omp for collapse(2) schedule(dynamic, 4)
                    for (int64_t r = 0; r < rows; ++r)
                        for (int g = 0; g < ngrp; ++g)
                            kt.bconv_rows(*args, r / a.ho, static_cast<int>(r % a.ho), g * obc,
                                          std::min(nblk, (g + 1) * obc));
                }
            }
        }
    }
    return out;
}

}  // namespace bireid
