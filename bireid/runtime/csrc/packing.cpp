// Binarization: float activations to packed sign bits, binary weights to the kernels' blocked layout.
#include <cstring>

#include "engine.h"
#include "portable.h"

namespace bireid {

U64 pack_activations(const F32& x, const OptF32& thresh, int pad) {
    require(x.ndim() == 4, "pack_activations: x must be NHWC (4-D)");
    require(pad >= 0, "pack_activations: pad must be >= 0");
    const int64_t n = x.shape(0);
    const int h = static_cast<int>(x.shape(1)), w = static_cast<int>(x.shape(2)), c = static_cast<int>(x.shape(3));
    require(c > 0, "pack_activations: zero channels");
    const int wd = (c + 63) / 64;
    std::vector<float> zeros;
    const float* t = opt_vec(thresh, c, "thresh");
    if (!t) {
        zeros.assign(c, 0.f);
        t = zeros.data();
    }
    const int hp = h + 2 * pad, wp = w + 2 * pad;
    U64 out({n, static_cast<int64_t>(hp), static_cast<int64_t>(wp), static_cast<int64_t>(wd)});
    uint64_t* d = out.mutable_data();
    const float* xs = x.data();
    const KernelTable& kt = kernels();
    {
        py::gil_scoped_release nogil;
        std::memset(d, 0, sizeof(uint64_t) * n * hp * wp * wd);  // the border: +1 bits
#pragma omp parallel for num_threads(num_threads()) collapse(2) schedule(static) if (n * h * w * c > (1 << 18))
        for (int64_t i = 0; i < n; ++i)
            for (int r = 0; r < h; ++r) {
                const float* src = xs + ((i * h + r) * w) * c;
                uint64_t* dst = d + ((i * hp + r + pad) * wp + pad) * wd;
                kt.pack_rows(src, t, dst, w, c, wd);
            }
    }
    return out;
}

BConvWeights* make_weights(const U64& w, int cin) {
    require(w.ndim() == 4 && w.shape(1) == w.shape(2), "binary weights must be (Cout, k, k, words)");
    const int cout = static_cast<int>(w.shape(0)), k = static_cast<int>(w.shape(1)), wd = static_cast<int>(w.shape(3));
    require(cout > 0 && k > 0 && cin > 0, "binary weights: empty shape");
    require(wd == (cin + 63) / 64, "binary weights: words per tap must be ceil(cin/64)");
    // The AVX-512 epilogue converts dot products through int32.
    require(static_cast<int64_t>(k) * k * cin < (int64_t{1} << 30), "binary weights: k*k*cin must be < 2^30");
    auto* bw = new BConvWeights{cout, cin, k, wd, {}, {}, {}};
    const int64_t kwords = static_cast<int64_t>(k) * k * wd;
    const int nblk = (cout + OCB - 1) / OCB;
    bw->blk.assign(static_cast<size_t>(nblk) * kwords * OCB, 0);
    bw->wsum.assign(static_cast<size_t>(nblk) * k * k * OCB, 0);
    const uint64_t* src = w.data();
    const uint64_t tail_mask = (cin % 64) ? ((1ULL << (cin % 64)) - 1ULL) : ~0ULL;
    for (int o = 0; o < cout; ++o)
        for (int64_t q = 0; q < kwords; ++q) {
            uint64_t v = src[o * kwords + q];
            if (static_cast<int>(q % wd) == wd - 1) v &= tail_mask;  // bits past Cin must be 0 (see kernels.h)
            bw->blk[(static_cast<int64_t>(o / OCB) * kwords + q) * OCB + o % OCB] = v;
        }
    // The AVX2 kernel's nibble bytes: per block and weight word, per byte i, the 16 channels' low nibbles of byte i
    // then their high nibbles (kernels.h).
    bw->nib.assign(2 * bw->blk.size(), 0);
    auto* nb = reinterpret_cast<uint8_t*>(bw->nib.data());
    for (size_t q = 0; q < bw->blk.size(); ++q) {
        const size_t row = q / OCB, o = q % OCB;  // row: block * kwords + word
        for (int i = 0; i < 8; ++i) {
            const auto byte = static_cast<uint8_t>(bw->blk[q] >> (8 * i));
            nb[(row * 8 + i) * 32 + o] = byte & 15;
            nb[(row * 8 + i) * 32 + 16 + o] = byte >> 4;
        }
    }
    for (int o = 0; o < cout; ++o)
        for (int tap = 0; tap < k * k; ++tap) {
            int pc = 0;
            for (int j = 0; j < wd; ++j)
                pc += popcount64(bw->blk[(static_cast<int64_t>(o / OCB) * kwords + tap * wd + j) * OCB + o % OCB]);
            bw->wsum[(static_cast<int64_t>(o / OCB) * k * k + tap) * OCB + o % OCB] = cin - 2 * pc;
        }
    return bw;
}

}  // namespace bireid
