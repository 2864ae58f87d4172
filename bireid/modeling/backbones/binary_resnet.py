"""1-bit ResNet-18/34/50 and CIFAR ResNet-20 (family ``"binary"``), Bi-Real layout by default.

Layout (``block_style='bireal'``, Bi-Real Net / BiRe-ID): every binary 3x3 conv has its own real-valued
identity shortcut::

    out1 = act1(bn1(conv1(x)) + shortcut(x))      # shortcut = x, or downsample(x) when shapes change
    out  = act2(bn2(conv2(out1)) + out1)

``block_style='standard'`` keeps the real ResNet's one shortcut per block (used for XNOR-Net)::

    out = act2(bn2(conv2(act1(bn1(conv1(x))))) + shortcut(x))

ResNet-50 (bottleneck, 1x1 -> 3x3 -> 1x1, all binary) in ``'bireal'`` style gives each conv a real shortcut
*where the shapes allow it, without parameters*: conv1 (cin -> planes) gets an identity shortcut only when
cin == planes (the first block of stage 1 at width 64; otherwise none), conv2 (3x3) gets the identity or a
2x2 average pooling when it strides, and conv3 (planes -> 4 planes) takes the block's shortcut (identity or
``downsample``), as in the real bottleneck. No extra parameterised projections are introduced, so the
module names and shapes stay those of the real ResNet-50.

The stem (conv7x7 + BN + ReLU/PReLU + maxpool, or the CIFAR 3x3 conv + BN + ReLU/PReLU; see
``bireid.modeling.backbones.resnet``) is real-valued; the first binary layer binarizes its output.

Downsampling (``downsample``):
- ``'binary'``: ``BinaryConv2d(1x1, stride s) + BN`` (BiRe-ID's accounting: the 1x1 convs are binary);
- ``'real'``: ``AvgPool2d(s)`` then a real 1x1 conv + BN (Bi-Real's). The pooling is folded into the conv
  module (``bireid.nn.PooledConv2d``) so that ``downsample.0.weight`` keeps the real ResNet's name.

Names (``stem.0``, ``stages.i.j.conv1/bn1/conv2/bn2[/conv3/bn3]/downsample.0/.1``) match
``bireid.modeling.backbones.resnet``, so a trained real checkpoint initialises a binary model by name+shape
(``bireid.nn.init_from_state``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...nn import BinaryConv2d, PooledConv2d, make_activation
from ...nn.scaling import ScalingSpec
from ..registry import register_backbone
from .resnet import StagedBackbone, build_stages, make_stem, resnet20_width


class BinaryOptions:
    """The binary options shared by every block of one backbone."""

    def __init__(self, act_binarizer: str, weight_binarizer: str, scaling: ScalingSpec, pad_value: float,
                 activation: str, downsample: str, block_style: str) -> None:
        if downsample not in ("binary", "real"):
            raise ValueError(f"downsample must be 'binary' or 'real', got {downsample!r}")
        if block_style not in ("bireal", "standard"):
            raise ValueError(f"block_style must be 'bireal' or 'standard', got {block_style!r}")
        if act_binarizer == "rsign-approx":
            act_binarizer = "rsign"
        if act_binarizer not in ("approx", "ste", "rsign", "rsign-ste"):
            raise ValueError(f"act_binarizer must be approx, ste, rsign or rsign-ste, got {act_binarizer!r}")
        if weight_binarizer not in ("approx", "ste"):
            raise ValueError(f"weight_binarizer must be approx or ste, got {weight_binarizer!r}")
        if activation not in ("prelu", "rprelu", "none"):  # a ReLU before the next sign would give all +1
            raise ValueError(f"activation must be prelu, rprelu or none, got {activation!r}")
        self.act_binarizer, self.weight_binarizer, self.scaling = act_binarizer, weight_binarizer, scaling
        self.pad_value, self.activation = pad_value, activation
        self.downsample, self.block_style = downsample, block_style

    def conv(self, cin: int, cout: int, k: int, stride: int = 1) -> BinaryConv2d:
        return BinaryConv2d(cin, cout, k, stride, k // 2, act_binarizer=self.act_binarizer,
                            weight_binarizer=self.weight_binarizer, scaling=self.scaling, pad_value=self.pad_value)

    def act(self, c: int) -> nn.Module:
        return make_activation(self.activation, c)

    def down(self, cin: int, cout: int, stride: int) -> nn.Sequential:
        if self.downsample == "binary":
            return nn.Sequential(self.conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))
        return nn.Sequential(PooledConv2d(cin, cout, stride), nn.BatchNorm2d(cout))


class BinaryBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, o: BinaryOptions) -> None:
        super().__init__()
        self.style = o.block_style
        self.conv1 = o.conv(cin, planes, 3, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = o.act(planes)
        self.conv2 = o.conv(planes, planes, 3, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = o.act(planes)
        self.downsample = o.down(cin, planes, stride) if stride != 1 or cin != planes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        if self.style == "bireal":
            out = self.act1(self.bn1(self.conv1(x)) + idt)
            return self.act2(self.bn2(self.conv2(out)) + out)
        out = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(out)) + idt)


class BinaryBottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, o: BinaryOptions) -> None:
        super().__init__()
        cout = planes * 4
        self.style = o.block_style
        self.stride = stride
        self.conv1 = o.conv(cin, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = o.act(planes)
        self.conv2 = o.conv(planes, planes, 3, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act2 = o.act(planes)
        self.conv3 = o.conv(planes, cout, 1)
        self.bn3 = nn.BatchNorm2d(cout)
        self.act3 = o.act(cout)
        self.downsample = o.down(cin, cout, stride) if stride != 1 or cin != cout else None
        self.short1 = cin == planes  # conv1's identity shortcut only where the shapes already agree

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.bn1(self.conv1(x))
        if self.style == "bireal" and self.short1:
            out = out + x
        out = self.act1(out)
        y = self.bn2(self.conv2(out))
        if self.style == "bireal":
            y = y + (out if self.stride == 1 else
                     F.avg_pool2d(out, self.stride, self.stride, ceil_mode=True, count_include_pad=False))
        out = self.act2(y)
        return self.act3(self.bn3(self.conv3(out)) + idt)


class BinaryResNet(StagedBackbone):
    """A ResNet whose convolutions (all but the stem) are ``BinaryConv2d``; see the module docstring."""

    def __init__(self, block: type, layers: list[int], last_stride: int = 1, width: int = 64,
                 downsample: str = "binary", act_binarizer: str = "approx", weight_binarizer: str = "approx",
                 activation: str = "prelu", scaling: ScalingSpec = "none", pad_value: float = 0.0,
                 block_style: str = "bireal", stem_activation: str | None = None, branch_gamma: float = 0.1,
                 stem: str = "imagenet") -> None:
        super().__init__()
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride}")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        if not 0.0 <= branch_gamma <= 1.0:
            raise ValueError(f"branch_gamma must be in [0, 1], got {branch_gamma}")
        o = BinaryOptions(act_binarizer, weight_binarizer, scaling, pad_value, activation, downsample, block_style)
        self.block_options = o  # for layers built beside the backbone (a detection neck) the same way
        if stem_activation is None:  # PReLU where the blocks use a PReLU-like non-linearity, else ReLU
            stem_activation = "prelu" if activation in ("prelu", "rprelu") else "relu"
        self.stem = make_stem(stem, width, make_activation(stem_activation, width))
        self.stages, self.stage_channels = build_stages(lambda cin, planes, stride: block(cin, planes, stride, o),
                                                        block.expansion, layers, width, last_stride)
        self.out_channels = self.stage_channels[-1]
        self.options = {"downsample": downsample, "act_binarizer": act_binarizer,
                        "weight_binarizer": weight_binarizer, "activation": activation,
                        "scaling": scaling if isinstance(scaling, str) or scaling is None else "custom",
                        "pad_value": pad_value, "block_style": block_style, "branch_gamma": branch_gamma}
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Start the binary branches small: at init each block is then close to its real shortcut, so the stem's
        # features reach the head intact (a random 1-bit network at gamma 1 maps same-identity images to nearly
        # unrelated features and learns very slowly; see docs/methods.md). Downsample BNs keep gamma 1: with a
        # binary downsample its output *is* the shortcut.
        for blk in self.modules():
            if isinstance(blk, (BinaryBasicBlock, BinaryBottleneck)):
                for name in ("bn1", "bn2", "bn3"):
                    bn = getattr(blk, name, None)
                    if bn is not None:
                        nn.init.constant_(bn.weight, branch_gamma)
        init_convs(self)


def init_convs(module: nn.Module) -> None:
    """Kaiming (fan-out) init of every conv of ``module``; a learned alpha follows its re-initialised weight."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            reset = getattr(getattr(m, "scaling", None), "reset_from", None)
            if reset is not None:
                reset(m.weight)


