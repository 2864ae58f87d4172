"""Weight scaling factors of binary convolutions: ``W ≈ alpha[:, None, None, None] * sign(W)``.

Protocol (so other scale modules, e.g. KR-GAL's attention-based one, plug in): an ``nn.Module`` whose
``forward(weight) -> Tensor of shape (Cout,) | None`` takes the latent real weight ``(Cout, Cin, k, k)``.
``BinaryConv2d(scaling=...)`` accepts a name (``'none'``, ``'xnor'``, ``'learned'``), a module instance, or a
factory ``callable(conv) -> nn.Module`` called with the freshly built conv (its ``weight`` initialised).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn


class NoScale(nn.Module):
    """No scale: the binary conv computes with ±1 weights; the following BatchNorm absorbs the magnitude."""

    def forward(self, weight: torch.Tensor) -> None:
        return None


class MeanAbsScale(nn.Module):
    """XNOR-Net: alpha = per-output-channel mean |W|, recomputed every forward from the latent weight.

    The gradient flows through alpha as in XNOR-Net (dL/dW gets the extra ``sign(W) / n`` term).
    """

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.abs().mean(dim=tuple(range(1, weight.dim())))


class LearnedScale(nn.Module):
    """A learnable ``(Cout,)`` Parameter ``alpha`` initialised to the per-channel mean |W| of the conv.

    This is BiRe-ID's channel-wise scale (the parameter KR-GAL's ``||w - alpha * sign(w)||^2`` acts on). It
    is positive at initialisation and is not constrained afterwards (the kernel-reconstruction loss keeps it
    near mean|W|; deploy-time folding handles either sign, as for a BatchNorm gamma).
    """

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.empty(weight.shape[0], dtype=weight.dtype, device=weight.device))
        self.reset_from(weight)

    @torch.no_grad()
    def reset_from(self, weight: torch.Tensor) -> None:
        """Re-initialise alpha to mean |W| per output channel (after loading new latent weights)."""
        self.alpha.copy_(weight.detach().abs().mean(dim=tuple(range(1, weight.dim()))))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return self.alpha

    def extra_repr(self) -> str:
        return f"{self.alpha.numel()}"


ScalingSpec = str | nn.Module | Callable[[nn.Module], nn.Module] | None


def make_scaling(spec: ScalingSpec, conv: nn.Module) -> nn.Module:
    """Resolve a scaling spec for ``conv`` (see the module docstring)."""
    if spec is None or spec == "none":
        return NoScale()
    if spec == "xnor":
        return MeanAbsScale()
    if spec == "learned":
        return LearnedScale(conv.weight)
    if isinstance(spec, nn.Module):
        return spec
    if isinstance(spec, str):
        raise ValueError(f"unknown scaling {spec!r}: use none, xnor, learned, a module or a factory(conv)")
    if callable(spec):
        mod = spec(conv)
        if not isinstance(mod, nn.Module):
            raise TypeError(f"scaling factory {spec!r} returned {type(mod).__name__}, not an nn.Module")
        return mod
    raise TypeError(f"scaling must be a name, an nn.Module or a factory(conv), got {type(spec).__name__}")
