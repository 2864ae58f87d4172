// The whole-model check of make test-arm, for a machine without Python (run under qemu-aarch64): reads an exported
// .bnn file (header, JSON graph, blobs; see bireid/runtime/format.py), runs its graph node by node with the engine's
// own ops on the instruction set in use, and compares the features with those the x86 engine computed for the same
// images (tests/arm/make_models.py writes NAME.bnn, NAME.input.f32, NAME.features.f32).
//
// The graph runs unfused (one engine op per node, as bireid/runtime/model.py documents the node kinds); the Python
// loader's fusions (stem + pool, downsample, wavefront chain) give the same bits, which tests/test_runtime_fused_ops.py
// checks on x86 and check_kernels checks per ISA. Usage: run_model DIR NAME...
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "testlib.h"

using namespace bireid;
using namespace armtest;
using json = nlohmann::json;

namespace {

std::vector<char> read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path);
    return std::vector<char>(std::istreambuf_iterator<char>(f), {});
}

// A .bnn file: the JSON document and the raw bytes of each blob (little-endian, as AArch64 Linux is).
struct Bnn {
    json doc;
    std::vector<char> bytes;
    size_t data_start = 0;

    explicit Bnn(const std::string& path) : bytes(read_file(path)) {
        if (bytes.size() < 24 || std::string(bytes.data(), 8) != "BIREIDNN")
            throw std::runtime_error(path + ": not a .bnn file");
        uint32_t version;
        uint64_t jlen;
        std::memcpy(&version, bytes.data() + 8, 4);
        std::memcpy(&jlen, bytes.data() + 16, 8);
        if (version != 1 || 24 + jlen > bytes.size()) throw std::runtime_error(path + ": bad header");
        doc = json::parse(bytes.begin() + 24, bytes.begin() + 24 + static_cast<int64_t>(jlen));
        data_start = (24 + jlen + 63) / 64 * 64;
    }

    const json& entry(const std::string& name, const char* dtype) const {
        const json& b = doc.at("blobs").at(name);
        if (b.at("dtype") != dtype) throw std::runtime_error("blob " + name + " is not " + dtype);
        const size_t end = data_start + b.at("offset").get<size_t>() + b.at("nbytes").get<size_t>();
        if (end > bytes.size()) throw std::runtime_error("blob " + name + " lies outside the file");
        return b;
    }
    template <typename Arr>
    Arr blob(const std::string& name, const char* dtype) const {
        const json& b = entry(name, dtype);
        Arr a{b.at("shape").get<std::vector<pybind11::ssize_t>>()};
        std::memcpy(a.mutable_data(), bytes.data() + data_start + b.at("offset").get<size_t>(),
                    b.at("nbytes").get<size_t>());
        return a;
    }
    F32 f32(const std::string& name) const { return blob<F32>(name, "float32"); }
    OptF32 opt_f32(const json& node, const char* key) const {
        if (!node.contains(key) || node.at(key).is_null()) return std::nullopt;
        return f32(node.at(key).get<std::string>());
    }
};

// The epilogue fields of a conv or pointwise node (model.py: scale, bias, residual, act, act_first, clamp).
struct NodeEpi {
    OptF32 scale, bias, residual, slope, shift_in, shift_out;
    bool act_first = false;
    Clamp clamp;
};
NodeEpi node_epilogue(const Bnn& m, const json& node, const std::map<std::string, F32>& env) {
    NodeEpi e;
    e.scale = m.opt_f32(node, "scale");
    e.bias = m.opt_f32(node, "bias");
    if (node.contains("residual") && !node.at("residual").is_null()) e.residual = env.at(node.at("residual"));
    if (node.contains("act") && !node.at("act").is_null()) {
        const json& act = node.at("act");
        e.slope = m.f32(act.at("slope").get<std::string>());
        e.shift_in = m.opt_f32(act, "shift_in");
        e.shift_out = m.opt_f32(act, "shift_out");
    }
    e.act_first = node.value("act_first", false);
    if (node.contains("clamp") && !node.at("clamp").is_null())
        e.clamp = std::make_pair(node.at("clamp")[0].get<float>(), node.at("clamp")[1].get<float>());
    return e;
}

