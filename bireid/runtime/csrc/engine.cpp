// pybind11 module bireid.runtime._engine: bit-packed binary convolution (XNOR + popcount) and the few float
// kernels a binary re-ID network needs. No torch. Instruction set picked at run time (see current_isa()).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace py = pybind11;
using namespace bireid;

using F32 = py::array_t<float, py::array::c_style | py::array::forcecast>;
using U64 = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>;

namespace bireid {

// ---------------------------------------------------------------------------------------------- portable
static inline int popcount64(uint64_t v) {
    // SWAR popcount: no dependence on the popcnt instruction, so this path runs on any x86-64 (or other) CPU.
    v = v - ((v >> 1) & 0x5555555555555555ULL);
    v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
    v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return static_cast<int>((v * 0x0101010101010101ULL) >> 56);
}

void bconv_row_portable(const BConvArgs& a, int64_t n, int oh, int ob) {
    int64_t cnt[OCB];
    const int64_t kwords = static_cast<int64_t>(a.k) * a.k * a.wd;
    const uint64_t* wb = a.wblk + ob * kwords * OCB;
    const uint64_t* row = a.x + (n * a.hp + static_cast<int64_t>(oh) * a.stride) * a.wp * a.wd;
    const int64_t rs = static_cast<int64_t>(a.wp) * a.wd;
    for (int ow = 0; ow < a.wo; ++ow) {
        const uint64_t* base = row + static_cast<int64_t>(ow) * a.stride * a.wd;
        for (int j = 0; j < OCB; ++j) cnt[j] = 0;
        const uint64_t* wp = wb;
        for (int kh = 0; kh < a.k; ++kh)
            for (int kw = 0; kw < a.k; ++kw) {
                const uint64_t* xp = base + kh * rs + static_cast<int64_t>(kw) * a.wd;
                for (int j = 0; j < a.wd; ++j, wp += OCB) {
                    const uint64_t xv = xp[j];
                    for (int o = 0; o < OCB; ++o) cnt[o] += popcount64(xv ^ wp[o]);
                }
            }
        finish_tile(a, n, oh, ow, 1, ob, cnt);
    }
}

void fconv_row_portable(const FConvArgs& a, const float* cols, int64_t n, int oh) {
    float acc[16];
    for (int ow = 0; ow < a.wo; ++ow) {
        const float* x = cols + static_cast<int64_t>(ow) * a.kdim;
        for (int c0 = 0; c0 < a.cout_pad; c0 += 16) {
            for (int j = 0; j < 16; ++j) acc[j] = 0.f;
            const float* w = a.w + c0;
            for (int k = 0; k < a.kdim; ++k, w += a.cout_pad)
                for (int j = 0; j < 16; ++j) acc[j] = std::fma(x[k], w[j], acc[j]);
            fconv_store(a, n, oh, ow, 1, c0, 16, acc, 16);
        }
    }
}

void pack_rows_portable(const float* x, const float* t, uint64_t* dst, int64_t npix, int c, int wd) {
    for (int64_t i = 0; i < npix; ++i) {
        const float* xp = x + i * c;
        uint64_t* d = dst + i * wd;
        for (int j = 0; j < wd; ++j) {
            uint64_t word = 0;
            const int c1 = std::min(c, (j + 1) * 64);
            for (int ch = j * 64; ch < c1; ++ch)
                if ((t ? xp[ch] - t[ch] : xp[ch]) < 0.f) word |= 1ULL << (ch - j * 64);
            d[j] = word;
        }
    }
}

// ---------------------------------------------------------------------------------------------- shared
}  // namespace bireid

