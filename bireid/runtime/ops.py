"""NumPy-facing wrappers of the compiled kernels (``bireid.runtime._engine``): packing, binary and float conv.

Layouts: activations are float32 NHWC; packed activations are uint64 (N, H+2p, W+2p, ceil(C/64)) with
channel ``c`` in bit ``c % 64`` of word ``c // 64`` and a set bit meaning -1 (``x - t < 0``); binary weights
are uint64 (Cout, k, k, ceil(Cin/64)) in the same bit order (bits past Cin are 0).
"""

from __future__ import annotations

import numpy as np

from . import _engine

__all__ = ["pack_weight_signs", "pack_activations", "binary_conv2d", "conv2d_float", "real_conv_weights",
           "BConvWeights", "FConvWeights", "get_isa", "set_isa", "isa_supported", "best_isa", "set_num_threads",
           "get_num_threads"]

BConvWeights = _engine.BConvWeights
FConvWeights = _engine.FConvWeights
pack_activations = _engine.pack_activations
get_isa = _engine.get_isa
set_isa = _engine.set_isa
isa_supported = _engine.isa_supported
best_isa = _engine.best_isa
set_num_threads = _engine.set_num_threads
get_num_threads = _engine.get_num_threads


def pack_weight_signs(negative: np.ndarray) -> np.ndarray:
    """Pack a boolean (Cout, k, k, Cin) array (True = weight sign -1) into uint64 (Cout, k, k, ceil(Cin/64))."""
    neg = np.asarray(negative, dtype=bool)
    if neg.ndim != 4:
        raise ValueError(f"expected (Cout, k, k, Cin) signs, got shape {neg.shape}")
    cin = neg.shape[-1]
    words = (cin + 63) // 64
    padded = np.zeros(neg.shape[:-1] + (words * 64,), dtype=bool)
    padded[..., :cin] = neg
    # bitorder little: element 8*j + i -> bit i of byte j; reading 8 bytes little-endian puts channel c at bit c.
    packed = np.packbits(padded, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").astype(np.uint64, copy=False).reshape(neg.shape[:-1] + (words,))


def binary_conv2d(x: np.ndarray, weights: BConvWeights, stride: int, pad: int, pad_value: int,
                  thresh: np.ndarray | None = None, **epilogue) -> np.ndarray:
    """sign(x - thresh) (x: float32 NHWC) convolved with packed +-1 weights; returns float32 NHWC.

    Without epilogue arguments the output is the exact integer dot product (as float32). Packing and the conv
    run in one engine call (the same result as ``pack_activations`` followed by ``_engine.binary_conv2d``)."""
    return _engine.binary_conv2d_fused(x, weights, stride, pad, pad_value, thresh=thresh, **epilogue)


def conv2d_float(x: np.ndarray, weights: FConvWeights, stride: int, pad: int, **epilogue) -> np.ndarray:
    """Real conv (zero padding) of NHWC float32 ``x`` with prepared ``FConvWeights`` and the fused epilogue."""
    return _engine.conv2d_float(x, weights, stride, pad, **epilogue)


def real_conv_weights(w_ohwi: np.ndarray) -> FConvWeights:
    """Prepare float32 (Cout, k, k, Cin) conv weights for :func:`conv2d_float`."""
    cout, k, _, cin = w_ohwi.shape
    return FConvWeights(np.ascontiguousarray(w_ohwi.reshape(cout, k * k * cin).T, dtype=np.float32), cin, k)