// Features (N, D) of normalized images x (N, C, H, W).
F32 run_graph(const Bnn& m, const F32& x) {
    std::map<std::string, F32> env;
    const int n = x.shape(0), c = x.shape(1), h = x.shape(2), w = x.shape(3);
    F32 xin({n, h, w, c});  // the graph's "input" is NHWC
    for (int i = 0; i < n; ++i)
        for (int ch = 0; ch < c; ++ch)
            for (int r = 0; r < h * w; ++r)
                xin.mutable_data()[(static_cast<int64_t>(i) * h * w + r) * c + ch] =
                    x.data()[(static_cast<int64_t>(i) * c + ch) * h * w + r];
    env.emplace("input", xin);
    for (const json& node : m.doc.at("nodes")) {
        const std::string op = node.at("op");
        const F32& in = env.at(node.at("inputs")[0].get<std::string>());
        F32 out;
        if (op == "conv") {
            const NodeEpi e = node_epilogue(m, node, env);
            const int cin = node.at("cin"), k = node.at("k"), stride = node.at("stride"), pad = node.at("pad");
            if (node.at("binary").get<bool>()) {
                std::unique_ptr<BConvWeights> wt(make_weights(m.blob<U64>(node.at("weight").get<std::string>(), "uint64"), cin));
                out = binary_conv2d_fused(in, *wt, stride, pad, node.at("pad_value"), m.opt_f32(node, "thresh"),
                                          e.scale, e.bias, e.residual, e.slope, e.shift_in, e.shift_out, e.act_first,
                                          e.clamp, nullptr, std::nullopt, std::nullopt);
            } else {
                const F32 wo = m.f32(node.at("weight").get<std::string>());  // (Cout, k, k, Cin) -> (k*k*Cin, Cout)
                const int cout = wo.shape(0), kdim = k * k * cin;
                F32 wmat({kdim, cout});
                for (int o = 0; o < cout; ++o)
                    for (int r = 0; r < kdim; ++r)
                        wmat.mutable_data()[static_cast<int64_t>(r) * cout + o] = wo.data()[static_cast<int64_t>(o) * kdim + r];
                std::unique_ptr<FConvWeights> fw(make_fweights(wmat, cin, k));
                out = conv2d_float(in, *fw, stride, pad, e.scale, e.bias, e.residual, e.slope, e.shift_in,
                                   e.shift_out, e.act_first, e.clamp, false, std::nullopt);
            }
        } else if (op == "pointwise") {
            const NodeEpi e = node_epilogue(m, node, env);
            F32 y{in.dims()};
            std::memcpy(y.mutable_data(), in.data(), sizeof(float) * in.size());
            out = epilogue_inplace(y, e.scale, e.bias, e.residual, e.slope, e.shift_in, e.shift_out, e.act_first,
                                   e.clamp);
        } else if (op == "maxpool" || op == "avgpool") {
            out = pool2d(in, node.at("k"), node.at("stride"), node.at("pad"), node.value("ceil_mode", false),
                         op == "maxpool", node.value("count_include_pad", true));
        } else if (op == "gap") {
            out = global_avg_pool(in);
        } else if (op == "linear") {  // y = x W^T + b, summed in double (NumPy's float32 matmul differs by rounding)
            const F32 wl = m.f32(node.at("weight").get<std::string>());
            const OptF32 b = m.opt_f32(node, "bias");
            const int rows = in.shape(0), nin = in.shape(1), nout = wl.shape(0);
            out = F32({rows, nout});
            for (int i = 0; i < rows; ++i)
                for (int o = 0; o < nout; ++o) {
                    double s = 0;
                    for (int j = 0; j < nin; ++j)
                        s += static_cast<double>(in.data()[static_cast<int64_t>(i) * nin + j]) *
                             wl.data()[static_cast<int64_t>(o) * nin + j];
                    out.mutable_data()[static_cast<int64_t>(i) * nout + o] =
                        static_cast<float>(s) + (b ? b->data()[o] : 0.f);
                }
        } else {
            throw std::runtime_error("unknown op " + op);
        }
        env.insert_or_assign(node.at("output").get<std::string>(), out);
    }
    return env.at(m.doc.at("output").get<std::string>());
}

