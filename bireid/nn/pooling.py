"""Global max pooling over every position of a map, with BiPointNet's entropy-maximising shift.

A point cloud of P points runs as a (N, C, P, 1) map (point-wise MLPs are 1x1 convs), so the permutation-invariant
aggregation of PointNet is a max over all positions. BiPointNet (Qin et al., ICLR 2021) observes that the max of
many roughly standard-normal features is almost always positive, so a 1-bit layer reading it sees nearly all +1:
the aggregated feature carries almost no information after binarization ("feature homogenization"). Their
entropy-maximising aggregation (EMA-max) subtracts the shift delta* for which the max of n i.i.d. N(0, 1) values is
positive with probability one half, P(max > delta) = 1 - Phi(delta)^n = 1/2, i.e. delta* = Phi^-1(2^(-1/n))
(3.204 for n = 1024; the features are standard normal right after a BatchNorm).
"""

from __future__ import annotations

from statistics import NormalDist

import torch
import torch.nn as nn


def ema_shift(n: int) -> float:
    """delta* = Phi^-1(2^(-1/n)): the shift that makes the max of ``n`` standard-normal values positive with
    probability 1/2 (maximal entropy of its sign)."""
    if n < 1:
        raise ValueError(f"the number of pooled positions must be >= 1, got {n}")
    return NormalDist().inv_cdf(0.5 ** (1.0 / n))


class GlobalMaxPool(nn.Module):
    """``max`` over all positions of a (N, C, H, W) map, minus a constant ``shift``: (N, C, 1, 1).

    ``shift=ema_shift(H * W)`` is BiPointNet's EMA-max; 0 is the plain max pool. The exporter maps it to the
    runtime's global max pool followed by a per-channel bias.
    """

    def __init__(self, shift: float = 0.0) -> None:
        super().__init__()
        self.shift = float(shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.amax(dim=(2, 3), keepdim=True)
        return y - self.shift if self.shift else y

    def extra_repr(self) -> str:
        return f"shift={self.shift:.4f}"
