"""Binarizers: sign in the forward pass, a surrogate gradient in the backward pass.

Convention used everywhere in bireid (training, export, the bit-packed runtime): ``sign(0) = +1``, i.e.
``sign(x) = +1 if x >= 0 else -1``. A tensor of exact zeros therefore binarizes to all +1.

Each surrogate is an ``autograd.Function`` (``SignSTEFunction``, ``ApproxSignFunction``) with a functional
shortcut (``sign_ste``, ``approx_sign``) and an ``nn.Module`` wrapper (``SignSTE``, ``ApproxSign``,
``RSign``). Every module has a ``threshold`` attribute: ``None`` for the plain signs, a learnable ``(C,)``
Parameter for ``RSign`` (the module computes ``sign(x - threshold)``), so exporters can read it uniformly.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def hard_sign(x: torch.Tensor) -> torch.Tensor:
    """sign with sign(0) = +1, same dtype as ``x``, no gradient."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


class SignSTEFunction(torch.autograd.Function):
    """sign(x) forward; straight-through backward clipped to |x| <= 1 (d/dx = 1 there, 0 elsewhere)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return hard_sign(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class ApproxSignFunction(torch.autograd.Function):
    """sign(x) forward; Bi-Real's piecewise-quadratic surrogate backward: d/dx = 2 - 2|x| on [-1, 1], else 0.

    (The derivative of the surrogate F(x) = 2x + x^2 on [-1, 0), 2x - x^2 on [0, 1), ±1 outside.)
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return hard_sign(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (2.0 - 2.0 * x.abs()).clamp_min(0.0).to(grad.dtype)


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """Functional :class:`SignSTEFunction`."""
    return SignSTEFunction.apply(x)


def approx_sign(x: torch.Tensor) -> torch.Tensor:
    """Functional :class:`ApproxSignFunction`."""
    return ApproxSignFunction.apply(x)


_GRADS = {"ste": sign_ste, "approx": approx_sign}


def _grad_fn(grad: str):
    if grad not in _GRADS:
        raise ValueError(f"unknown binarizer gradient {grad!r}: use one of {', '.join(_GRADS)}")
    return _GRADS[grad]


class _FixedSign(nn.Module):
    """sign(x) at a fixed threshold of 0 with the surrogate gradient named by ``grad``."""

    grad: str
    threshold: nn.Parameter | None

    def __init__(self) -> None:
        super().__init__()
        self.threshold = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GRADS[self.grad](x)


class SignSTE(_FixedSign):
    """sign(x) with the clipped straight-through gradient (XNOR-Net, BinaryNet)."""

    grad = "ste"


class ApproxSign(_FixedSign):
    """sign(x) with Bi-Real's ApproxSign gradient 2 - 2|x| on [-1, 1]."""

    grad = "approx"


class RSign(nn.Module):
    """ReActNet's RSign: ``sign(x - b)`` with a learnable per-channel threshold ``b`` of shape ``(C,)``.

    The surrogate gradient (``grad='approx'`` or ``'ste'``) is taken at ``x - b``, so ``b`` receives
    ``-sum`` of the input gradient over the batch and spatial positions. ``b`` starts at zero.
    """

    def __init__(self, channels: int, grad: str = "approx") -> None:
        super().__init__()
        if channels <= 0:
            raise ValueError(f"RSign needs a positive channel count, got {channels}")
        self._fn = _grad_fn(grad)
        self.grad = grad
        self.threshold = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.threshold.numel():
            raise ValueError(f"RSign expects (N, {self.threshold.numel()}, ...) input, got {tuple(x.shape)}")
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return self._fn(x - self.threshold.view(shape).to(x.dtype))

    def extra_repr(self) -> str:
        return f"{self.threshold.numel()}, grad={self.grad}"


def make_binarizer(spec: str | nn.Module, channels: int | None = None) -> nn.Module:
    """Build a binarizer from a name: ``'ste'``, ``'approx'`` or ``'rsign'`` (= ``'rsign-approx'``),
    ``'rsign-ste'`` (needs ``channels``), or return a given module unchanged."""
    if isinstance(spec, nn.Module):
        if not hasattr(spec, "threshold"):
            raise TypeError(f"binarizer module {type(spec).__name__} must have a 'threshold' attribute")
        return spec
    if spec == "ste":
        return SignSTE()
    if spec == "approx":
        return ApproxSign()
    if spec in ("rsign", "rsign-approx", "rsign-ste"):
        if channels is None:
            raise ValueError("an RSign binarizer needs the channel count")
        return RSign(channels, grad="ste" if spec == "rsign-ste" else "approx")
    raise ValueError(f"unknown binarizer {spec!r}: use ste, approx, rsign or rsign-ste")