// ---------------------------------------------------------------------------------------------- ISA choice
static bool isa_supported(int isa) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (isa == ISA_AVX512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq") &&
                                  __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                                  __builtin_cpu_supports("avx512vl");
    if (isa == ISA_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("popcnt");
#else
    if (isa != ISA_PORTABLE) return false;
#endif
    return isa == ISA_PORTABLE;
}

static const char* isa_name(int isa) {
    return isa == ISA_AVX512 ? "avx512" : isa == ISA_AVX2 ? "avx2" : "portable";
}

static int parse_isa(const std::string& s) {
    if (s == "avx512") return ISA_AVX512;
    if (s == "avx2") return ISA_AVX2;
    if (s == "portable") return ISA_PORTABLE;
    throw std::invalid_argument("unknown instruction set '" + s + "': use avx512, avx2 or portable");
}

static int best_isa() {
    for (int i : {ISA_AVX512, ISA_AVX2})
        if (isa_supported(i)) return i;
    return ISA_PORTABLE;
}

static int g_isa = -1;

static int current_isa() {
    if (g_isa >= 0) return g_isa;
    const char* env = std::getenv("BIREID_RUNTIME_ISA");
    int isa = best_isa();
    if (env && *env) {
        isa = parse_isa(env);
        if (!isa_supported(isa))
            throw std::invalid_argument(std::string("BIREID_RUNTIME_ISA=") + env +
                                        " is not supported by this CPU (best available: " + isa_name(best_isa()) + ")");
    }
    g_isa = isa;
    return g_isa;
}

static void set_isa(const std::string& name) {
    const int isa = parse_isa(name);
    if (!isa_supported(isa))
        throw std::invalid_argument("instruction set '" + name + "' is not supported by this CPU");
    g_isa = isa;
}

// ---------------------------------------------------------------------------------------------- helpers
// The engine's thread count, per calling thread (0: never set, the OpenMP default), passed to every parallel
// region. Kept apart from the OpenMP runtime's own setting: other libraries that share the runtime in one process
// (PyTorch) reset that one.
static thread_local int t_threads = 0;
static int get_num_threads_impl() {
#ifdef _OPENMP
    return t_threads > 0 ? t_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

static void require(bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument(msg);
}

static const float* opt_vec(const std::optional<F32>& a, int64_t n, const char* name) {
    if (!a) return nullptr;
    require(a->ndim() == 1 && a->shape(0) == n, std::string(name) + " must have shape (" + std::to_string(n) + ",)");
    return a->data();
}

// An Epilogue plus the identity vectors it points to when the caller gave no scale/bias/shift.
struct EpiHolder {
    Epilogue e;
    std::vector<float> ones, zeros;
};

// The vectors (each null or cout floats) must outlive the epilogue.
static void make_epilogue_ptrs(EpiHolder& h, int64_t cout, const float* scale, const float* bias, const float* slope,
                               const float* shift_in, const float* shift_out, bool act_first,
                               std::optional<std::pair<float, float>> clamp) {
    h.ones.assign(cout, 1.f);
    h.zeros.assign(cout, 0.f);
    Epilogue& e = h.e;
    e.scale = scale;
    e.bias = bias;
    e.slope = slope;
    e.shift_in = shift_in;
    e.shift_out = shift_out;
    require(e.slope || (!e.shift_in && !e.shift_out), "shift_in/shift_out need slope");
    e.plain = !e.shift_in && !e.shift_out && !clamp;
    e.has_act = e.slope != nullptr;
    if (!e.scale) e.scale = h.ones.data();
    if (!e.bias) e.bias = h.zeros.data();
    if (!e.slope) e.slope = h.ones.data();  // slope 1: the activation is the identity
    if (!e.shift_in) e.shift_in = h.zeros.data();
    if (!e.shift_out) e.shift_out = h.zeros.data();
    e.zeros = h.zeros.data();
    e.act_first = act_first;
    e.clamp_lo = clamp ? clamp->first : -std::numeric_limits<float>::infinity();
    e.clamp_hi = clamp ? clamp->second : std::numeric_limits<float>::infinity();
    require(!clamp || e.clamp_lo <= e.clamp_hi, "clamp: lo must be <= hi");
}

static void make_epilogue(EpiHolder& h, int64_t cout, const std::optional<F32>& scale, const std::optional<F32>& bias,
                          const std::optional<F32>& slope, const std::optional<F32>& shift_in,
                          const std::optional<F32>& shift_out, bool act_first,
                          std::optional<std::pair<float, float>> clamp) {
    make_epilogue_ptrs(h, cout, opt_vec(scale, cout, "scale"), opt_vec(bias, cout, "bias"),
                       opt_vec(slope, cout, "slope"), opt_vec(shift_in, cout, "shift_in"),
                       opt_vec(shift_out, cout, "shift_out"), act_first, clamp);
}

// Point the epilogue at a residual input after checking it has the output's (N, Ho, Wo, Cout) shape.
static void attach_residual(Epilogue& e, const std::optional<F32>& residual, int64_t n, int64_t ho, int64_t wo,
                            int64_t cout, const char* op) {
    if (!residual) return;
    require(residual->ndim() == 4 && residual->shape(0) == n && residual->shape(1) == ho &&
                residual->shape(2) == wo && residual->shape(3) == cout,
            std::string(op) + ": residual must match the output shape (N, Ho, Wo, Cout)");
    e.res = residual->data();
}

static inline int out_size(int in, int k, int s, int p, bool ceil_mode) {
    const int num = in + 2 * p - k;
    if (num < 0) return 0;
    int o = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + p) --o;  // last window must start inside the input or left padding
    return o;
}

// ---------------------------------------------------------------------------------------------- packing
static U64 pack_activations(const F32& x, const std::optional<F32>& thresh, int pad) {
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
    const int isa = current_isa();
    {
        py::gil_scoped_release nogil;
        std::memset(d, 0, sizeof(uint64_t) * n * hp * wp * wd);  // the border: +1 bits
#pragma omp parallel for num_threads(get_num_threads_impl()) collapse(2) schedule(static) if (n * h * w * c > (1 << 18))
        for (int64_t i = 0; i < n; ++i)
            for (int r = 0; r < h; ++r) {
                const float* src = xs + ((i * h + r) * w) * c;
                uint64_t* dst = d + ((i * hp + r + pad) * wp + pad) * wd;
                if (isa == ISA_AVX512) pack_rows_avx512(src, t, dst, w, c, wd);
                else pack_rows_portable(src, t, dst, w, c, wd);
            }
    }
    return out;
}

// Binary conv weights in the kernels' blocked layout, plus per-tap weight sums for the zero-padding correction.
struct BConvWeights {
    int cout, cin, k, wd;
    std::vector<uint64_t> blk;
    std::vector<int32_t> wsum;
};

static BConvWeights* make_weights(const U64& w, int cin) {
    require(w.ndim() == 4 && w.shape(1) == w.shape(2), "binary weights must be (Cout, k, k, words)");
    const int cout = static_cast<int>(w.shape(0)), k = static_cast<int>(w.shape(1)), wd = static_cast<int>(w.shape(3));
    require(cout > 0 && k > 0 && cin > 0, "binary weights: empty shape");
    require(wd == (cin + 63) / 64, "binary weights: words per tap must be ceil(cin/64)");
    // The AVX-512 epilogue converts dot products through int32.
    require(static_cast<int64_t>(k) * k * cin < (int64_t{1} << 30), "binary weights: k*k*cin must be < 2^30");
    auto* bw = new BConvWeights{cout, cin, k, wd, {}, {}};
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
    for (int o = 0; o < cout; ++o)
        for (int tap = 0; tap < k * k; ++tap) {
            int pc = 0;
            for (int j = 0; j < wd; ++j) pc += popcount64(bw->blk[(static_cast<int64_t>(o / OCB) * kwords + tap * wd + j) * OCB + o % OCB]);
            bw->wsum[(static_cast<int64_t>(o / OCB) * k * k + tap) * OCB + o % OCB] = cin - 2 * pc;
        }
    return bw;
}

static F32 binary_conv2d(const U64& xp, const BConvWeights& bw, int stride, int pad, int pad_value,
                         const std::optional<F32>& scale, const std::optional<F32>& bias,
                         const std::optional<F32>& residual, const std::optional<F32>& slope,
                         const std::optional<F32>& shift_in, const std::optional<F32>& shift_out, bool act_first,
                         std::optional<std::pair<float, float>> clamp) {
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
    a.wblk = bw.blk.data();
    a.wsum = bw.wsum.data();
    EpiHolder eh;
    make_epilogue(eh, a.cout, scale, bias, slope, shift_in, shift_out, act_first, clamp);
    a.epi = eh.e;
    attach_residual(a.epi, residual, a.n, a.ho, a.wo, a.cout, "binary_conv2d");
    F32 out({a.n, static_cast<int64_t>(a.ho), static_cast<int64_t>(a.wo), static_cast<int64_t>(a.cout)});
    a.out = out.mutable_data();
    const int isa = current_isa();
    const int nblk = (a.cout + OCB - 1) / OCB;
    const int64_t rows = a.n * a.ho;
    {
        py::gil_scoped_release nogil;
        // Dynamic scheduling: on a shared machine a descheduled thread must not stall the others at the barrier.
#pragma omp parallel for num_threads(get_num_threads_impl()) collapse(2) schedule(dynamic, 4)
        for (int64_t r = 0; r < rows; ++r)
            for (int ob = 0; ob < nblk; ++ob) {
                const int64_t n = r / a.ho;
                const int oh = static_cast<int>(r % a.ho);
                if (isa == ISA_AVX512) bconv_row_avx512(a, n, oh, ob);
                else if (isa == ISA_AVX2) bconv_row_avx2(a, n, oh, ob);
                else bconv_row_portable(a, n, oh, ob);
            }
    }
    return out;
}

// sign(x - thresh) packing fused with the binary conv in one call: no packed array goes back to Python, a 1x1
// strided conv packs only the pixels it reads, and with at least as many images as threads each thread packs
// an image's rows just ahead of the output rows that need them, so the float input (usually also the residual)
// is still in cache when the epilogue reads it.
static F32 binary_conv2d_fused(const F32& x, const BConvWeights& bw, int stride, int pad, int pad_value,
                               const std::optional<F32>& thresh, const std::optional<F32>& scale,
                               const std::optional<F32>& bias, const std::optional<F32>& residual,
                               const std::optional<F32>& slope, const std::optional<F32>& shift_in,
                               const std::optional<F32>& shift_out, bool act_first,
                               std::optional<std::pair<float, float>> clamp, const BConvWeights* ds,
                               const std::optional<F32>& ds_scale, const std::optional<F32>& ds_bias) {
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
    a.wblk = bw.blk.data();
    a.wsum = bw.wsum.data();
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
        d.wblk = ds->blk.data();
        d.wsum = ds->wsum.data();
        d.epi = deh.e;
        dsout.resize(static_cast<size_t>(n) * a.ho * a.wo * a.cout);
        d.out = dsout.data();
        a.epi.res = dsout.data();
    }
    F32 out({n, static_cast<int64_t>(a.ho), static_cast<int64_t>(a.wo), static_cast<int64_t>(a.cout)});
    a.out = out.mutable_data();
    const float* xs = x.data();
    const int isa = current_isa();
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
                if (isa == ISA_AVX512) pack_rows_avx512(src, t, dst, a.w, c, a.wd);
                else pack_rows_portable(src, t, dst, a.w, c, a.wd);
                return;
            }
            for (int q = 0; q < a.w; ++q) {
                const float* sp = src + static_cast<int64_t>(q) * pstride * c;
                if (isa == ISA_AVX512) pack_rows_avx512(sp, t, dst + static_cast<int64_t>(q) * a.wd, 1, c, a.wd);
                else pack_rows_portable(sp, t, dst + static_cast<int64_t>(q) * a.wd, 1, c, a.wd);
            }
        };
        auto conv_row_of = [&](const BConvArgs& args, int64_t i, int oh, int ob) {
            if (isa == ISA_AVX512) bconv_row_avx512(args, i, oh, ob);
            else if (isa == ISA_AVX2) bconv_row_avx2(args, i, oh, ob);
            else bconv_row_portable(args, i, oh, ob);
        };
        auto conv_row = [&](int64_t i, int oh, int ob) { conv_row_of(a, i, oh, ob); };
        if (n >= get_num_threads_impl()) {
#pragma omp parallel for num_threads(get_num_threads_impl()) schedule(dynamic, 1)
            for (int64_t i = 0; i < n; ++i) {
                int next = 0;  // first packed row not yet packed
                for (int oh = 0; oh < a.ho; ++oh) {
                    // rows [0, need) must be packed (the downsample reads row oh * stride)
                    const int need = std::min(a.h, std::max(oh * a.stride - pad + a.k, ds ? oh * a.stride + 1 : 0));
                    for (; next < need; ++next) pack_row(i, next);
                    if (ds)
                        for (int ob = 0; ob < nblk; ++ob) conv_row_of(d, i, oh, ob);
                    for (int ob = 0; ob < nblk; ++ob) conv_row(i, oh, ob);
                }
            }
        } else {
#pragma omp parallel num_threads(get_num_threads_impl())
            {
#pragma omp for collapse(2) schedule(static)
                for (int64_t i = 0; i < n; ++i)
                    for (int r = 0; r < a.h; ++r) pack_row(i, r);
                const int64_t rows = n * a.ho;
                if (ds) {
#pragma omp for collapse(2) schedule(dynamic, 4)
                    for (int64_t r = 0; r < rows; ++r)
                        for (int ob = 0; ob < nblk; ++ob) conv_row_of(d, r / a.ho, static_cast<int>(r % a.ho), ob);
                }
#pragma omp for collapse(2) schedule(dynamic, 4)
                for (int64_t r = 0; r < rows; ++r)
                    for (int ob = 0; ob < nblk; ++ob) conv_row(r / a.ho, static_cast<int>(r % a.ho), ob);
            }
        }
    }
    return out;
}

static std::vector<float> opt_copy(const std::optional<F32>& a, int64_t n, const char* name) {
    const float* p = opt_vec(a, n, name);
    return p ? std::vector<float>(p, p + n) : std::vector<float>();
}