@register_backbone("resnet18", family="binary")
def binary_resnet18(last_stride: int = 1, width: int = 64, **kw) -> BinaryResNet:
    """Binary ResNet-18; keyword options as :class:`BinaryResNet`."""
    return BinaryResNet(BinaryBasicBlock, [2, 2, 2, 2], last_stride, width, **kw)


@register_backbone("resnet34", family="binary")
def binary_resnet34(last_stride: int = 1, width: int = 64, **kw) -> BinaryResNet:
    """Binary ResNet-34; keyword options as :class:`BinaryResNet`."""
    return BinaryResNet(BinaryBasicBlock, [3, 4, 6, 3], last_stride, width, **kw)


@register_backbone("resnet50", family="binary")
def binary_resnet50(last_stride: int = 1, width: int = 64, **kw) -> BinaryResNet:
    """Binary ResNet-50 (bottleneck); keyword options as :class:`BinaryResNet`."""
    return BinaryResNet(BinaryBottleneck, [3, 4, 6, 3], last_stride, width, **kw)


@register_backbone("resnet20", family="binary")
def binary_resnet20(last_stride: int = 2, width: int = 64, stem: str = "cifar", **kw) -> BinaryResNet:
    """Binary CIFAR ResNet-20 (16, 32, 64 channels at the standard width); keyword options as :class:`BinaryResNet`."""
    return BinaryResNet(BinaryBasicBlock, [3, 3, 3], last_stride, resnet20_width(width), stem=stem, **kw)
