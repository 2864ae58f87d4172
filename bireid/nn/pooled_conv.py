"""``PooledConv2d``: Bi-Real Net's real downsample, an average pooling followed by a 1x1 real conv."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class PooledConv2d(nn.Conv2d):
    """``AvgPool2d(stride, ceil_mode=True)`` followed by a stride-1 real conv (Bi-Real's real downsample).

    One module, not two, so that a binary ResNet's ``downsample.0.weight`` keeps the real ResNet's name (a real
    checkpoint initialises it by name); the exporter recognises the layer by its type. ``ceil_mode`` keeps the
    output size equal to the strided 3x3 conv's, ceil(H / s), for odd sizes too.
    """

    def __init__(self, in_channels: int, out_channels: int, pool_stride: int) -> None:
        super().__init__(in_channels, out_channels, 1, 1, 0, bias=False)
        self.pool_stride = pool_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_stride > 1:
            x = F.avg_pool2d(x, self.pool_stride, self.pool_stride, ceil_mode=True, count_include_pad=False)
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"avgpool {self.pool_stride}, " + super().extra_repr()