// An epilogue's per-channel arguments, copied (empty: absent), for ops built once and run many times.
struct OwnedEpilogue {
    std::vector<float> scale, bias, slope, shift_in, shift_out;
    bool act_first = false;
    std::optional<std::pair<float, float>> clamp;

    void set(int64_t co, const std::optional<F32>& scale_, const std::optional<F32>& bias_,
             const std::optional<F32>& slope_, const std::optional<F32>& shift_in_,
             const std::optional<F32>& shift_out_, bool act_first_, std::optional<std::pair<float, float>> clamp_) {
        scale = opt_copy(scale_, co, "scale");
        bias = opt_copy(bias_, co, "bias");
        slope = opt_copy(slope_, co, "slope");
        shift_in = opt_copy(shift_in_, co, "shift_in");
        shift_out = opt_copy(shift_out_, co, "shift_out");
        require(!slope.empty() || (shift_in.empty() && shift_out.empty()), "shift_in/shift_out need slope");
        act_first = act_first_;
        clamp = clamp_;
        require(!clamp || clamp->first <= clamp->second, "clamp: lo must be <= hi");
    }
    void make(EpiHolder& h, int64_t co) const {
        auto p = [](const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); };
        make_epilogue_ptrs(h, co, p(scale), p(bias), p(slope), p(shift_in), p(shift_out), act_first, clamp);
    }
};

// A chain of binary convs, each reading the previous one's output, run as a row wavefront per image: a layer's row
// is computed as soon as the rows it needs exist, so every layer's input is still in cache when it is packed and
// added, and intermediate outputs live in small rings of rows. A layer's residual is its own input (a stride-1
// 'same' conv: Bi-Real blocks), a fused 1x1 downsample of its input (ResNet shortcut), or none. Each row is
// computed by exactly the kernels binary_conv2d_fused uses: the results are the same bits.
struct BChainLayer {
    py::object wref, dsref;  // keep the weights alive
    const BConvWeights* w = nullptr;
    const BConvWeights* ds = nullptr;  // fused downsample or null
    int stride = 1, pad = 0, pad_value = 1;
    bool residual_is_input = false;
    std::vector<float> thresh;  // empty: threshold 0
    OwnedEpilogue epi;
    std::vector<float> ds_scale, ds_bias;  // empty: absent
};

static BChainLayer* make_chain_layer(py::object weights, int stride, int pad, int pad_value, bool residual_is_input,
                                     const std::optional<F32>& thresh, const std::optional<F32>& scale,
                                     const std::optional<F32>& bias, const std::optional<F32>& slope,
                                     const std::optional<F32>& shift_in, const std::optional<F32>& shift_out,
                                     bool act_first, std::optional<std::pair<float, float>> clamp, py::object ds_weights,
                                     const std::optional<F32>& ds_scale, const std::optional<F32>& ds_bias) {
    auto l = std::make_unique<BChainLayer>();
    l->w = weights.cast<const BConvWeights*>();
    l->wref = std::move(weights);
    require(stride >= 1 && pad >= 0, "binary chain layer: bad stride/pad");
    require(pad_value == 0 || pad_value == 1, "binary chain layer: pad_value must be 0 or 1");
    require(!residual_is_input || (stride == 1 && l->w->k == 2 * pad + 1 && l->w->cin == l->w->cout),
            "binary chain layer: a residual input needs a stride-1 conv with k = 2 * pad + 1 and Cin == Cout");
    if (!ds_weights.is_none()) {
        l->ds = ds_weights.cast<const BConvWeights*>();
        l->dsref = std::move(ds_weights);
        require(!residual_is_input, "binary chain layer: a fused downsample is the residual; not both");
        require(l->ds->k == 1 && l->ds->cin == l->w->cin && l->ds->cout == l->w->cout,
                "binary chain layer: the downsample must be a 1x1 conv with the same Cin and Cout");
    }
    l->stride = stride;
    l->pad = pad;
    l->pad_value = pad_value;
    l->residual_is_input = residual_is_input;
    const int64_t co = l->w->cout;
    l->thresh = opt_copy(thresh, l->w->cin, "thresh");
    l->epi.set(co, scale, bias, slope, shift_in, shift_out, act_first, clamp);
    l->ds_scale = opt_copy(ds_scale, co, "ds_scale");
    l->ds_bias = opt_copy(ds_bias, co, "ds_bias");
    return l.release();
}

// ---------------------------------------------------------------------------------------------- float ops
// Real conv weights: (k*k*cin, cout) in (kh, kw, cin) row order, columns padded to a multiple of 16.
// For 5 <= k <= 15 and a small cin (the stem) also the 2-D Winograd F(3,4) form used by stride-2 convs (see
// kernels.h), computed in double and rounded once.
struct FConvWeights {
    int cout, cin, k, cout_pad;
    std::vector<float> w;
    WinoPlan plan;
    std::vector<float> wino2;  // [cout_pad / 16][rterm][ci][cterm][16]; empty: no Winograd form
};

// Largest k * cin that takes the direct / Winograd small-Cin paths (the stem has 7 * 3).
constexpr int kSmallKC = 64;

// The F(3,4) products U of one chunk's taps g[0..3] (zero past the chunk), in double (see kernels.h).
static void wino_chunk_products(const double* g, double* u) {
    u[0] = g[0] / 4;
    u[1] = (g[0] + g[1] + g[2] + g[3]) / 6;
    u[2] = (g[0] - g[1] + g[2] - g[3]) / 6;
    u[3] = (g[0] + 2 * g[1] + 4 * g[2] + 8 * g[3]) / 24;
    u[4] = (g[0] - 2 * g[1] + 4 * g[2] - 8 * g[3]) / 24;
    u[5] = g[3];
}

static void make_wino_weights(FConvWeights& fw) {
    const int k = fw.k, c = fw.cin, cp = fw.cout_pad;
    if (k < 5 || k > 15 || k * c > kSmallKC) return;  // k < 5 gains little; the plan holds k <= 15
    fw.plan = make_wino_plan(k, c);
    const WinoPlan& pl = fw.plan;
    // w is (kh, kw, ci) rows x cout_pad columns; zero columns past cout stay zero.
    auto g = [&](int kh, int kw, int ci, int o) -> double {
        return fw.w[((static_cast<int64_t>(kh) * k + kw) * c + ci) * cp + o];
    };
    // The taps of chunk ch along one axis, from tap(kernel index): zero past the phase's taps.
    auto chunk_taps = [&](int ch, auto tap, double* t4) {
        for (int t = 0; t < kWinoR; ++t) {
            const int kk = 2 * (pl.cm[ch] + t) + pl.cph[ch];
            t4[t] = kk < k ? tap(kk) : 0.0;
        }
    };
    // 2-D: the column-transformed taps u1[kh][ci][cterm] (double), then the same transform along kh.
    const int nt = pl.nterms;
    const int64_t blk2 = static_cast<int64_t>(nt) * c * nt * 16;
    fw.wino2.assign(static_cast<size_t>(cp / 16 * blk2), 0.f);
    std::vector<double> u1(static_cast<size_t>(k) * c * nt);
    double t4[kWinoR], p6[kWinoN];
    for (int o = 0; o < fw.cout; ++o) {
        for (int kh = 0; kh < k; ++kh)
            for (int ci = 0; ci < c; ++ci) {
                double* u = u1.data() + (static_cast<int64_t>(kh) * c + ci) * nt;
                for (int ch = 0; ch < pl.nchunks; u += pl.cn[ch], ++ch) {
                    chunk_taps(ch, [&](int kw) { return g(kh, kw, ci, o); }, t4);
                    wino_chunk_products(t4, p6);
                    for (int j = 0; j < pl.cn[ch]; ++j) u[j] = p6[j];
                }
            }
        float* u2 = fw.wino2.data() + (o / 16) * blk2 + o % 16;  // [rterm][ci][cterm][16], lane o % 16
        for (int ci = 0; ci < c; ++ci)
            for (int ct = 0; ct < nt; ++ct) {
                for (int ch = 0, rt = 0; ch < pl.nchunks; rt += pl.cn[ch], ++ch) {
                    chunk_taps(ch, [&](int kh) { return u1[(static_cast<int64_t>(kh) * c + ci) * nt + ct]; }, t4);
                    wino_chunk_products(t4, p6);
                    for (int j = 0; j < pl.cn[ch]; ++j)
                        u2[((static_cast<int64_t>(rt + j) * c + ci) * nt + ct) * 16] = static_cast<float>(p6[j]);
                }
            }
    }
}

