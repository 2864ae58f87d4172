// The engine's host side (pybind11 module bireid.runtime._engine): the ops Python calls, their argument checks and
// their parallel loops. They reach the kernels only through the table of the instruction set in use (kernels()).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels.h"
#include "winograd.h"

namespace bireid {

namespace py = pybind11;
using F32 = py::array_t<float, py::array::c_style | py::array::forcecast>;
using U64 = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>;
using Clamp = std::optional<std::pair<float, float>>;
using OptF32 = std::optional<F32>;

// ---- instruction sets (isa.cpp)
// The table in use: picked once when the module loads (BIREID_RUNTIME_ISA, else the best this CPU runs); set_isa
// swaps it (tests, benchmarks). An op reads it once and passes it down.
const KernelTable& kernels();
void set_isa(const std::string& name);
std::string best_isa();
bool isa_supported(const std::string& name);
// Every instruction set this engine knows, best first: (name, why it cannot run here, or "" when it can).
std::vector<std::pair<std::string, std::string>> isa_status();

// ---- threads and arguments (engine_common.cpp)
// The engine's thread count for the calling thread (set_num_threads, else OpenMP's default). Read it before a
// parallel region, never inside one (there each thread has its own).
int num_threads();
void set_num_threads(int n);

void require(bool ok, const std::string& msg);  // throws std::invalid_argument (Python ValueError)
const float* opt_vec(const OptF32& a, int64_t n, const char* name);
std::vector<float> opt_copy(const OptF32& a, int64_t n, const char* name);

inline int out_size(int in, int k, int s, int p, bool ceil_mode) {
    const int num = in + 2 * p - k;
    if (num < 0) return 0;
    int o = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + p) --o;  // last window must start inside the input or left padding
    return o;
}

// Output channel blocks per work unit of a binary conv's parallel loop over (row, block group): all of a row's blocks
// (one kernel call per row: the kernels can share per-row work) when there are enough rows for the threads.
inline int bconv_blocks_per_unit(int64_t rows, int nblk, int nth) {
    if (rows >= 4 * static_cast<int64_t>(nth)) return nblk;
    return static_cast<int>(std::max<int64_t>(1, nblk * rows / (4 * static_cast<int64_t>(nth))));
}

// An Epilogue plus the identity vectors it points to when the caller gave no scale/bias/shift.
struct EpiHolder {
    Epilogue e;
    std::vector<float> ones, zeros;
};
// The vectors (each null or cout floats) must outlive the epilogue.
void make_epilogue_ptrs(EpiHolder& h, int64_t cout, const float* scale, const float* bias, const float* slope,
                        const float* shift_in, const float* shift_out, bool act_first, Clamp clamp);
void make_epilogue(EpiHolder& h, int64_t cout, const OptF32& scale, const OptF32& bias, const OptF32& slope,
                   const OptF32& shift_in, const OptF32& shift_out, bool act_first, Clamp clamp);
// Points the epilogue at a residual input after checking it has the output's (N, Ho, Wo, Cout) shape.
void attach_residual(Epilogue& e, const OptF32& residual, int64_t n, int64_t ho, int64_t wo, int64_t cout,
                     const char* op);

// An epilogue's per-channel arguments, copied (empty: absent), for ops built once and run many times.
struct OwnedEpilogue {
    std::vector<float> scale, bias, slope, shift_in, shift_out;
    bool act_first = false;
    Clamp clamp;

    void set(int64_t co, const OptF32& scale_, const OptF32& bias_, const OptF32& slope_, const OptF32& shift_in_,
             const OptF32& shift_out_, bool act_first_, Clamp clamp_);
    void make(EpiHolder& h, int64_t co) const;
};

