// Small helpers shared by the C++ drivers of tests/arm: random arrays, bit-exact comparison, a pass/fail tally.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine.h"

namespace armtest {

using bireid::F32;
using bireid::U64;
using Shape = std::vector<pybind11::ssize_t>;

struct Tally {
    int passed = 0, failed = 0;
    void check(bool ok, const std::string& what) {
        if (ok) {
            ++passed;
            return;
        }
        ++failed;
        std::printf("FAIL: %s\n", what.c_str());
    }
    // The plain closing line CI reads ('N passed, N failed'); the exit status.
    int finish(const char* name) const {
        std::printf("%s: %d passed, %d failed\n", name, passed, failed);
        return failed ? 1 : 0;
    }
};

struct Rng {
    std::mt19937_64 g;
    explicit Rng(uint64_t seed) : g(seed) {}
    F32 normal(Shape s, float scale = 1.f) {
        F32 a{std::vector<pybind11::ssize_t>(s)};
        std::normal_distribution<float> d(0.f, 1.f);
        for (auto i = 0; i < a.size(); ++i) a.mutable_data()[i] = d(g) * scale;
        return a;
    }
    F32 uniform(Shape s, float lo = 0.f, float hi = 1.f) {
        F32 a{std::vector<pybind11::ssize_t>(s)};
        std::uniform_real_distribution<float> d(lo, hi);
        for (auto i = 0; i < a.size(); ++i) a.mutable_data()[i] = d(g);
        return a;
    }
    bool coin() { return (g() >> 11) & 1; }
    size_t index(size_t n) { return static_cast<size_t>(g() % n); }
};

// Same shape and the same bytes (bit for bit: -0 vs +0 and NaN payloads count).
template <typename T, int F>
bool same_bits(const pybind11::array_t<T, F>& a, const pybind11::array_t<T, F>& b) {
    return a.dims() == b.dims() && std::memcmp(a.data(), b.data(), sizeof(T) * a.size()) == 0;
}

inline std::string shape_str(const Shape& s) {
    std::string r = "(";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
    return r + ")";
}

}  // namespace armtest
