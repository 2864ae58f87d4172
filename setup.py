"""Build hook for the compiled runtime (bireid.runtime._engine); metadata lives in pyproject.toml.

The extension is plain C++17 + OpenMP with pybind11 and never links against torch. Each instruction set's kernels
(csrc/kernels_<isa>.cpp) are compiled with a target pragma of their own and chosen at run time, so the default
flags stay portable: no architecture flag is passed on any machine. On AArch64 the x86 files compile to stubs and
the NEON kernels need no flag (Advanced SIMD is part of every AArch64 CPU), so `pip install .` there builds and
picks them by itself.
"""

import glob
import os
import sys

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup

CSRC = "bireid/runtime/csrc"

# No FMA contraction: every ISA path must round exactly alike (GCC contracts by default, on AArch64 too).
compile_args = ["-O3", "-ffp-contract=off"]
link_args: list[str] = []
if sys.platform != "win32" and os.environ.get("BIREID_NO_OPENMP") != "1":
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

# One compiler process per core for the kernel and op files (BIREID_BUILD_JOBS overrides).
ParallelCompile("BIREID_BUILD_JOBS", default=0).install()

ext = Pybind11Extension(
    "bireid.runtime._engine",
    sources=sorted(glob.glob(f"{CSRC}/*.cpp")),
    depends=sorted(glob.glob(f"{CSRC}/*.h")),
    include_dirs=[CSRC],
    cxx_std=17,
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

setup(ext_modules=[ext], cmdclass={"build_ext": build_ext})
