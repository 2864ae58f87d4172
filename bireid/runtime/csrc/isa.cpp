// Which kernel table the engine runs: the list of instruction sets (best first), the choice made once when the
// module loads, and the switch the tests and benchmarks use.
#include <cstdlib>
#include <stdexcept>

#include "engine.h"

namespace bireid {

// Each kernels_<isa>.cpp: its table, or null with *why set where this build or this CPU cannot run it.
const KernelTable* kernels_avx512(const char** why);
const KernelTable* kernels_avx2(const char** why);
const KernelTable* kernels_neon(const char** why);
const KernelTable* kernels_portable(const char** why);

namespace {

// Every instruction set this build knows, best first. A new one is its kernels_<isa>.cpp, its declaration above
// and a line here.
struct IsaProbe {
    const char* name;
    const KernelTable* (*probe)(const char** why);
};
constexpr IsaProbe kIsas[] = {
    {"avx512", kernels_avx512},
    {"avx2", kernels_avx2},
    {"neon", kernels_neon},
    {"portable", kernels_portable},
};

const KernelTable* lookup(const std::string& name, const char** why) {
    for (const IsaProbe& p : kIsas)
        if (name == p.name) return p.probe(why);
    std::string known;
    for (const IsaProbe& p : kIsas) known += std::string(known.empty() ? "" : ", ") + p.name;
    throw std::invalid_argument("unknown instruction set '" + name + "': use " + known);
}

const KernelTable* best() {
    const char* why = "";
    for (const IsaProbe& p : kIsas)
        if (const KernelTable* t = p.probe(&why)) return t;
    throw std::runtime_error("no kernel table runs on this CPU");  // unreachable: the portable one always does
}

const KernelTable* choose_at_load() {
    const char* env = std::getenv("BIREID_RUNTIME_ISA");
    if (!env || !*env) return best();
    const char* why = "";
    const KernelTable* t = lookup(env, &why);
    if (!t)
        throw std::invalid_argument(std::string("BIREID_RUNTIME_ISA=") + env + " is not supported: " + why +
                                    " (best available: " + best()->name + ")");
    return t;
}

const KernelTable* g_table = nullptr;

}  // namespace

const KernelTable& kernels() {
    if (!g_table) g_table = choose_at_load();  // first use is at module load (the bindings ask for it)
    return *g_table;
}

void set_isa(const std::string& name) {
    const char* why = "";
    const KernelTable* t = lookup(name, &why);
    require(t != nullptr, "instruction set '" + name + "' is not supported: " + why);
    g_table = t;
}

std::string best_isa() { return best()->name; }

bool isa_supported(const std::string& name) {
    const char* why = "";
    return lookup(name, &why) != nullptr;
}

std::vector<std::pair<std::string, std::string>> isa_status() {
    std::vector<std::pair<std::string, std::string>> out;
    for (const IsaProbe& p : kIsas) {
        const char* why = "";
        out.emplace_back(p.name, p.probe(&why) ? "" : why);
    }
    return out;
}

}  // namespace bireid
