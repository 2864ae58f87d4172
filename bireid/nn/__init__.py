"""1-bit building blocks (larq-like): binarizers, weight scales, ``BinaryConv2d``, (R)PReLU, Bi-Real's pooled
downsample conv, global max pooling (with BiPointNet's entropy-maximising shift).

Conventions: ``sign(0) = +1``; ``is_binary_conv(m)`` is the one test for "is this a 1-bit conv?", and a binary
conv is binary in the accounting sense only when both its activations and its weights are binarized
(``is_binary_conv(m, fully=True)``).
"""

from .activations import RPReLU, make_activation
from .binarize import (
    ApproxSign,
    ApproxSignFunction,
    RSign,
    SignSTE,
    SignSTEFunction,
    approx_sign,
    hard_sign,
    make_binarizer,
    sign_ste,
)
from .conv import BinaryConv2d, binary_convs, is_binary_conv, set_binarization
from .pooled_conv import PooledConv2d
from .pooling import GlobalMaxPool, ema_shift
from .scaling import LearnedScale, MeanAbsScale, NoScale, make_scaling
from .state import InitReport, init_from_state

__all__ = [
    "ApproxSign", "ApproxSignFunction", "BinaryConv2d", "GlobalMaxPool", "InitReport", "LearnedScale", "MeanAbsScale",
    "NoScale", "PooledConv2d", "RPReLU", "RSign", "SignSTE", "SignSTEFunction", "approx_sign", "binary_convs",
    "ema_shift", "hard_sign", "init_from_state", "is_binary_conv", "make_activation", "make_binarizer", "make_scaling",
    "set_binarization", "sign_ste",
]
