#!/usr/bin/env bash
# Runs an AArch64 program under qemu user-mode emulation, its shared libraries from the cross toolchain's sysroot.
set -euo pipefail
qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static)
exec nice -n 10 "$qemu" -L /usr/aarch64-linux-gnu "$@"
