// pybind11's array_t for the test drivers of tests/arm (see pybind11.h here): a C-contiguous array whose copies share
// one buffer, as NumPy arrays passed through pybind11 do.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <vector>

#include "pybind11.h"

namespace pybind11 {

struct array {
    enum { c_style = 1, forcecast = 2 };
};

template <typename T, int Flags = array::c_style>
class array_t {
   public:
    array_t() : array_t(std::vector<ssize_t>{0}) {}
    array_t(std::initializer_list<ssize_t> shape) : array_t(std::vector<ssize_t>(shape)) {}
    explicit array_t(std::vector<ssize_t> shape) : shape_(std::move(shape)) {
        ssize_t n = 1;
        for (ssize_t s : shape_) {
            if (s < 0) throw std::invalid_argument("array_t: negative dimension");
            n *= s;
        }
        buf_ = std::make_shared<std::vector<T>>(static_cast<size_t>(n));
    }
    ssize_t ndim() const { return static_cast<ssize_t>(shape_.size()); }
    ssize_t shape(ssize_t i) const { return shape_.at(static_cast<size_t>(i)); }
    const std::vector<ssize_t>& dims() const { return shape_; }
    ssize_t size() const { return static_cast<ssize_t>(buf_->size()); }
    const T* data() const { return buf_->data(); }
    T* mutable_data() { return buf_->data(); }

   private:
    std::vector<ssize_t> shape_;
    std::shared_ptr<std::vector<T>> buf_;
};

}  // namespace pybind11