// ---- packing and binary convs (packing.cpp, bconv.cpp)
// Binary conv weights in the kernels' blocked layouts (see BConvArgs), plus per-tap weight sums for the
// zero-padding correction.
struct BConvWeights {
    int cout, cin, k, wd;
    std::vector<uint64_t> blk, nib;
    std::vector<int32_t> wsum;
    void point(BConvArgs& a) const {  // the kernel arguments' weight pointers
        a.wblk = blk.data();
        a.wnib = nib.data();
        a.wsum = wsum.data();
    }
};
BConvWeights* make_weights(const U64& w, int cin);
U64 pack_activations(const F32& x, const OptF32& thresh, int pad);
F32 binary_conv2d(const U64& xp, const BConvWeights& bw, int stride, int pad, int pad_value, const OptF32& scale,
                  const OptF32& bias, const OptF32& residual, const OptF32& slope, const OptF32& shift_in,
                  const OptF32& shift_out, bool act_first, Clamp clamp);
F32 binary_conv2d_fused(const F32& x, const BConvWeights& bw, int stride, int pad, int pad_value, const OptF32& thresh,
                        const OptF32& scale, const OptF32& bias, const OptF32& residual, const OptF32& slope,
                        const OptF32& shift_in, const OptF32& shift_out, bool act_first, Clamp clamp,
                        const BConvWeights* ds, const OptF32& ds_scale, const OptF32& ds_bias);

// ---- real convs (fconv.cpp)
// Real conv weights: (k*k*cin, cout) in (kh, kw, cin) row order, columns padded to a multiple of 16.
// For 5 <= k <= 15 and a small cin (the stem) also the 2-D Winograd F(3,4) form used by stride-2 convs (see
// winograd.h), computed in double and rounded once.
struct FConvWeights {
    int cout, cin, k, cout_pad;
    std::vector<float> w;
    WinoPlan plan;
    std::vector<float> wino2;  // [cout_pad / 16][rterm][ci][cterm][16]; empty: no Winograd form
};
FConvWeights* make_fweights(const F32& wmat, int cin, int k);

// Optional max pooling fused after a real conv: (k, stride, pad, ceil_mode).
using PoolSpec = std::tuple<int, int, int, bool>;
F32 conv2d_float(const F32& x, const FConvWeights& fw, int stride, int pad, const OptF32& scale, const OptF32& bias,
                 const OptF32& residual, const OptF32& slope, const OptF32& shift_in, const OptF32& shift_out,
                 bool act_first, Clamp clamp, bool nchw, std::optional<PoolSpec> pool);
F32 im2col(const F32& x, int k, int stride, int pad);
// In-place per-channel transform of a (..., C) float tensor (e.g. a real conv's GEMM output).
F32 epilogue_inplace(F32 y, const OptF32& scale, const OptF32& bias, const OptF32& residual, const OptF32& slope,
                     const OptF32& shift_in, const OptF32& shift_out, bool act_first, Clamp clamp);

// ---- pooling (pool.cpp)
F32 pool2d(const F32& x, int k, int stride, int pad, bool ceil_mode, bool is_max, bool count_include_pad);
F32 global_avg_pool(const F32& x);

// ---- the wavefront chain (chain.cpp)
// One layer of binary_chain: a binary conv and its epilogue; the residual is the layer's own input (a stride-1
// 'same' conv: Bi-Real blocks), a fused 1x1 downsample of its input (ResNet shortcut), or none.
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
BChainLayer* make_chain_layer(py::object weights, int stride, int pad, int pad_value, bool residual_is_input,
                              const OptF32& thresh, const OptF32& scale, const OptF32& bias, const OptF32& slope,
                              const OptF32& shift_in, const OptF32& shift_out, bool act_first, Clamp clamp,
                              py::object ds_weights, const OptF32& ds_scale, const OptF32& ds_bias);

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
ChainStem* make_chain_stem(py::object weights, int pad, PoolSpec pool, bool nchw, const OptF32& scale,
                           const OptF32& bias, const OptF32& slope, const OptF32& shift_in, const OptF32& shift_out,
                           bool act_first, Clamp clamp);
F32 binary_chain(const F32& x, const std::vector<const BChainLayer*>& layers,
                 std::optional<py::array_t<double, py::array::c_style>> profile, const ChainStem* stem);

}  // namespace bireid
