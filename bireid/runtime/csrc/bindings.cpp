// pybind11 module bireid.runtime._engine: bit-packed binary convolution (XNOR + popcount) and the few float
// kernels a binary re-ID network needs. No torch. The kernels come from one table per instruction set (kernels.h),
// picked when the module loads (isa.cpp).
#include <pybind11/stl.h>

#include "engine.h"

namespace py = pybind11;
using namespace bireid;

PYBIND11_MODULE(_engine, m) {
    m.doc() = "bireid bit-packed XNOR-popcount inference kernels (CPU; no torch)";
    kernels();  // pick the kernel table now: a bad BIREID_RUNTIME_ISA fails the import
    m.def("isa_supported", &isa_supported, py::arg("name"),
          "Whether this CPU runs the named instruction set's kernels.");
    m.def("best_isa", &best_isa, "The best instruction set this CPU runs.");
    m.def("get_isa", []() { return std::string(kernels().name); },
          "Instruction set in use (BIREID_RUNTIME_ISA or the best this CPU supports, until set_isa).");
    m.def("set_isa", &set_isa, py::arg("name"), "Run the named instruction set's kernels from now on.");
    m.def("isa_status", &isa_status,
          "Every instruction set this engine knows, best first: (name, why this CPU or build cannot run it, or '').");
    m.def("get_num_threads", &num_threads,
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
