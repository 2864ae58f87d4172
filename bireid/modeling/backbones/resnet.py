"""Real-valued ResNet-18/34/50 (re-ID's ``last_stride``) and the CIFAR ResNet-20, returning every stage's map.

Contract shared by all backbones: ``forward(x)`` returns the list of the stage outputs (low to high level; four
for ResNet-18/34/50, three for ResNet-20); ``stage_channels`` lists their channel counts and ``out_channels`` is
the last one.

Stems (``stem``): ``'imagenet'`` is the 7x7 stride-2 conv + BN + activation + 3x3 stride-2 max pool; ``'cifar'``
the 3x3 stride-1 conv + BN + activation of the CIFAR ResNets (He et al. 2016, sec. 4.2), for 32x32 inputs.
``width`` is the network width in ResNet-18 terms (64 = standard): ResNet-18/34/50 have ``width`` first-stage
channels, ResNet-20 ``width / 4`` (16, 32, 64 at the standard size). ResNet-20's shortcuts that change shape are
1x1 convs + BN (option B of the paper; its CIFAR models use zero-padding, option A, 0.27M vs 0.27M+ parameters).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..registry import register_backbone


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        cout = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + idt)


def build_stages(make_block, expansion: int, layers: list[int], width: int,
                 last_stride: int) -> tuple[nn.ModuleList, list[int]]:
    """The four ResNet stages, shared by the real and binary families.

    Stage i has ``width * 2**i`` planes; its first block has stride 1, 2, 2, ``last_stride``.
    ``make_block(cin, planes, stride)`` builds one block. Returns (stages, output channels per stage).
    """
    cin, stages, channels = width, [], []
    for i, n in enumerate(layers):
        planes = width * 2**i
        stride = 1 if i == 0 else (last_stride if i == 3 else 2)
        blocks = []
        for j in range(n):
            blocks.append(make_block(cin, planes, stride if j == 0 else 1))
            cin = planes * expansion
        stages.append(nn.Sequential(*blocks))
        channels.append(cin)
    return nn.ModuleList(stages), channels


class StagedBackbone(nn.Module):
    """Base of every backbone here: ``stem`` then ``stages``; forward returns each stage's output."""

    stem: nn.Module
    stages: nn.ModuleList

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for s in self.stages:
            x = s(x)
            outs.append(x)
        return outs


STEMS = ("imagenet", "cifar")


def make_stem(kind: str, width: int, activation: nn.Module) -> nn.Sequential:
    """The real-valued stem of every image backbone: conv, BN, ``activation`` (and a max pool for 'imagenet')."""
    if kind == "imagenet":
        return nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), activation,
                             nn.MaxPool2d(3, 2, 1))
    if kind == "cifar":
        return nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), activation)
    raise ValueError(f"unknown stem {kind!r}: use {' or '.join(STEMS)}")


def resnet20_width(width: int) -> int:
    """First-stage channels of ResNet-20 at network width ``width`` (ResNet-18 terms): 16 at the standard 64."""
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    return max(1, width // 4)


class ResNet(StagedBackbone):
    def __init__(self, block: type, layers: list[int], last_stride: int = 1, width: int = 64,
                 stem: str = "imagenet"):
        super().__init__()
        self.stem = make_stem(stem, width, nn.ReLU(inplace=True))
        self.stages, self.stage_channels = build_stages(block, block.expansion, layers, width, last_stride)
        self.out_channels = self.stage_channels[-1]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero-init the last BN of each residual branch: every block starts as identity, which trains
        # faster from random init (there are no pretrained weights here).
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)
            elif isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)


@register_backbone("resnet18")
def resnet18(last_stride: int = 1, width: int = 64, stem: str = "imagenet") -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], last_stride, width, stem)


@register_backbone("resnet34")
def resnet34(last_stride: int = 1, width: int = 64, stem: str = "imagenet") -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3], last_stride, width, stem)


@register_backbone("resnet50")
def resnet50(last_stride: int = 1, width: int = 64, stem: str = "imagenet") -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], last_stride, width, stem)


@register_backbone("resnet20")
def resnet20(last_stride: int = 2, width: int = 64, stem: str = "cifar") -> ResNet:
    """CIFAR ResNet-20: three stages of three basic blocks (16, 32, 64 channels at the standard width)."""
    return ResNet(BasicBlock, [3, 3, 3], last_stride, resnet20_width(width), stem)
