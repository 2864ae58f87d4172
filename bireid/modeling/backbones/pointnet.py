"""PointNet (Qi et al., CVPR 2017) without its T-Nets, real (family ``"real"``) and 1-bit (``"binary"``).

A cloud of P points is a (N, 3, P, 1) map, so a point-wise MLP layer is a 1x1 conv: in the 1-bit family a
``BinaryConv2d`` with the method's binarizers and weight scale, exactly the layer the binary ResNets use (and the
one KR-GAL refines). The per-point features become one global feature by a max over the P positions
(``GlobalMaxPool``); with ``aggregation='ema-max'`` the max is shifted by BiPointNet's entropy-maximising delta
(``bireid.nn.ema_shift``), so the 1-bit layer reading it sees +1 and -1 equally often. The classifier MLP after
the pooling runs as 1x1 convs on the (N, C, 1, 1) global map, binary in the 1-bit family; the final real FC is
the classifier's (``bireid.modeling.Classifier``).

Layers (w = ``width``, 64 standard)::

    stem     conv 3 -> w, BN, act                       real in both families (BiPointNet keeps it real)
    stage 1  conv w -> w, BN, act; conv w -> w, BN, act  per-point features (N, w, P, 1)
    stage 2  conv w -> 2w, BN, act                       per-point features (N, 2w, P, 1)
    stage 3  conv 2w -> 16w, BN; global max [- delta]   the global feature (N, 16w, 1, 1)
    stage 4  fc 16w -> 8w, BN, act; fc 8w -> 4w, BN, act  the embedding (N, 4w, 1, 1)

As a backbone it returns the four stage maps (the contract of ``bireid.modeling.backbones.resnet``): FR-GAL's
high-level feature is the embedding, its low-level ones the per-point maps. Real family: ReLU, no shortcuts (the
original). 1-bit family, Bi-Real layout (``block_style='bireal'``): a real identity shortcut around every binary
layer whose input and output shapes agree (stage 1's two convs; no parameterised projections are added), the
BatchNorm after such a branch starting at ``branch_gamma``; the method's activation (PReLU, RPReLU or none).
Stage 3 has no activation before the max, as in PointNet: its BatchNorm output is what EMA-max assumes standard
normal. BiPointNet's layer-wise scale recovery is not added: every binary layer here is followed by a BatchNorm,
which absorbs a layer-wise (or channel-wise) scale exactly, in training and at inference.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ...nn import GlobalMaxPool, ema_shift, make_activation
from ...nn.scaling import ScalingSpec
from ..registry import register_backbone
from .binary_resnet import BinaryOptions, init_convs
from .resnet import StagedBackbone

AGGREGATIONS = ("max", "ema-max")


class PointLayer(nn.Module):
    """One point-wise layer: ``act(bn(conv(x)) [+ x])`` (the shortcut only when asked and shapes agree)."""

    def __init__(self, conv: nn.Module, channels: int, act: nn.Module, shortcut: bool = False) -> None:
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm2d(channels)
        self.act = act
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        if self.shortcut:
            y = y + x
        return self.act(y)


class PointNet(StagedBackbone):
    """PointNet's feature network as a staged backbone (see the module docstring).

    ``conv(cin, cout)`` builds a point-wise layer's conv (real or binary), ``act(c)`` its activation, ``shortcuts``
    adds the identity shortcuts where shapes agree; ``num_points`` sets EMA-max's delta.
    """

    def __init__(self, conv, act, width: int = 64, num_points: int = 1024, aggregation: str = "ema-max",
                 shortcuts: bool = False, branch_gamma: float = 1.0, stem_act: nn.Module | None = None) -> None:
        super().__init__()
        if width <= 0 or num_points <= 0:
            raise ValueError(f"PointNet needs positive width and num_points, got {width}, {num_points}")
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
        w = width

        def layer(cin: int, cout: int, activation: bool = True) -> PointLayer:
            return PointLayer(conv(cin, cout), cout, act(cout) if activation else nn.Identity(),
                              shortcut=shortcuts and cin == cout)

        self.stem = nn.Sequential(nn.Conv2d(3, w, 1, bias=False), nn.BatchNorm2d(w),
                                  stem_act if stem_act is not None else nn.ReLU())
        shift = ema_shift(num_points) if aggregation == "ema-max" else 0.0
        self.stages = nn.ModuleList([
            nn.Sequential(layer(w, w), layer(w, w)),
            nn.Sequential(layer(w, 2 * w)),
            nn.Sequential(layer(2 * w, 16 * w, activation=False), GlobalMaxPool(shift)),
            nn.Sequential(layer(16 * w, 8 * w), layer(8 * w, 4 * w)),
        ])
        self.stage_channels = [w, 2 * w, 16 * w, 4 * w]
        self.out_channels = 4 * w
        self.num_points, self.aggregation = num_points, aggregation
        init_convs(self)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():  # small residual branches: the real shortcut carries the signal at init
            if isinstance(m, PointLayer) and m.shortcut:
                nn.init.constant_(m.bn.weight, branch_gamma)


@register_backbone("pointnet")
def pointnet(last_stride: int = 1, width: int = 64, num_points: int = 1024, aggregation: str = "ema-max") -> PointNet:
    """Real-valued PointNet (ReLU, no shortcuts); ``last_stride`` is accepted for the image backbones' signature."""
    return PointNet(lambda cin, cout: nn.Conv2d(cin, cout, 1, bias=False), lambda c: nn.ReLU(), width, num_points,
                    aggregation)


@register_backbone("pointnet", family="binary")
def binary_pointnet(last_stride: int = 1, width: int = 64, num_points: int = 1024, aggregation: str = "ema-max",
                    downsample: str = "real", act_binarizer: str = "approx", weight_binarizer: str = "approx",
                    activation: str = "prelu", scaling: ScalingSpec = "none", pad_value: float = 0.0,
                    block_style: str = "bireal", stem_activation: str | None = None,
                    branch_gamma: float = 0.1) -> PointNet:
    """1-bit PointNet: every point-wise and MLP layer but the first binary (``BinaryConv2d`` 1x1, the method's
    binarizers and scale); ``downsample`` and ``last_stride`` are accepted for the image backbones' signature."""
    o = BinaryOptions(act_binarizer, weight_binarizer, scaling, pad_value, activation, downsample, block_style)
    if stem_activation is None:
        stem_activation = "prelu" if activation in ("prelu", "rprelu") else "relu"
    if not 0.0 <= branch_gamma <= 1.0:
        raise ValueError(f"branch_gamma must be in [0, 1], got {branch_gamma}")
    return PointNet(lambda cin, cout: o.conv(cin, cout, 1), o.act, width, num_points, aggregation,
                    shortcuts=block_style == "bireal", branch_gamma=branch_gamma,
                    stem_act=make_activation(stem_activation, width))