F32 read_f32(const std::string& path, Shape shape) {
    const std::vector<char> b = read_file(path);
    F32 a{shape};
    if (b.size() != sizeof(float) * a.size())
        throw std::runtime_error(path + ": " + std::to_string(b.size()) + " bytes, expected " +
                                 std::to_string(sizeof(float) * a.size()) + " for " + shape_str(shape));
    std::memcpy(a.mutable_data(), b.data(), b.size());
    return a;
}

F32 first_rows(const F32& a, int rows) {
    Shape s = a.dims();
    s[0] = rows;
    F32 r{s};
    std::memcpy(r.mutable_data(), a.data(), sizeof(float) * r.size());
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s DIR NAME...\n", argv[0]);
        return 2;
    }
    Tally tally;
    const std::string dir = argv[1];
    for (int a = 2; a < argc; ++a) {
        const std::string name = argv[a], base = dir + "/" + name;
        const Bnn m(base + ".bnn");
        const json& meta = m.doc.at("model");
        const int cin = meta.at("in_channels"), h = meta.at("input_size")[0], w = meta.at("input_size")[1];
        const int64_t img = static_cast<int64_t>(cin) * h * w;
        const std::vector<char> raw = read_file(base + ".input.f32");
        const int n = static_cast<int>(raw.size() / (sizeof(float) * img));
        const F32 x = read_f32(base + ".input.f32", {n, cin, h, w});
        const F32 ref = read_f32(base + ".features.f32", {n, static_cast<int64_t>(read_file(base + ".features.f32").size() / (sizeof(float) * n))});
        const std::string isa = kernels().name;  // the engine's own choice (neon on AArch64)
        for (int batch : {n, 1}) {
            const F32 xb = first_rows(x, batch), rb = first_rows(ref, batch);
            set_isa(isa);
            const F32 got = run_graph(m, xb);
            set_isa("portable");
            const F32 port = run_graph(m, xb);
            set_isa(isa);
            double maxdiff = 0, maxref = 0;
            bool within = got.dims() == rb.dims();
            int64_t identical = 0;
            for (int64_t i = 0; within && i < rb.size(); ++i) {
                const double g = got.data()[i], r = rb.data()[i], d = std::fabs(g - r);
                maxdiff = std::max(maxdiff, d);
                maxref = std::max(maxref, std::fabs(r));
                within = within && d <= 1e-5 * std::max(1.0, std::fabs(r));
                identical += std::memcmp(got.data() + i, rb.data() + i, sizeof(float)) == 0;
            }
            std::printf("%s batch %d on %s: features %s, max |x86 - %s| = %.3g (max |feature| %.3g), %lld of %lld "
                        "values bit-identical\n",
                        name.c_str(), batch, isa.c_str(), shape_str(got.dims()).c_str(), isa.c_str(), maxdiff, maxref,
                        static_cast<long long>(identical), static_cast<long long>(rb.size()));
            tally.check(within, name + " batch " + std::to_string(batch) + ": " + isa +
                                    " features within 1e-5 (relative above 1) of the x86 engine's");
            tally.check(same_bits(got, port), name + " batch " + std::to_string(batch) + ": " + isa +
                                                  " features equal the portable path's bit for bit");
        }
    }
    return tally.finish("run_model");
}
