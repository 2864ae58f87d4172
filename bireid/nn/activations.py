"""Real-valued activations used between binary convolutions."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class RPReLU(nn.Module):
    """ReActNet's RPReLU: ``prelu(x - gamma; beta) + zeta`` with per-channel learnable shift ``gamma``,
    slope ``beta`` (init 0.25, as nn.PReLU) and shift ``zeta``."""

    def __init__(self, channels: int, init_slope: float = 0.25) -> None:
        super().__init__()
        self.shift_in = nn.Parameter(torch.zeros(channels))
        self.slope = nn.Parameter(torch.full((channels,), float(init_slope)))
        self.shift_out = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        y = F.prelu(x - self.shift_in.view(shape), self.slope)
        return y + self.shift_out.view(shape)

    def extra_repr(self) -> str:
        return f"{self.slope.numel()}"


def make_activation(name: str, channels: int) -> nn.Module:
    """``'prelu'`` -> nn.PReLU(channels), ``'rprelu'`` -> RPReLU, ``'relu'`` -> ReLU, ``'none'`` -> Identity."""
    if name == "prelu":
        return nn.PReLU(channels)
    if name == "rprelu":
        return RPReLU(channels)
    if name == "relu":
        return nn.ReLU(inplace=False)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}: use prelu, rprelu, relu or none")
