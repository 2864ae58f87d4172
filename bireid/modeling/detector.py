"""The one-stage, anchor-free person detector (CenterNet-style, Zhou et al. 2019) on a ResNet backbone.

    image -> ResNet stages s1..s4 (strides 4, 8, 16, 32) -> neck -> head -> (5, H/4, W/4) map (``bireid.boxes``)

Neck (light, U-Net-like): starting from s4, three times ``x = act(bn(conv3x3(up2(x))) + s_i)`` for i = 3, 2, 1,
with nearest 2x upsampling; the skip from each stage is the real-valued shortcut the binary conv needs (the
Bi-Real rule: every binary conv has a real path around it), and the result is at stride 4 with s1's channels.
Head: one real 3x3 conv + ReLU and a real 1x1 conv to the 5 channels (heatmap logit, size, offset) -- the three
CenterNet heads share the 3x3 conv so that the deployed graph is a single chain.

1-bit family (``resnet18-det`` etc. in ``BACKBONES["binary"]``): the backbone's binary blocks and a neck of
``BinaryConv2d`` made with the backbone's own binary options (binarizers, scale, activation: every method
applies); the stem and the head convs are real. Real family: the float ResNet with conv + BN + ReLU in the neck.
KR-GAL finds every scaled binary conv of the model (backbone and neck); FR-GAL reads ``outputs["stages"]``, the four
backbone stages, as in re-ID.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..boxes import HEAD_CHANNELS
from .backbones.binary_resnet import BinaryBasicBlock, BinaryResNet, init_convs
from .backbones.resnet import BasicBlock, ResNet
from .registry import register_backbone

OUTPUT_STRIDE = 4
HEAT_PRIOR = 0.1  # initial person probability of every cell (CenterNet's focal-loss prior: bias -2.19)


class Neck(nn.Module):
    """Upsampling path from the deepest stage to stride 4 (see the module docstring); ``make_conv(cin, cout)`` is
    the 3x3 conv of one step, ``make_act(c)`` its activation."""

    def __init__(self, stage_channels: list[int], make_conv, make_act) -> None:
        super().__init__()
        chans = list(stage_channels)
        self.convs = nn.ModuleList(make_conv(chans[i + 1], chans[i]) for i in reversed(range(len(chans) - 1)))
        self.bns = nn.ModuleList(nn.BatchNorm2d(chans[i]) for i in reversed(range(len(chans) - 1)))
        self.acts = nn.ModuleList(make_act(chans[i]) for i in reversed(range(len(chans) - 1)))
        self.out_channels = chans[0]

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        x = stages[-1]
        for conv, bn, act, skip in zip(self.convs, self.bns, self.acts, reversed(stages[:-1])):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = act(bn(conv(x)) + skip)
        return x


class DetectionBackbone(nn.Module):
    """A ResNet ``body`` and its ``neck``. ``forward`` keeps the backbone contract (the stage maps, low to high;
    ``stage_channels``); the detector runs ``neck`` on them."""

    def __init__(self, body: nn.Module, neck: Neck) -> None:
        super().__init__()
        self.body, self.neck = body, neck
        self.stage_channels = body.stage_channels
        self.out_channels = neck.out_channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.body(x)


def _real_neck(body: ResNet) -> Neck:
    return Neck(body.stage_channels, lambda cin, cout: nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
                lambda c: nn.ReLU(inplace=True))


def _binary_neck(body: BinaryResNet) -> Neck:
    o = body.block_options
    neck = Neck(body.stage_channels, lambda cin, cout: o.conv(cin, cout, 3), o.act)
    init_convs(neck)
    return neck


def _check_stride(last_stride: int) -> None:
    if last_stride != 2:
        raise ValueError(f"the detector's neck needs the last stage at stride 2 (model.last_stride 2), got "
                         f"{last_stride}")


@register_backbone("resnet18-det")
def resnet18_det(last_stride: int = 2, width: int = 64, stem: str = "imagenet") -> DetectionBackbone:
    """ResNet-18 with the detection neck (real)."""
    _check_stride(last_stride)
    body = ResNet(BasicBlock, [2, 2, 2, 2], 2, width, stem)
    return DetectionBackbone(body, _real_neck(body))


@register_backbone("resnet18-det", family="binary")
def binary_resnet18_det(last_stride: int = 2, width: int = 64, **kw) -> DetectionBackbone:
    """1-bit ResNet-18 with a binary detection neck; keyword options as ``BinaryResNet``."""
    _check_stride(last_stride)
    body = BinaryResNet(BinaryBasicBlock, [2, 2, 2, 2], 2, width, **kw)
    return DetectionBackbone(body, _binary_neck(body))


class Detector(nn.Module):
    """Backbone + neck + the real CenterNet head. Training: ``{"head": (N, 5, H/4, W/4), "stages": [...]}``;
    evaluation: the head map."""

    stride = OUTPUT_STRIDE

    def __init__(self, backbone: DetectionBackbone, num_classes: int = 1, head_channels: int = 64) -> None:
        super().__init__()
        if num_classes != 1:
            raise ValueError(f"the detector finds one class (person), got num_classes={num_classes}")
        if not isinstance(getattr(backbone, "neck", None), Neck):
            raise ValueError(f"{type(backbone).__name__} has no detection neck; use a '-det' architecture")
        self.backbone = backbone
        self.num_classes = num_classes
        c = backbone.out_channels
        self.head = nn.Sequential(nn.Conv2d(c, head_channels, 3, 1, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(head_channels, HEAD_CHANNELS, 1))
        nn.init.normal_(self.head[2].weight, std=0.01)
        nn.init.zeros_(self.head[2].bias)
        with torch.no_grad():
            self.head[2].bias[0] = -math.log((1 - HEAT_PRIOR) / HEAT_PRIOR)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor | list[torch.Tensor]]:
        stages = self.backbone(x)
        out = self.head(self.backbone.neck(stages))
        if not self.training:
            return out
        return {"head": out, "stages": stages}


def build_detector(backbone: nn.Module, num_classes: int = 1) -> Detector:
    return Detector(backbone, num_classes)
