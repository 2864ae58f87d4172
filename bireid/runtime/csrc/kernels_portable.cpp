// The portable table: the kernels of portable.h compiled for the baseline target (any CPU).
#include <chrono>

#include "portable.h"

namespace bireid {

namespace {

void wino_transform_row_p(const WinoPlan& pl, const float* x, bool nchw, int h, int w, int pad, int r, int nq,
                          float* dst, float* scratch) {
    wino_transform_row(pl, x, nchw, h, w, pad, r, nq, dst, scratch);
}

void wino2_tile_transform_p(const WinoPlan& pl, int nq, int s, const float* const* rowptrs, float* dst) {
    wino2_tile_transform(pl, nq, s, [&](int r) { return rowptrs[r]; }, dst);
}

double steady_ticks() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

const KernelTable kTable = {
    "portable",
    bconv_rows_portable,
    fconv_row_portable,
    nullptr,  // no direct real conv: im2col
    pack_rows_portable,
    maxpool_rows_portable,
    wino_transform_row_p,
    wino2_tile_transform_p,
    wino2_rows_portable,
    steady_ticks,
};

}  // namespace

const KernelTable* kernels_portable(const char**) { return &kTable; }

}  // namespace bireid
