// The few pybind11 names the engine's host code uses, without Python: lets the test drivers of tests/arm link the
// engine's real host code (ops, argument checks, parallel loops) into a plain C++ program that runs under
// qemu-aarch64. Not used by the Python build (it includes the real pybind11).
#pragma once
#include <cstddef>

namespace pybind11 {

using ssize_t = std::ptrdiff_t;

struct gil_scoped_release {  // no interpreter, no lock (user-provided members: a guard, not an unused variable)
    gil_scoped_release() {}
    ~gil_scoped_release() {}
};

// A non-owning handle to an object the driver owns (the engine casts it back to the weights' type), or None.
class object {
   public:
    object() = default;
    template <typename T>
    static object of(const T* p) {
        object o;
        o.p_ = p;
        return o;
    }
    bool is_none() const { return p_ == nullptr; }
    template <typename T>
    T cast() const {
        return static_cast<T>(p_);
    }

   private:
    const void* p_ = nullptr;
};

}  // namespace pybind11