static FConvWeights* make_fweights(const F32& wmat, int cin, int k) {
    require(wmat.ndim() == 2 && cin > 0 && k > 0 && wmat.shape(0) == static_cast<int64_t>(k) * k * cin && wmat.shape(1) > 0,
            "real conv weights must be (k*k*cin, cout)");
    const int cout = static_cast<int>(wmat.shape(1));
    const int cp = (cout + 15) / 16 * 16;
    auto* fw = new FConvWeights{cout, cin, k, cp, {}};
    fw->w.assign(static_cast<size_t>(wmat.shape(0)) * cp, 0.f);
    for (int64_t r = 0; r < wmat.shape(0); ++r)
        std::memcpy(fw->w.data() + r * cp, wmat.data() + r * cout, sizeof(float) * cout);
    make_wino_weights(*fw);
    return fw;
}

static F32 pool2d(const F32& x, int k, int stride, int pad, bool ceil_mode, bool is_max, bool count_include_pad);

// Optional max pooling fused after a real conv: (k, stride, pad, ceil_mode).
using PoolSpec = std::tuple<int, int, int, bool>;

// The 2-D Winograd stride-2 conv (see kernels.h) of one image at a time, on demand: conv rows come in tiles of three
// (3s .. 3s + 2) from column-transformed padded rows [6s, 6s + span), kept in a ring; with a max pool, conv rows go
// to a ring of pk + 2 rows and each pooled row is made as soon as its window is complete. Neither the padded input
// nor the full conv output is stored. One per thread (its scratch buffers); start() begins an image.
struct WinoRows {
    const FConvArgs& a;  // weights, epilogue (a residual is indexed by image n), a.out for unpooled rows
    const WinoPlan& pl;
    const int h, w, pad, isa;
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

    WinoRows(const FConvArgs& a_, const FConvWeights& fw, int h_, int w_, int pad_, bool nchw_, int isa_, int pk_,
             int ps_, int pp_, int pwo_)
        : a(a_), pl(fw.plan), h(h_), w(w_), pad(pad_), isa(isa_), nchw(nchw_), pk(pk_), ps(ps_), pp(pp_), pwo(pwo_),
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
            if (isa == ISA_AVX512) wino_transform_row_avx512(pl, img, nchw, h, w, pad, tnext, nq, d, scratch.get());
            else if (isa == ISA_AVX2) wino_transform_row_avx2(pl, img, nchw, h, w, pad, tnext, nq, d, scratch.get());
            else wino_transform_row(pl, img, nchw, h, w, pad, tnext, nq, d, scratch.get());
        }
        for (int r = r0; r < r1; ++r) rowptrs[r] = tring.get() + (r % nring) * tsz;
        if (isa == ISA_AVX512) {
            wino2_tile_transform_avx512(pl, nq, s3, rowptrs.data(), t2.get());
            wino2_rows_avx512(a, wa, n, s3, dst);
        } else if (isa == ISA_AVX2) {
            wino2_tile_transform_avx2(pl, nq, s3, rowptrs.data(), t2.get());
            wino2_rows_avx2(a, wa, n, s3, dst);
        } else {
            wino2_tile_transform(pl, nq, s3, [&](int r) { return rowptrs[r]; }, t2.get());
            wino2_rows_generic(a, wa, n, s3, dst);
        }
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
        if (isa == ISA_AVX512) maxpool_rows_avx512(prow, nr, dst, a.wo, a.cout, pk, ps, pp, pwo);
        else if (isa == ISA_AVX2) maxpool_rows_avx2(prow, nr, dst, a.wo, a.cout, pk, ps, pp, pwo);
        else maxpool_rows_generic(prow, nr, dst, a.wo, a.cout, pk, ps, pp, pwo);
    }
};

// The real stride-2 conv + max pool (a ResNet stem, with its epilogue) feeding a binary_chain: its pooled rows are
// made one at a time (WinoRows) just before the first layer packs them, so they never go to memory.
struct ChainStem {
    py::object wref;  // keeps the weights alive
    const FConvWeights* fw = nullptr;
    int pad = 0;
    PoolSpec pool;
    bool nchw = true;
    OwnedEpilogue epi;
};

static ChainStem* make_chain_stem(py::object weights, int pad, PoolSpec pool, bool nchw,
                                  const std::optional<F32>& scale,
                                  const std::optional<F32>& bias, const std::optional<F32>& slope,
                                  const std::optional<F32>& shift_in, const std::optional<F32>& shift_out,
                                  bool act_first, std::optional<std::pair<float, float>> clamp) {
    auto st = std::make_unique<ChainStem>();
    st->fw = weights.cast<const FConvWeights*>();
    st->wref = std::move(weights);
    require(!st->fw->wino2.empty(),
            "chain stem: the conv must have the Winograd form (5 <= k <= 15, small k * cin), run at stride 2");
    require(pad >= 0, "chain stem: bad pad");
    const auto [pk, ps, pp, pceil] = pool;
    (void)pceil;
    require(pk >= 1 && pk <= 64 && ps >= 1 && pp >= 0 && 2 * pp <= pk, "chain stem: bad pool kernel/stride/padding");
    st->pad = pad;
    st->pool = pool;
    st->nchw = nchw;
    st->epi.set(st->fw->cout, scale, bias, slope, shift_in, shift_out, act_first, clamp);
    return st.release();
}

// A cheap timestamp for the per-layer profile of binary_chain (called twice per row, so a system call would cost as
// much as a small layer's row): the TSC on x86, else the steady clock, in arbitrary units.
static double profile_ticks() {
#if defined(__x86_64__) || defined(__i386__)
    return static_cast<double>(__rdtsc());
#else
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
#endif
}

