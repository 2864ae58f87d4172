"""Torch-free inference runtime for exported binary re-ID models (``.bnn`` files).

Needs numpy only: the kernels are the compiled extension ``bireid.runtime._engine`` (C++/OpenMP; AVX-512
VPOPCNTDQ, AVX2, NEON (AArch64) or portable code chosen at run time, ``BIREID_RUNTIME_ISA`` forces one).
"""

from .errors import FormatError
from .format import FORMAT_VERSION, MAGIC, read_bnn, write_bnn
from .model import BNNModel
from .ops import best_isa, get_isa, get_num_threads, set_isa, set_num_threads

__all__ = ["BNNModel", "FORMAT_VERSION", "FormatError", "MAGIC", "best_isa", "get_isa", "get_num_threads",
           "read_bnn", "set_isa", "set_num_threads", "write_bnn"]
