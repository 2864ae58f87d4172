// Pooling ops (NHWC): max / average pooling and global average pooling.
#include <algorithm>
#include <vector>

#include "engine.h"

namespace bireid {

F32 pool2d(const F32& x, int k, int stride, int pad, bool ceil_mode, bool is_max, bool count_include_pad) {
    require(x.ndim() == 4, "pool2d: x must be NHWC");
    require(k >= 1 && stride >= 1 && pad >= 0 && 2 * pad <= k, "pool2d: bad kernel/stride/padding");
    const int64_t n = x.shape(0);
    const int h = static_cast<int>(x.shape(1)), w = static_cast<int>(x.shape(2));
    const int64_t c = x.shape(3);
    const int ho = out_size(h, k, stride, pad, ceil_mode), wo = out_size(w, k, stride, pad, ceil_mode);
    require(ho > 0 && wo > 0, "pool2d: kernel larger than the padded input");
    F32 out({n, static_cast<int64_t>(ho), static_cast<int64_t>(wo), c});
    float* d = out.mutable_data();
    const float* xs = x.data();
    if (is_max) {  // the kernel table's max pool: PyTorch's selection rule, the same bits on every ISA
        const KernelTable& kt = kernels();
        py::gil_scoped_release nogil;
#pragma omp parallel for num_threads(num_threads()) collapse(2) schedule(static)
        for (int64_t i = 0; i < n; ++i)
            for (int oh = 0; oh < ho; ++oh) {
                const int h0 = oh * stride - pad;
                const int hs = std::max(h0, 0), he = std::min(h0 + k, h);
                std::vector<const float*> rows;
                for (int ih = hs; ih < he; ++ih) rows.push_back(xs + (i * h + ih) * w * c);
                kt.maxpool_rows(rows.data(), he - hs, d + (i * ho + oh) * wo * c, w, c, k, stride, pad, wo);
            }
        return out;
    }
    {
        py::gil_scoped_release nogil;
#pragma omp parallel for num_threads(num_threads()) collapse(2) schedule(static)
        for (int64_t i = 0; i < n; ++i)
            for (int oh = 0; oh < ho; ++oh) {
                std::vector<float> acc(c);
                for (int ow = 0; ow < wo; ++ow) {
                    const int h0 = oh * stride - pad, w0 = ow * stride - pad;
                    // Window clipped to the padded input gives PyTorch's count_include_pad divisor.
                    const int h1p = std::min(h0 + k, h + pad), w1p = std::min(w0 + k, w + pad);
                    const int hs = std::max(h0, 0), ws = std::max(w0, 0);
                    const int he = std::min(h0 + k, h), we = std::min(w0 + k, w);
                    std::fill(acc.begin(), acc.end(), 0.f);
                    for (int ih = hs; ih < he; ++ih)
                        for (int iw = ws; iw < we; ++iw) {
                            const float* p = xs + ((i * h + ih) * w + iw) * c;
                            for (int64_t j = 0; j < c; ++j) acc[j] += p[j];
                        }
                    float* dst = d + ((i * ho + oh) * wo + ow) * c;
                    const int cnt = count_include_pad ? (h1p - h0) * (w1p - w0) : (he - hs) * (we - ws);
                    for (int64_t j = 0; j < c; ++j) dst[j] = cnt > 0 ? acc[j] / static_cast<float>(cnt) : 0.f;
                }
            }
    }
    return out;
}

// Global average pooling (N, H, W, C) -> (N, C): per channel, the pixels summed in order in double precision,
// divided by H*W and rounded once to float32 (scalar code: identical on every ISA).
F32 global_avg_pool(const F32& x) {
    require(x.ndim() == 4 && x.shape(1) > 0 && x.shape(2) > 0, "global_avg_pool: x must be non-empty NHWC");
    const int64_t n = x.shape(0), hw = x.shape(1) * x.shape(2), c = x.shape(3);
    F32 out({n, c});
    float* d = out.mutable_data();
    const float* xs = x.data();
    {
        py::gil_scoped_release nogil;
#pragma omp parallel for num_threads(num_threads()) schedule(static) if (n * hw * c > (1 << 18))
        for (int64_t i = 0; i < n; ++i) {
            std::vector<double> acc(static_cast<size_t>(c), 0.0);
            const float* p = xs + i * hw * c;
            for (int64_t r = 0; r < hw; ++r, p += c)
                for (int64_t j = 0; j < c; ++j) acc[j] += p[j];
            for (int64_t j = 0; j < c; ++j) d[i * c + j] = static_cast<float>(acc[j] / static_cast<double>(hw));
        }
    }
    return out;
}

}  // namespace bireid