static F32 binary_chain(const F32& x, const std::vector<const BChainLayer*>& layers,
                        std::optional<py::array_t<double, py::array::c_style>> profile, const ChainStem* stem) {
    require(!layers.empty(), "binary_chain: no layers");
    const int nl = static_cast<int>(layers.size());
    double* prof = nullptr;
    if (profile) {
        require(profile->ndim() == 1 && profile->shape(0) == static_cast<py::ssize_t>(nl + (stem ? 1 : 0)),
                stem ? "binary_chain: profile must be a float64 array with one entry per layer, then the stem's"
                     : "binary_chain: profile must be a float64 array with one entry per layer");
        prof = profile->mutable_data();
    }
    const int64_t n = x.shape(0);
    // With a stem, x is the image batch and the first layer reads the stem's pooled rows as they are made.
    FConvArgs sa{};
    EpiHolder sepi;
    int sh = 0, sw = 0, spho = 0, spwo = 0;
    if (stem) {
        const FConvWeights& fw = *stem->fw;
        require(x.ndim() == 4 && x.shape(stem->nchw ? 1 : 3) == fw.cin,
                stem->nchw ? "binary_chain: x must be NCHW with the stem's input channels"
                           : "binary_chain: x must be NHWC with the stem's input channels");
        sh = static_cast<int>(x.shape(stem->nchw ? 2 : 1));
        sw = static_cast<int>(x.shape(stem->nchw ? 3 : 2));
        sa.w = fw.w.data();
        sa.kdim = fw.k * fw.k * fw.cin;
        sa.cout = fw.cout;
        sa.cout_pad = fw.cout_pad;
        sa.ho = out_size(sh, fw.k, 2, stem->pad, false);
        sa.wo = out_size(sw, fw.k, 2, stem->pad, false);
        require(sa.ho > 0 && sa.wo > 0, "binary_chain: the stem's kernel is larger than the padded input");
        const auto [pk, ps, pp, pceil] = stem->pool;
        spho = out_size(sa.ho, pk, ps, pp, pceil);
        spwo = out_size(sa.wo, pk, ps, pp, pceil);
        require(spho > 0 && spwo > 0, "binary_chain: the stem's pool window is larger than its padded conv output");
        stem->epi.make(sepi, fw.cout);
        sa.epi = sepi.e;
    } else {
        require(x.ndim() == 4, "binary_chain: x must be NHWC (4-D)");
    }
    // Per layer: the kernel arguments (batch of one image; x / out / res set per row), epilogues, geometry.
    std::vector<BConvArgs> args(nl), dargs(nl);
    std::vector<EpiHolder> epis(nl), depis(nl);
    std::vector<std::vector<float>> tz(nl);
    int h = stem ? spho : static_cast<int>(x.shape(1)), w = stem ? spwo : static_cast<int>(x.shape(2));
    int64_t c = stem ? stem->fw->cout : x.shape(3);
    require(h > 0 && w > 0, "binary_chain: empty input");
    auto ptr = [](const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); };
    for (int l = 0; l < nl; ++l) {
        const BChainLayer& L = *layers[l];
        require(L.w->cin == c, "binary_chain: layer " + std::to_string(l) + " expects " + std::to_string(L.w->cin) +
                                   " channels, gets " + std::to_string(c));
        L.epi.make(epis[l], L.w->cout);
        BConvArgs& a = args[l];
        a.n = 1;
        a.h = h;
        a.w = w;
        a.k = L.w->k;
        a.stride = L.stride;
        a.pad = L.pad;
        a.pad_value = L.pad_value;
        a.ho = out_size(h, a.k, a.stride, a.pad, false);
        a.wo = out_size(w, a.k, a.stride, a.pad, false);
        require(a.ho > 0 && a.wo > 0, "binary_chain: layer " + std::to_string(l) + ": kernel larger than its input");
        require(!L.residual_is_input || (a.ho == h && a.wo == w), "binary_chain: residual shape mismatch");
        a.hp = h + 2 * a.pad;
        a.wp = w + 2 * a.pad;
        a.wd = L.w->wd;
        a.cin = L.w->cin;
        a.cout = L.w->cout;
        a.wblk = L.w->blk.data();
        a.wsum = L.w->wsum.data();
        a.epi = epis[l].e;
        if (L.ds) {
            require(out_size(h, 1, a.stride, 0, false) == a.ho && out_size(w, 1, a.stride, 0, false) == a.wo,
                    "binary_chain: layer " + std::to_string(l) + ": the downsample's output shape must match");
            make_epilogue_ptrs(depis[l], L.w->cout, ptr(L.ds_scale), ptr(L.ds_bias), nullptr, nullptr, nullptr, false,
                               std::nullopt);
            BConvArgs& d = dargs[l];
            d = a;
            d.k = 1;
            d.pad = 0;
            d.wblk = L.ds->blk.data();
            d.wsum = L.ds->wsum.data();
            d.epi = depis[l].e;
        }
        if (L.thresh.empty() && L.w->cin % 64 != 0) tz[l].assign(L.w->cin, 0.f);
        h = a.ho;
        w = a.wo;
        c = a.cout;
    }
    const int hl = h, wl = w;  // the last layer's output
    F32 out({n, static_cast<int64_t>(hl), static_cast<int64_t>(wl), c});
    float* outp = out.mutable_data();
    const float* xs = x.data();
    const int isa = current_isa();
    const int64_t xin_img = stem ? static_cast<int64_t>(sh) * sw * stem->fw->cin
                                 : static_cast<int64_t>(args[0].h) * args[0].w * args[0].cin;
    {
        py::gil_scoped_release nogil;
#pragma omp parallel num_threads(get_num_threads_impl())
        {
            // Per thread, one image at a time: each layer's packed input, each intermediate output in a ring of
            // rows (the rows its consumer still needs; the last layer writes to out), a downsample row.
            // Rings and downsample rows are written before they are read: left uninitialised (no zeroing pass).
            std::vector<std::vector<uint64_t>> packed(nl);
            std::vector<std::unique_ptr<float[]>> ring(nl - 1), dsrow(nl);
            std::vector<int> nring(nl - 1);
            std::vector<int64_t> rowsz(nl);
            for (int l = 0; l < nl; ++l) {
                packed[l].assign(static_cast<size_t>(args[l].hp) * args[l].wp * args[l].wd, 0);
                rowsz[l] = static_cast<int64_t>(args[l].wo) * args[l].cout;
                if (layers[l]->ds) dsrow[l].reset(new float[static_cast<size_t>(rowsz[l])]);
            }
            for (int l = 0; l + 1 < nl; ++l) {
                nring[l] = args[l + 1].k + 2 * args[l + 1].stride + 2;
                ring[l].reset(new float[static_cast<size_t>(nring[l]) * rowsz[l]]);
            }
            std::vector<BConvArgs> a(args), d(dargs);
            std::vector<int> packed_rows(nl), done(nl);
            std::vector<double> secs(prof ? nl + 1 : 0, 0.0);
            auto row_of = [&](int l, int q) { return ring[l].get() + (q % nring[l]) * rowsz[l]; };
            // The stem's pooled rows (the first layer's input) in a ring like the other layers' outputs: a row is
            // made just before the first layer packs it, and still there when that layer adds it as residual.
            std::unique_ptr<WinoRows> wr;
            std::unique_ptr<float[]> sring;
            const int nsring = args[0].k + 2 * args[0].stride + 2;
            const int64_t srowsz = static_cast<int64_t>(args[0].w) * args[0].cin;
            if (stem) {
                const auto [pk, ps, pp, pceil] = stem->pool;
                wr = std::make_unique<WinoRows>(sa, *stem->fw, sh, sw, stem->pad, stem->nchw, isa, pk, ps, pp, spwo);
                sring.reset(new float[static_cast<size_t>(nsring) * srowsz]);
            }
            auto input_row = [&](const float* xin, int q) {
                return stem ? sring.get() + (q % nsring) * srowsz
                            : xin + static_cast<int64_t>(q) * args[0].w * args[0].cin;
            };
            // The kernels address output / residual row oh at base + oh * row size: the base that puts it at p.
            auto base_for = [](const float* p, int oh, int64_t rs) {
                return reinterpret_cast<float*>(reinterpret_cast<uintptr_t>(p) -
                                                static_cast<uintptr_t>(oh) * static_cast<uintptr_t>(rs) * sizeof(float));
            };
            auto conv_row = [&](const BConvArgs& al, int r) {
                const int nblk = (al.cout + OCB - 1) / OCB;
                for (int ob = 0; ob < nblk; ++ob) {
                    if (isa == ISA_AVX512) bconv_row_avx512(al, 0, r, ob);
                    else if (isa == ISA_AVX2) bconv_row_avx2(al, 0, r, ob);
                    else bconv_row_portable(al, 0, r, ob);
                }
            };
#pragma omp for schedule(dynamic, 1)
            for (int64_t i = 0; i < n; ++i) {
                const float* xin = xs + i * xin_img;
                if (stem) wr->start(xin, 0);
                float* oimg = outp + i * static_cast<int64_t>(hl) * wl * c;
                for (int l = 0; l < nl; ++l) {
                    a[l].x = packed[l].data();
                    d[l].x = packed[l].data() + (static_cast<int64_t>(a[l].pad) * a[l].wp + a[l].pad) * a[l].wd;
                    packed_rows[l] = done[l] = 0;
                }
                // Sweep the layers, one row each per sweep when its input rows exist and the ring slot it writes is
                // free (its consumer has packed, and no longer needs as residual, the row that was there).
                while (done[nl - 1] < hl) {
                    for (int l = 0; l < nl; ++l) {
                        BConvArgs& al = a[l];
                        const int r = done[l];
                        if (r >= al.ho) continue;
                        const bool has_ds = layers[l]->ds != nullptr;
                        const int need = std::min(al.h, std::max(r * al.stride - al.pad + al.k,
                                                                 has_ds ? r * al.stride + 1 : 0));
                        if (l > 0 && done[l - 1] < need) continue;
                        if (l + 1 < nl) {
                            int low = packed_rows[l + 1];
                            if (layers[l + 1]->residual_is_input) low = std::min(low, done[l + 1]);
                            if (r >= low + nring[l]) continue;
                        }
                        const double t0 = prof ? profile_ticks() : 0.0;
                        const float* t = layers[l]->thresh.empty() ? (tz[l].empty() ? nullptr : tz[l].data())
                                                                   : layers[l]->thresh.data();
                        for (int& q = packed_rows[l]; q < need; ++q) {
                            uint64_t* dst = packed[l].data() + (static_cast<int64_t>(q + al.pad) * al.wp + al.pad) * al.wd;
                            const float* src = l == 0 ? input_row(xin, q) : row_of(l - 1, q);
                            if (l == 0 && stem) {
                                const double s0 = prof ? profile_ticks() : 0.0;
                                wr->pooled_row(q, sring.get() + (q % nsring) * srowsz);
                                if (prof) secs[nl] += profile_ticks() - s0;
                            }
                            if (isa == ISA_AVX512) pack_rows_avx512(src, t, dst, al.w, al.cin, al.wd);
                            else pack_rows_portable(src, t, dst, al.w, al.cin, al.wd);
                        }
                        if (has_ds) {  // the downsample's row first: it is this row's residual
                            d[l].out = base_for(dsrow[l].get(), r, rowsz[l]);
                            conv_row(d[l], r);
                            al.epi.res = d[l].out;
                        } else if (layers[l]->residual_is_input) {
                            const float* res = l == 0 ? input_row(xin, r) : row_of(l - 1, r);
                            al.epi.res = base_for(res, r, rowsz[l]);
                        } else {
                            al.epi.res = nullptr;
                        }
                        al.out = l + 1 < nl ? base_for(row_of(l, r), r, rowsz[l]) : oimg;
                        conv_row(al, r);
                        ++done[l];
                        if (prof) secs[l] += profile_ticks() - t0;  // the stem's share is taken out below
                    }
                }
            }
            if (prof) {
                if (stem) secs[0] -= secs[nl];  // the stem's rows were made inside the first layer's sections
#pragma omp critical
                for (int l = 0; l < nl + (stem ? 1 : 0); ++l) prof[l] += secs[l];
            }
        }
    }
    return out;
}

