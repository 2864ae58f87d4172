"""Writes the inputs of the whole-model check that make test-arm runs under qemu-aarch64: small exported binary
ResNet-18s (binary and real shortcut downsamples, non-trivial BN statistics), a batch of images and the features the
x86 engine computes for them.

Usage: python tests/arm/make_models.py OUT_DIR. For each model NAME it writes NAME.bnn, NAME.input.f32 (the images,
N x C x H x W float32 little-endian, the shape is the model's) and NAME.features.f32 (N x D float32)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from bireid.deploy.export import export_bnn
from bireid.modeling.backbones.binary_resnet import binary_resnet18
from bireid.modeling.reid_model import ReIDModel
from bireid.runtime import BNNModel, get_isa


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for downsample in ("binary", "real"):
        torch.manual_seed(3)
        model = ReIDModel(binary_resnet18(width=16, downsample=downsample), num_classes=10).eval()
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics: the epilogues are not identities
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
        name = f"resnet18w16_{downsample}"
        export_bnn(model, out / f"{name}.bnn", input_size=(64, 32))
        rt = BNNModel.load(out / f"{name}.bnn")
        x = np.random.default_rng(46).standard_normal((3, 3, 64, 32)).astype(np.float32)
        feats = rt.forward(x)
        x.astype("<f4").tofile(out / f"{name}.input.f32")
        feats.astype("<f4").tofile(out / f"{name}.features.f32")
        ops = sorted({s[0] for s in rt._steps})
        print(f"{name}: features {feats.shape} on the x86 engine ({get_isa()}); fused ops {ops}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
