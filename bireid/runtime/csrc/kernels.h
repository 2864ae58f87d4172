// The kernels' contract: data layouts, argument structs, and the table of kernel functions one instruction set
// provides (no torch, no Python here).
//
// Conventions (the .bnn format documents the same ones):
//  * activations are float32 NHWC; binarized activations are packed NHWC along channels into 64-bit words,
//    channel c -> bit (c % 64) of word (c / 64); a set bit means sign = -1 (value < threshold), a clear bit +1;
//    channels past Cin inside the last word are 0 in activations AND weights, so XOR leaves them 0 and they
//    never reach the popcount;
//  * packed activation buffers carry `pad` rows/columns of zero words (+1) around each image;
//  * binary weights are packed per output channel in (kh, kw, word) order: w[o][kh][kw][word].
//
// Every instruction set gives the same bits: the portable kernels (portable.h) fix the float operations and their
// order for each output value, and each ISA's kernels do exactly those operations (no FMA contraction: the build
// uses -ffp-contract=off; where the portable code calls std::fma, the vector code uses a fused multiply-add).
#pragma once
#include <cstddef>
#include <cstdint>

namespace bireid {

constexpr int OCB = 16;  // output channels per weight block (the blocked weight layout; every ISA reads it)

// Per-output-channel transform applied to the integer dot product (or to a float conv output):
//   v = dot * scale[o] + bias[o]
//   then, in the order given by act_first, the residual add (v += res) and the activation
//   (u = v + shift_in[o]; v = (u >= 0 ? u : slope[o] * u) + shift_out[o]); finally the clamp.
// Every pointer except `res` is non-null: absent parts get identity values (scale 1, slope 1, shifts 0,
// clamp to +-inf, a zero residual), which are exact no-ops in float arithmetic. That keeps the loop branch-free so
// it vectorizes on every ISA. When there are no shifts and no clamp (`plain`), the identity steps are skipped
// instead (the branches are loop-invariant); the values are the same up to the sign of a zero.
struct Epilogue {
    const float* scale = nullptr;
    const float* bias = nullptr;
    const float* res = nullptr;        // same shape as the output (NHWC) or null
    const float* slope = nullptr;
    const float* shift_in = nullptr;
    const float* shift_out = nullptr;
    const float* zeros = nullptr;      // at least as many zeros as channels: the "no residual" operand
    bool act_first = false;
    float clamp_lo = 0.f, clamp_hi = 0.f;
    // No shifts and no clamp (the usual BN + residual + PReLU): the identity steps (+0, clamp to +-inf) are
    // skipped. They change nothing but the sign of a zero result, and every ISA path skips them alike.
    bool plain = false;
    bool has_act = false;  // slope given (otherwise the activation is the identity and is skipped when plain)
};

// Everything one binary conv call needs.
struct BConvArgs {
    const uint64_t* x;        // packed, padded input (N, Hp, Wp, wd)
    const uint64_t* wblk;     // blocked weights [cout_pad/OCB][k*k*wd][OCB]
    const uint64_t* wnib;     // the same as nibble bytes, for a popcount by 4-bit table lookup (AVX2): bytes
                              // [cout_pad/OCB][k*k*wd][8][2][OCB], per weight byte i the OCB channels' low nibbles
                              // of byte i, then their high nibbles
    const int32_t* wsum;      // [cout_pad/OCB][k*k][OCB]: sum of the +-1 weights of each tap (Cin - 2*popcount),
                              // blocked like wblk so one tap's OCB sums are one vector (0 past cout)
    float* out;               // (N, Ho, Wo, cout)
    int64_t n;
    int h, w, hp, wp, wd, cin, cout, k, stride, pad, pad_value, ho, wo;
    Epilogue epi;
};

// Real-valued conv: weights are (kdim, cout_pad) with cout_pad a multiple of 16 (zero columns past cout). Every
// output accumulates fma(x_k, w_k, acc) for k = 0..kdim-1 in order, on every ISA, so all paths round identically.
struct FConvArgs {
    const float* w;
    float* out;  // (N, Ho, Wo, cout)
    int kdim, cout, cout_pad, ho, wo;
    Epilogue epi;
};

struct WinoPlan;
struct Wino2Args;

// One instruction set's kernels. The engine picks one table when it loads (the best this CPU runs, or the one
// BIREID_RUNTIME_ISA names) and calls only through it. A new instruction set is one kernels_<isa>.cpp defining its
// table and a function returning it (null, with the reason, where the build or the CPU cannot run it; entries it
// does not specialise may point at the portable code of portable.h compiled for its target), and its line in the
// list of isa.cpp.
struct KernelTable {
    const char* name;
    // Binary conv: output row (n, oh) for the output channel blocks [ob0, ob1) (OCB channels each), epilogue applied.
    void (*bconv_rows)(const BConvArgs& a, int64_t n, int oh, int ob0, int ob1);
    // Real conv: output row (n, oh) from its im2col rows `cols` (wo x kdim, zero padded).
    void (*fconv_row)(const FConvArgs& a, const float* cols, int64_t n, int oh);
    // Real conv output row oh of image n read straight from the image zero-padded to rows of `wpad` pixels x cin
    // channels (xpad: its first padded row), into orow (wo x cout floats); the same reduction order as fconv_row.
    // Null: this ISA runs such convs through im2col.
    void (*fconv_direct_row)(const FConvArgs& a, const float* xpad, int wpad, int cin, int k, int stride, int64_t n,
                             int oh, float* orow);
    // sign(x - t) of npix consecutive pixels (c floats each) -> wd words each; t == null means a zero threshold.
    void (*pack_rows)(const float* x, const float* t, uint64_t* dst, int64_t npix, int c, int wd);
    // Max of a window given as nrows (already clipped) input rows, each w x c floats, for wo output columns.
    void (*maxpool_rows)(const float* const* rows, int nrows, float* dst, int w, int64_t c, int k, int stride,
                         int pad, int wo);
    // The Winograd stem (winograd.h): column transform of one padded input row, row transform of a tile of rows,
    // and the products + output transform + epilogue of output rows 3s .. 3s + 2.
    void (*wino_transform_row)(const WinoPlan& pl, const float* x, bool nchw, int h, int w, int pad, int r, int nq,
                               float* dst, float* scratch);
    void (*wino2_tile_transform)(const WinoPlan& pl, int nq, int s, const float* const* rowptrs, float* dst);
    void (*wino2_rows)(const FConvArgs& a, const Wino2Args& wa, int64_t n, int s, float* const* orows);
    // A cheap timestamp in arbitrary units for the per-layer profile (called twice per row).
    double (*ticks)();
};

}  // namespace bireid