static F32 conv2d_float(const F32& x, const FConvWeights& fw, int stride, int pad, const std::optional<F32>& scale,
                        const std::optional<F32>& bias, const std::optional<F32>& residual,
                        const std::optional<F32>& slope, const std::optional<F32>& shift_in,
                        const std::optional<F32>& shift_out, bool act_first,
                        std::optional<std::pair<float, float>> clamp, bool nchw, std::optional<PoolSpec> pool) {
    require(x.ndim() == 4 && x.shape(nchw ? 1 : 3) == fw.cin,
            nchw ? "conv2d_float: x must be NCHW with cin channels" : "conv2d_float: x must be NHWC with cin channels");
    require(stride >= 1 && pad >= 0, "conv2d_float: bad stride/pad");
    const int64_t n = x.shape(0);
    const int h = static_cast<int>(x.shape(nchw ? 2 : 1)), w = static_cast<int>(x.shape(nchw ? 3 : 2)), c = fw.cin,
              k = fw.k;
    FConvArgs a{};
    a.w = fw.w.data();
    a.kdim = k * k * c;
    a.cout = fw.cout;
    a.cout_pad = fw.cout_pad;
    a.ho = out_size(h, k, stride, pad, false);
    a.wo = out_size(w, k, stride, pad, false);
    require(a.ho > 0 && a.wo > 0, "conv2d_float: kernel larger than the padded input");
    EpiHolder eh;
    make_epilogue(eh, a.cout, scale, bias, slope, shift_in, shift_out, act_first, clamp);
    a.epi = eh.e;
    attach_residual(a.epi, residual, n, a.ho, a.wo, a.cout, "conv2d_float");
    const int isa = current_isa();
    // Stride 2, k >= 5, small Cin (the stem): 2-D Winograd F(3,4) on every ISA (same bits on all).
    const bool wino = stride == 2 && !fw.wino2.empty();
    // A 1x1 stride-1 conv of an NHWC tensor is one matrix product over all its pixels (consecutive in memory):
    // no im2col copy, and long runs of pixels for the register tiles (a 16x8 map's rows of 8 pixels left a
    // 2-pixel tail tile per row).
    const bool pointwise = !wino && k == 1 && stride == 1 && pad == 0 && !nchw && !pool;
    const bool direct = !wino && !pointwise && isa == ISA_AVX512 && static_cast<int64_t>(k) * c <= kSmallKC;
    int pk = 0, ps = 0, pp = 0, pho = 0, pwo = 0;
    if (pool) {
        bool pceil = false;
        std::tie(pk, ps, pp, pceil) = *pool;
        require(pk >= 1 && pk <= 64 && ps >= 1 && pp >= 0 && 2 * pp <= pk, "conv2d_float: bad pool kernel/stride/padding");
        require(!residual, "conv2d_float: a fused pool cannot take a residual");
        if (!direct && !wino) {  // other paths: the plain conv, then the pooling op (the same values as fused)
            const F32 full = conv2d_float(x, fw, stride, pad, scale, bias, residual, slope, shift_in, shift_out,
                                          act_first, clamp, nchw, std::nullopt);
            return pool2d(full, pk, ps, pp, pceil, true, true);
        }
        pho = out_size(a.ho, pk, ps, pp, pceil);
        pwo = out_size(a.wo, pk, ps, pp, pceil);
        require(pho > 0 && pwo > 0, "conv2d_float: pool window larger than the padded conv output");
    }
    F32 out = pool ? F32({n, static_cast<int64_t>(pho), static_cast<int64_t>(pwo), static_cast<int64_t>(a.cout)})
                   : F32({n, static_cast<int64_t>(a.ho), static_cast<int64_t>(a.wo), static_cast<int64_t>(a.cout)});
    a.out = out.mutable_data();
    const float* xs = x.data();
    if (wino) {
        const int64_t img = static_cast<int64_t>(c) * h * w;
        const int nth = get_num_threads_impl();
        const int orows = pool ? pho : a.ho;  // rows of the op's output
        // Work units: bands of output rows (a multiple of three without a pool), one band per image when there
        // are at least as many images as threads.
        const int bands = n >= nth ? 1 : std::min<int>(orows, static_cast<int>((nth + n - 1) / n));
        int band = (orows + bands - 1) / bands;
        if (!pool) band = (band + kWinoM - 1) / kWinoM * kWinoM;
        {
            py::gil_scoped_release nogil;
#pragma omp parallel num_threads(get_num_threads_impl())
            {
                WinoRows wr(a, fw, h, w, pad, nchw, isa, pk, ps, pp, pwo);
#pragma omp for schedule(dynamic, 1)
                for (int64_t un = 0; un < n * bands; ++un) {
                    const int64_t i = un / bands;
                    const int b0 = static_cast<int>(un % bands) * band, b1 = std::min(orows, b0 + band);
                    wr.start(xs + i * img, i);
                    if (!pool) {
                        wr.rows(b0, b1);
                        continue;
                    }
                    for (int ph = b0; ph < b1; ++ph) wr.pooled_row(ph, a.out + ((i * pho + ph) * pwo) * a.cout);
                }
            }
        }
        return out;
    }
    if (pointwise) {
        const int64_t npix = n * h * w;
        constexpr int64_t kBlock = 96;  // pixels per work unit (16 register tiles of 6)
        const int64_t nblk = (npix + kBlock - 1) / kBlock;
        py::gil_scoped_release nogil;
#pragma omp parallel for num_threads(get_num_threads_impl()) schedule(dynamic, 1)
        for (int64_t b = 0; b < nblk; ++b) {
            const int64_t p0 = b * kBlock, len = std::min(kBlock, npix - p0);
            FConvArgs ab = a;  // the block as one output row of len pixels of image 0
            ab.ho = 1;
            ab.wo = static_cast<int>(len);
            ab.out = a.out + p0 * a.cout;
            if (a.epi.res) ab.epi.res = a.epi.res + p0 * a.cout;
            const float* rows = xs + p0 * c;
            if (isa == ISA_AVX512) fconv_row_avx512(ab, rows, 0, 0);
            else if (isa == ISA_AVX2) fconv_row_avx2(ab, rows, 0, 0);
            else fconv_row_portable(ab, rows, 0, 0);
        }
        return out;
    }
    // Small Cin (the stem): the im2col copy costs as much as a good part of the FMAs, so the AVX-512 path reads
    // a zero-padded copy of the input directly (same reduction order: bit-identical to the im2col path).
    if (direct) {
        const int hp = h + 2 * pad, wp = w + 2 * pad;
        const int64_t img = static_cast<int64_t>(hp) * wp * c;
        {
        py::gil_scoped_release nogil;
        std::vector<float> xpad(static_cast<size_t>(n * img), 0.f);
        const int nth = get_num_threads_impl();  // read here: inside the region it is per thread
#pragma omp parallel num_threads(nth)
        {
#pragma omp for schedule(static)
            for (int64_t i = 0; i < n * h; ++i) {
                const int64_t im = i / h, r = i % h;
                float* dst = xpad.data() + im * img + ((r + pad) * wp + pad) * c;
                if (!nchw) {
                    std::memcpy(dst, xs + i * w * c, sizeof(float) * w * c);
                } else {  // NCHW input: transpose while padding (saves a separate pass over the image)
                    for (int ch = 0; ch < c; ++ch) {
                        const float* src = xs + ((im * c + ch) * h + r) * w;
                        for (int col = 0; col < w; ++col) dst[static_cast<int64_t>(col) * c + ch] = src[col];
                    }
                }
            }
            if (!pool) {
#pragma omp for collapse(2) schedule(dynamic, 2)
                for (int64_t i = 0; i < n; ++i)
                    for (int oh = 0; oh < a.ho; ++oh)
                        fconv_direct_row_avx512(a, xpad.data() + i * img, wp, c, k, stride, i, oh,
                                                a.out + (i * a.ho + oh) * a.wo * a.cout);
            } else {
                // Conv rows go to a ring of pk rows and are pooled as soon as a window is complete: the full conv
                // output never goes to memory. Work units are bands of pooled rows (one per image when there are
                // enough images; a band recomputes at most pk - ps conv rows of its neighbour).
                const int64_t rowsz = static_cast<int64_t>(a.wo) * a.cout;
                const int bands = n >= nth ? 1 : std::min<int>(pho, static_cast<int>((nth + n - 1) / n));
                const int band = (pho + bands - 1) / bands;
                std::vector<float> ring(static_cast<size_t>(pk) * rowsz);
                const float* rows[64];
#pragma omp for schedule(dynamic, 1)
                for (int64_t u = 0; u < n * bands; ++u) {
                    const int64_t i = u / bands;
                    const int ph0 = static_cast<int>(u % bands) * band, ph1 = std::min(pho, ph0 + band);
                    int next = 0;  // next conv row to compute
                    for (int ph = ph0; ph < ph1; ++ph) {
                        const int h0 = ph * ps - pp;
                        const int hs = std::max(h0, 0), he = std::min(h0 + pk, a.ho);
                        next = std::max(next, hs);
                        for (; next < he; ++next)
                            fconv_direct_row_avx512(a, xpad.data() + i * img, wp, c, k, stride, i, next,
                                                    ring.data() + (next % pk) * rowsz);
                        for (int r = hs; r < he; ++r) rows[r - hs] = ring.data() + (r % pk) * rowsz;
                        maxpool_rows_avx512(rows, std::max(he - hs, 0), a.out + ((i * pho + ph) * pwo) * a.cout, a.wo,
                                            a.cout, pk, ps, pp, pwo);
                    }
                }
            }
        }
        }  // GIL held again before `out` is returned
        return out;
    }
    std::vector<float> nhwc;  // NHWC copy of an NCHW input for the im2col path
    if (nchw) {
        nhwc.resize(static_cast<size_t>(n) * h * w * c);
        for (int64_t i = 0; i < n; ++i)
            for (int ch = 0; ch < c; ++ch)
                for (int64_t r = 0; r < static_cast<int64_t>(h) * w; ++r)
                    nhwc[(i * h * w + r) * c + ch] = xs[(i * c + ch) * h * w + r];
        xs = nhwc.data();
    }
    {
        py::gil_scoped_release nogil;
#pragma omp parallel num_threads(get_num_threads_impl())
        {
            // Each thread im2cols one output row at a time into a small buffer that stays in cache.
            std::vector<float> cols(static_cast<size_t>(a.wo) * a.kdim);
#pragma omp for collapse(2) schedule(dynamic, 2)
            for (int64_t i = 0; i < n; ++i)
                for (int oh = 0; oh < a.ho; ++oh) {
                    const int ih0 = oh * stride - pad;
                    for (int ow = 0; ow < a.wo; ++ow) {
                        float* dst = cols.data() + static_cast<int64_t>(ow) * a.kdim;
                        const int iw0 = ow * stride - pad;
                        for (int kh = 0; kh < k; ++kh) {
                            const int ih = ih0 + kh;
                            if (ih < 0 || ih >= h) {
                                std::memset(dst, 0, sizeof(float) * c * k);
                                dst += static_cast<int64_t>(c) * k;
                                continue;
                            }
                            const float* src = xs + (i * h + ih) * w * c;
                            if (iw0 >= 0 && iw0 + k <= w) {  // whole kernel row inside: one contiguous run
                                std::memcpy(dst, src + static_cast<int64_t>(iw0) * c, sizeof(float) * c * k);
                                dst += static_cast<int64_t>(c) * k;
                                continue;
                            }
                            for (int kw = 0; kw < k; ++kw, dst += c) {
                                const int iw = iw0 + kw;
                                if (iw < 0 || iw >= w) std::memset(dst, 0, sizeof(float) * c);
                                else std::memcpy(dst, src + static_cast<int64_t>(iw) * c, sizeof(float) * c);
                            }
                        }
                    }
                    if (isa == ISA_AVX512) fconv_row_avx512(a, cols.data(), i, oh);
                    else if (isa == ISA_AVX2) fconv_row_avx2(a, cols.data(), i, oh);
                    else fconv_row_portable(a, cols.data(), i, oh);
                }
        }
    }
    return out;
}

