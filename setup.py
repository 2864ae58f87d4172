"""Build hook for the compiled runtime (bireid.runtime._engine); metadata lives in pyproject.toml.

The extension is plain C++17 + OpenMP with pybind11 and never links against torch. ISA-specific kernels are
compiled with per-function target pragmas and chosen at run time, so the default flags stay portable.
"""

import os
import sys

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

CSRC = "bireid/runtime/csrc"

# No FMA contraction: every ISA path must round exactly alike.
compile_args = ["-O3", "-ffp-contract=off"]
link_args: list[str] = []
if sys.platform != "win32" and os.environ.get("BIREID_NO_OPENMP") != "1":
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")

ext = Pybind11Extension(
    "bireid.runtime._engine",
    sources=[f"{CSRC}/engine.cpp", f"{CSRC}/kernels_avx2.cpp", f"{CSRC}/kernels_avx512.cpp"],
    depends=[f"{CSRC}/kernels.h"],
    include_dirs=[CSRC],
    cxx_std=17,
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

setup(ext_modules=[ext], cmdclass={"build_ext": build_ext})
