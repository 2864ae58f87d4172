"""``BinaryConv2d``: a drop-in ``nn.Conv2d`` computing with sign(activations) and (scaled) sign(weights).

Exact forward (the contract the bit-packed exporter relies on)::

    xb = act_binarizer(x)                       # sign(x - threshold), sign(0) = +1
    xb = pad(xb, [p] * 4, value=pad_value)      # padded taps take pad_value (0 or +1) *after* binarization
    w  = weight_scale()[:, None, None, None] * binary_weight()   # or binary_weight() when the scale is None
    y  = conv2d(xb, w, stride=stride)

``binarize_acts`` / ``binarize_weights`` switch each side off (ReActNet's two-step schedule). With real
activations the padding is ordinary zero padding; with real weights the latent weight is used unscaled
(the scale belongs to the binary kernel, ``W ≈ alpha * sign(W)``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .binarize import make_binarizer
from .scaling import ScalingSpec, make_scaling


def _pair_equal(v: int | tuple[int, int], what: str) -> int:
    if isinstance(v, int):
        return v
    if len(v) != 2 or v[0] != v[1]:
        raise ValueError(f"BinaryConv2d supports square {what} only, got {v}")
    return int(v[0])


class BinaryConv2d(nn.Conv2d):
    """1-bit convolution (groups=1, dilation=1, no bias). See the module docstring for the exact forward.

    Args:
        act_binarizer: ``'approx'`` (Bi-Real), ``'ste'``, ``'rsign'`` / ``'rsign-ste'`` (learnable per-input-
            channel threshold) or a module with a ``threshold`` attribute.
        weight_binarizer: ``'approx'`` (default, Bi-Real / BiRe-ID), ``'ste'`` or a module.
        scaling: ``'none'``, ``'xnor'`` (mean |W| per output channel), ``'learned'`` (Parameter ``alpha``), an
            ``nn.Module`` or a factory ``callable(conv) -> nn.Module`` (see ``bireid.nn.scaling``).
        pad_value: 0.0 (zero padding, as in float training) or 1.0 (one-padding, exact for ±1 bit packing).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 act_binarizer: str | nn.Module = "approx", weight_binarizer: str | nn.Module = "approx",
                 scaling: ScalingSpec = "none", pad_value: float = 0.0, binarize_acts: bool = True,
                 binarize_weights: bool = True) -> None:
        k = _pair_equal(kernel_size, "kernels")
        s = _pair_equal(stride, "strides")
        p = _pair_equal(padding, "padding")
        super().__init__(in_channels, out_channels, k, s, p, bias=False)
        if float(pad_value) not in (0.0, 1.0):
            raise ValueError(f"pad_value must be 0.0 or 1.0, got {pad_value}")
        self.pad_value = float(pad_value)
        self.act_binarizer = make_binarizer(act_binarizer, in_channels)
        thr = getattr(self.act_binarizer, "threshold", None)
        if thr is not None and thr.numel() != in_channels:
            raise ValueError(f"act_binarizer threshold has {thr.numel()} channels, the conv {in_channels}")
        self.weight_binarizer = make_binarizer(weight_binarizer)
        if getattr(self.weight_binarizer, "threshold", None) is not None:
            raise ValueError("the weight binarizer must not have a threshold (sign(w) is taken at 0)")
        self.scaling = make_scaling(scaling, self)
        self.binarize_acts = bool(binarize_acts)
        self.binarize_weights = bool(binarize_weights)

    def binary_weight(self) -> torch.Tensor:
        """sign(W) in {-1, +1}, carrying the weight binarizer's surrogate gradient."""
        return self.weight_binarizer(self.weight)

    def weight_scale(self) -> torch.Tensor | None:
        """The ``(Cout,)`` scale of the binary kernel, or None when the conv has no scale."""
        return self.scaling(self.weight)

    def effective_weight(self) -> torch.Tensor:
        """The kernel actually convolved: ``alpha * sign(W)`` (binary weights) or ``W`` (real weights)."""
        if not self.binarize_weights:
            return self.weight
        w = self.binary_weight()
        s = self.weight_scale()
        if s is not None:
            w = s.to(w.dtype).view(-1, 1, 1, 1) * w
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.padding[0]
        if self.binarize_acts:
            x = self.act_binarizer(x)
            if p and self.pad_value != 0.0:
                x = F.pad(x, [p] * 4, value=self.pad_value)
                p = 0
        w = self.effective_weight()
        return F.conv2d(x, w.to(x.dtype), None, self.stride, p)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return (f"{s}, binarize_acts={self.binarize_acts}, binarize_weights={self.binarize_weights}, "
                f"pad_value={self.pad_value}")


def is_binary_conv(m: nn.Module, *, fully: bool = False) -> bool:
    """Whether ``m`` is a 1-bit convolution (a ``BinaryConv2d``: its weight is a latent binary weight).

    ``fully=True`` asks whether it computes in 1 bit right now, i.e. binarizes both its activations and its
    weights: binary in the accounting and deployment sense (a two-step schedule switches one side off).
    """
    return isinstance(m, BinaryConv2d) and (not fully or (m.binarize_acts and m.binarize_weights))


def binary_convs(model: nn.Module) -> list[tuple[str, BinaryConv2d]]:
    """All ``BinaryConv2d`` modules of a model, with their qualified names."""
    return [(n, m) for n, m in model.named_modules() if is_binary_conv(m)]


def set_binarization(model: nn.Module, acts: bool | None = None, weights: bool | None = None) -> int:
    """Switch activation / weight binarization of every ``BinaryConv2d`` in ``model`` (None = leave as is).

    Returns the number of binary convs found (0 for a real model, where it is a no-op).
    """
    convs = binary_convs(model)
    for _, m in convs:
        if acts is not None:
            m.binarize_acts = bool(acts)
        if weights is not None:
            m.binarize_weights = bool(weights)
    return len(convs)
