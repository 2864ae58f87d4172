#!/usr/bin/env bash
# Run a command on an "AVX2-only" view of this x86 CPU: AVX-512, AVX-VNNI, AVX512-BF16, AMX and GFNI are masked
# from CPUID for the command and every process and thread it starts (benchmarks/cpuid_mask.c, built here with gcc),
# and glibc's own string functions are kept off AVX-512 (GLIBC_TUNABLES). The code runs natively on this core, so
# timings are this core's speed limited to AVX2 code paths: not a real AVX2-only CPU (see RESULTS.md 4.1).
#
# Usage: benchmarks/avx2_only.sh COMMAND [ARGS...]
#   e.g. benchmarks/avx2_only.sh .venv/bin/python benchmarks/bench_runtime.py --batches 1 32 --threads 1 --timer cpu
# Needs a CPU and kernel with CPUID faulting ("cpuid_fault" in /proc/cpuinfo); fails (exit 97) rather than run
# unmasked. BIREID_CPUID_MASK_LOG=1 prints, per process, how many CPUID instructions were trapped.
set -euo pipefail
if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi
if ! grep -qw cpuid_fault /proc/cpuinfo; then
    echo "avx2_only.sh: this CPU or kernel has no CPUID faulting (no 'cpuid_fault' in /proc/cpuinfo)" >&2
    exit 97
fi
here=$(cd "$(dirname "$0")" && pwd)
build=$(mktemp -d "${TMPDIR:-/tmp}/bireid_cpuid_mask.XXXXXX")
trap 'rm -rf "$build"' EXIT
gcc -O2 -Wall -Wextra -fPIC -shared -o "$build/cpuid_mask.so" "$here/cpuid_mask.c" -ldl
# glibc picked its string functions from CPUID before the preload ran; these tunables drop its AVX-512 variants.
hw=-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL,-AVX512_VNNI,-AVX512_BF16,-AVX512_FP16,-AVX_VNNI
export GLIBC_TUNABLES="glibc.cpu.hwcaps=$hw${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}"
export LD_PRELOAD="$build/cpuid_mask.so${LD_PRELOAD:+:$LD_PRELOAD}"
"$@"