static F32 im2col(const F32& x, int k, int stride, int pad) {
    require(x.ndim() == 4, "im2col: x must be NHWC");
    const int64_t n = x.shape(0);
    const int h = static_cast<int>(x.shape(1)), w = static_cast<int>(x.shape(2)), c = static_cast<int>(x.shape(3));
    const int ho = out_size(h, k, stride, pad, false), wo = out_size(w, k, stride, pad, false);
    require(ho > 0 && wo > 0, "im2col: kernel larger than the padded input");
    const int64_t kc = static_cast<int64_t>(k) * k * c;
    F32 out({n * ho * wo, kc});
    float* d = out.mutable_data();
    const float* xs = x.data();
    {
        py::gil_scoped_release nogil;
#pragma omp parallel for num_threads(get_num_threads_impl()) collapse(2) schedule(static)
        for (int64_t i = 0; i < n; ++i)
            for (int oh = 0; oh < ho; ++oh)
                for (int ow = 0; ow < wo; ++ow) {
                    float* dst = d + ((i * ho + oh) * wo + ow) * kc;
                    for (int kh = 0; kh < k; ++kh) {
                        const int ih = oh * stride - pad + kh;
                        for (int kw = 0; kw < k; ++kw, dst += c) {
                            const int iw = ow * stride - pad + kw;
                            if (ih < 0 || ih >= h || iw < 0 || iw >= w) std::memset(dst, 0, sizeof(float) * c);
                            else std::memcpy(dst, xs + ((i * h + ih) * w + iw) * c, sizeof(float) * c);
                        }
                    }
                }
    }
    return out;
}

// In-place per-channel transform of a (..., C) float tensor (e.g. a real conv's GEMM output).
static F32 epilogue_inplace(F32 y, const std::optional<F32>& scale, const std::optional<F32>& bias,
                             const std::optional<F32>& residual, const std::optional<F32>& slope,
                             const std::optional<F32>& shift_in, const std::optional<F32>& shift_out, bool act_first,
                             std::optional<std::pair<float, float>> clamp) {
    require(y.ndim() >= 1, "epilogue: empty tensor");
    const int64_t c = y.shape(y.ndim() - 1);
    const int64_t total = y.size();
    EpiHolder eh;
    make_epilogue(eh, c, scale, bias, slope, shift_in, shift_out, act_first, clamp);
    Epilogue& e = eh.e;
    if (residual) {
        require(residual->size() == total, "epilogue: residual must match the output size");
        e.res = residual->data();
    }
    float* d = y.mutable_data();
    {
        py::gil_scoped_release nogil;
#pragma omp parallel for num_threads(get_num_threads_impl()) schedule(static) if (total > (1 << 16))
        for (int64_t i = 0; i < total / c; ++i)
            epilogue_store(e, 0, static_cast<int>(c), [&](int j) { return d[i * c + j]; },
                           e.res ? e.res + i * c : nullptr, d + i * c);
    }
    return y;
}

static F32 pool2d(const F32& x, int k, int stride, int pad, bool ceil_mode, bool is_max, bool count_include_pad) {
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
    const int isa = current_isa();
    if (is_max && isa == ISA_AVX512 && k <= 64) {  // the vector kernel takes at most 64 window rows
        {
            py::gil_scoped_release nogil;
#pragma omp parallel for num_threads(get_num_threads_impl()) collapse(2) schedule(static)
            for (int64_t i = 0; i < n; ++i)
                for (int oh = 0; oh < ho; ++oh)
                    maxpool_row_avx512(xs + i * h * w * c, d + (i * ho + oh) * wo * c, h, w, c, k, stride, pad, oh,
                                       wo);
        }
        return out;
    }
    {
        py::gil_scoped_release nogil;
#pragma omp parallel for num_threads(get_num_threads_impl()) collapse(2) schedule(static)
        for (int64_t i = 0; i < n; ++i)
            for (int oh = 0; oh < ho; ++oh) {
                std::vector<float> acc(c);
                for (int ow = 0; ow < wo; ++ow) {
                    const int h0 = oh * stride - pad, w0 = ow * stride - pad;
                    // Window clipped to the padded input gives PyTorch's count_include_pad divisor.
                    const int h1p = std::min(h0 + k, h + pad), w1p = std::min(w0 + k, w + pad);
                    const int hs = std::max(h0, 0), ws = std::max(w0, 0);
                    const int he = std::min(h0 + k, h), we = std::min(w0 + k, w);
                    std::fill(acc.begin(), acc.end(), is_max ? -std::numeric_limits<float>::infinity() : 0.f);
                    for (int ih = hs; ih < he; ++ih)
                        for (int iw = ws; iw < we; ++iw) {
                            const float* p = xs + ((i * h + ih) * w + iw) * c;
                            if (is_max) {
                                for (int64_t j = 0; j < c; ++j) acc[j] = (p[j] > acc[j] || std::isnan(p[j])) ? p[j] : acc[j];
                            } else {
                                for (int64_t j = 0; j < c; ++j) acc[j] += p[j];
                            }
                        }
                    float* dst = d + ((i * ho + oh) * wo + ow) * c;
                    if (is_max) {
                        std::copy(acc.begin(), acc.end(), dst);
                    } else {
                        const int cnt = count_include_pad ? (h1p - h0) * (w1p - w0) : (he - hs) * (we - ws);
                        for (int64_t j = 0; j < c; ++j) dst[j] = cnt > 0 ? acc[j] / static_cast<float>(cnt) : 0.f;
                    }
                }
            }
    }
    return out;
}

