// Shared host-side helpers: the engine's thread count and the epilogue arguments of every op.
#include <limits>
#include <stdexcept>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine.h"

namespace bireid {

// The engine's thread count, per calling thread (0: never set, the OpenMP default), passed to every parallel
// region. Kept apart from the OpenMP runtime's own setting: other libraries that share the runtime in one process
// (PyTorch) reset that one.
static thread_local int t_threads = 0;

int num_threads() {
#ifdef _OPENMP
    return t_threads > 0 ? t_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

void set_num_threads(int n) {
    require(n >= 1, "num_threads must be >= 1");
    t_threads = n;
}

void require(bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument(msg);
}

const float* opt_vec(const OptF32& a, int64_t n, const char* name) {
    if (!a) return nullptr;
    require(a->ndim() == 1 && a->shape(0) == n, std::string(name) + " must have shape (" + std::to_string(n) + ",)");
    return a->data();
}

std::vector<float> opt_copy(const OptF32& a, int64_t n, const char* name) {
    const float* p = opt_vec(a, n, name);
    return p ? std::vector<float>(p, p + n) : std::vector<float>();
}

void make_epilogue_ptrs(EpiHolder& h, int64_t cout, const float* scale, const float* bias, const float* slope,
                        const float* shift_in, const float* shift_out, bool act_first, Clamp clamp) {
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

void make_epilogue(EpiHolder& h, int64_t cout, const OptF32& scale, const OptF32& bias, const OptF32& slope,
                   const OptF32& shift_in, const OptF32& shift_out, bool act_first, Clamp clamp) {
    make_epilogue_ptrs(h, cout, opt_vec(scale, cout, "scale"), opt_vec(bias, cout, "bias"),
                       opt_vec(slope, cout, "slope"), opt_vec(shift_in, cout, "shift_in"),
                       opt_vec(shift_out, cout, "shift_out"), act_first, clamp);
}

void attach_residual(Epilogue& e, const OptF32& residual, int64_t n, int64_t ho, int64_t wo, int64_t cout,
                     const char* op) {
    if (!residual) return;
    require(residual->ndim() == 4 && residual->shape(0) == n && residual->shape(1) == ho &&
                residual->shape(2) == wo && residual->shape(3) == cout,
            std::string(op) + ": residual must match the output shape (N, Ho, Wo, Cout)");
    e.res = residual->data();
}

void OwnedEpilogue::set(int64_t co, const OptF32& scale_, const OptF32& bias_, const OptF32& slope_,
                        const OptF32& shift_in_, const OptF32& shift_out_, bool act_first_, Clamp clamp_) {
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

void OwnedEpilogue::make(EpiHolder& h, int64_t co) const {
    auto p = [](const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); };
    make_epilogue_ptrs(h, co, p(scale), p(bias), p(slope), p(shift_in), p(shift_out), act_first, clamp);
}

}  // namespace bireid
