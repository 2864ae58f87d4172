"""1-bit building blocks (larq-like): binarizers, weight scales, ``BinaryConv2d``, (R)PReLU.

Conventions: ``sign(0) = +1``; a binary conv is binary in the accounting sense only when both its
activations and its weights are binarized (``binarize_acts`` and ``binarize_weights``).
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
from .conv import BinaryConv2d, binary_convs, set_binarization
from .scaling import LearnedScale, MeanAbsScale, NoScale, make_scaling
from .state import InitReport, init_from_state

__all__ = [
    "ApproxSign", "ApproxSignFunction", "BinaryConv2d", "InitReport", "LearnedScale", "MeanAbsScale", "NoScale",
    "RPReLU", "RSign", "SignSTE", "SignSTEFunction", "approx_sign", "binary_convs", "hard_sign", "init_from_state",
    "make_activation", "make_binarizer", "make_scaling", "set_binarization", "sign_ste",
]