// Global average pooling (N, H, W, C) -> (N, C): per channel, the pixels summed in order in double precision,
// divided by H*W and rounded once to float32 (scalar code: identical on every ISA).
static F32 global_avg_pool(const F32& x) {
    require(x.ndim() == 4 && x.shape(1) > 0 && x.shape(2) > 0, "global_avg_pool: x must be non-empty NHWC");
    const int64_t n = x.shape(0), hw = x.shape(1) * x.shape(2), c = x.shape(3);
    F32 out({n, c});
    float* d = out.mutable_data();
    const float* xs = x.data();
    {
        py::gil_scoped_release nogil;
#pragma omp parallel for num_threads(get_num_threads_impl()) schedule(static) if (n * hw * c > (1 << 18))
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

static int get_num_threads() { return get_num_threads_impl(); }

static void set_num_threads(int n) {
    require(n >= 1, "num_threads must be >= 1");
    t_threads = n;
}

PYBIND11_MODULE(_engine, m) {
    m.doc() = "bireid bit-packed XNOR-popcount inference kernels (CPU; no torch)";
    m.def("isa_supported", [](const std::string& s) { return isa_supported(parse_isa(s)); });
    m.def("best_isa", []() { return std::string(isa_name(best_isa())); });
    m.def("get_isa", []() { return std::string(isa_name(current_isa())); },
          "Instruction set in use (BIREID_RUNTIME_ISA or the best this CPU supports).");
    m.def("set_isa", &set_isa, py::arg("name"));
    m.def("get_num_threads", &get_num_threads,
          "Threads the engine's ops use when called from this thread (set_num_threads, else OpenMP's default).");
    m.def("set_num_threads", &set_num_threads, py::arg("n"),
          "Threads the engine's ops use when called from this thread; its own setting, which other libraries "
          "sharing the OpenMP runtime (PyTorch) do not change.");
    m.def("pack_activations", &pack_activations, py::arg("x"), py::arg("thresh") = py::none(), py::arg("pad") = 0,
          "sign(x - thresh) of NHWC float32 -> packed bits (N, H+2p, W+2p, ceil(C/64)) uint64; bit set = -1.");
    py::class_<BConvWeights>(m, "BConvWeights")
        .def(py::init(&make_weights), py::arg("w"), py::arg("cin"))
        .def_readonly("cout", &BConvWeights::cout)
        .def_readonly("cin", &BConvWeights::cin)
        .def_readonly("k", &BConvWeights::k)
        .def_readonly("words", &BConvWeights::wd);
    m.def("binary_conv2d", &binary_conv2d, py::arg("x_packed"), py::arg("weights"), py::arg("stride"),
          py::arg("pad"), py::arg("pad_value"), py::arg("scale") = py::none(), py::arg("bias") = py::none(),
          py::arg("residual") = py::none(), py::arg("slope") = py::none(), py::arg("shift_in") = py::none(),
          py::arg("shift_out") = py::none(), py::arg("act_first") = false, py::arg("clamp") = py::none(),
          "XNOR-popcount conv of packed input (padded by `pad`) -> NHWC float32 with the fused epilogue.");
    m.def("binary_conv2d_fused", &binary_conv2d_fused, py::arg("x"), py::arg("weights"), py::arg("stride"),
          py::arg("pad"), py::arg("pad_value"), py::arg("thresh") = py::none(), py::arg("scale") = py::none(),
          py::arg("bias") = py::none(), py::arg("residual") = py::none(), py::arg("slope") = py::none(),
          py::arg("shift_in") = py::none(), py::arg("shift_out") = py::none(), py::arg("act_first") = false,
          py::arg("clamp") = py::none(), py::arg("ds_weights") = nullptr, py::arg("ds_scale") = py::none(),
          py::arg("ds_bias") = py::none(),
          "sign(x - thresh) packing + XNOR-popcount conv + fused epilogue in one call: NHWC float32 in and out; "
          "same result as pack_activations followed by binary_conv2d. With ds_weights (a 1x1 binary conv, same "
          "Cin/Cout, the conv's stride, no padding, on the same packed input) the residual is that downsample "
          "conv's output * ds_scale + ds_bias, computed in the same call (bit-identical to running it first).");
    py::class_<BChainLayer>(m, "BChainLayer")
        .def(py::init(&make_chain_layer), py::arg("weights"), py::arg("stride"), py::arg("pad"),
             py::arg("pad_value"), py::arg("residual_is_input"), py::arg("thresh") = py::none(),
             py::arg("scale") = py::none(), py::arg("bias") = py::none(), py::arg("slope") = py::none(),
             py::arg("shift_in") = py::none(), py::arg("shift_out") = py::none(), py::arg("act_first") = false,
             py::arg("clamp") = py::none(), py::arg("ds_weights") = py::none(), py::arg("ds_scale") = py::none(),
             py::arg("ds_bias") = py::none(),
             "One layer of binary_chain: a binary conv and its epilogue (the arguments of binary_conv2d_fused); "
             "the residual is the layer's own input (residual_is_input: stride 1, k = 2 pad + 1), the fused "
             "downsample's output (ds_*), or none.");
    py::class_<ChainStem>(m, "ChainStem")
        .def(py::init(&make_chain_stem), py::arg("weights"), py::arg("pad"), py::arg("pool"), py::arg("nchw"),
             py::arg("scale") = py::none(), py::arg("bias") = py::none(), py::arg("slope") = py::none(),
             py::arg("shift_in") = py::none(), py::arg("shift_out") = py::none(), py::arg("act_first") = false,
             py::arg("clamp") = py::none(),
             "The stride-2 real conv + max pool feeding binary_chain's first layer (the arguments of conv2d_float "
             "with stride 2 and pool; the conv must have the Winograd form).");
    m.def("binary_chain", &binary_chain, py::arg("x"), py::arg("layers"), py::arg("profile") = py::none(),
          py::arg("stem") = py::none(),
          "Runs binary conv layers one after another on NHWC float32 x (each reads the previous one's output) as a "
          "row wavefront per image; the same values as calling binary_conv2d_fused layer by layer. With a stem "
          "(ChainStem), x is the image batch and the first layer reads the stem's pooled rows as they are made: the "
          "same values as conv2d_float(x, ..., pool=...) then the chain. With profile (float64, one entry per "
          "layer, then one for the stem if any), adds the time each layer's rows take (packing, conv, epilogue) to "
          "it, in arbitrary units (TSC ticks on x86): use the shares.");
    m.def("has_winograd", [](const FConvWeights& fw) { return !fw.wino2.empty(); }, py::arg("weights"),
          "Whether a real conv's weights have the 2-D Winograd form (5 <= k <= 15, small k * cin), used at stride 2.");
    py::class_<FConvWeights>(m, "FConvWeights")
        .def(py::init(&make_fweights), py::arg("wmat"), py::arg("cin"), py::arg("k"))
        .def_readonly("cout", &FConvWeights::cout)
        .def_readonly("cin", &FConvWeights::cin)
        .def_readonly("k", &FConvWeights::k);
    m.def("conv2d_float", &conv2d_float, py::arg("x"), py::arg("weights"), py::arg("stride"), py::arg("pad"),
          py::arg("scale") = py::none(), py::arg("bias") = py::none(), py::arg("residual") = py::none(),
          py::arg("slope") = py::none(), py::arg("shift_in") = py::none(), py::arg("shift_out") = py::none(),
          py::arg("act_first") = false, py::arg("clamp") = py::none(), py::arg("nchw") = false,
          py::arg("pool") = py::none(),
          "Real conv (NHWC float32, or NCHW input with nchw=True; NHWC output; zero padding) with the fused "
          "epilogue and an optional fused max pool=(k, stride, pad, ceil_mode); register-blocked FMA over im2col "
          "rows, or directly over the padded input for small Cin.");
    m.def("global_avg_pool", &global_avg_pool, py::arg("x"),
          "Mean over H and W of NHWC float32 -> (N, C), accumulated in double, rounded once.");
    m.def("im2col", &im2col, py::arg("x"), py::arg("k"), py::arg("stride"), py::arg("pad"));
    m.def("epilogue", &epilogue_inplace, py::arg("y"), py::arg("scale") = py::none(), py::arg("bias") = py::none(),
          py::arg("residual") = py::none(), py::arg("slope") = py::none(), py::arg("shift_in") = py::none(),
          py::arg("shift_out") = py::none(), py::arg("act_first") = false, py::arg("clamp") = py::none());
    m.def("max_pool2d", [](const F32& x, int k, int s, int p, bool ceil_mode) {
        return pool2d(x, k, s, p, ceil_mode, true, true);
    }, py::arg("x"), py::arg("k"), py::arg("stride"), py::arg("pad") = 0, py::arg("ceil_mode") = false);
    m.def("avg_pool2d", [](const F32& x, int k, int s, int p, bool ceil_mode, bool count_include_pad) {
        return pool2d(x, k, s, p, ceil_mode, false, count_include_pad);
    }, py::arg("x"), py::arg("k"), py::arg("stride"), py::arg("pad") = 0, py::arg("ceil_mode") = false,
       py::arg("count_include_pad") = true);
}
