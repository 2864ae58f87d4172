"""Engine features vs PyTorch at full size (256x128, 32 real crops): how often a binary activation lands within
rounding distance of its threshold and flips, compared with PyTorch float32 against float64 of the same model.

Usage: .venv/bin/python benchmarks/exactness_fullsize.py [--images DIR] [--n 32]

Uses Market-1501 query crops from ../shared/data when present (else the synthetic generator's images). The model
is randomly initialised with non-trivial BatchNorm statistics (a trained model behaves alike: what matters is how
many pre-activations sit near a threshold). Prints, per layout, the largest error relative to the largest
feature, the per-image median, and how many images exceed 1e-4.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from bireid.deploy.export import export_bnn
from bireid.modeling.backbones.binary_resnet import binary_resnet18
from bireid.modeling.reid_model import ReIDModel
from bireid.runtime import BNNModel

MARKET = Path(__file__).resolve().parents[2] / "shared/data/reid/market1501-mini/query"


def _randomize(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BN statistics, binarizer thresholds, shifts and PReLU slopes (as the export tests do)."""
    g = torch.Generator().manual_seed(seed)

    def u(t: torch.Tensor, lo: float, hi: float) -> None:
        t.data.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)

    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            for t, lo, hi in ((m.running_mean, -0.5, 0.5), (m.running_var, 0.5, 2.0), (m.weight, 0.5, 1.5),
                              (m.bias, -0.3, 0.3)):
                u(t, lo, hi)
        for name in ("threshold", "shift_in", "shift_out"):
            if isinstance(getattr(m, name, None), nn.Parameter):
                u(getattr(m, name), -0.2, 0.2)
        if isinstance(m, nn.PReLU):
            u(m.weight, 0.05, 0.5)
    return model


def _images(folder: Path | None, n: int, tmp: Path) -> np.ndarray:
    if folder is None or not folder.is_dir():
        from bireid.data.synth import generate_synthetic
        generate_synthetic(tmp / "synth", num_train_ids=4, num_test_ids=8)
        folder = tmp / "synth" / "query"
    files = sorted(folder.glob("*.jpg"))[:n]
    if not files:
        raise SystemExit(f"no .jpg images in {folder}")
    print(f"{len(files)} images from {folder}")
    x = np.stack([np.asarray(Image.open(f).convert("RGB").resize((128, 256)), np.float32) / 255 for f in files])
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    return np.ascontiguousarray(((x - mean) / std).transpose(0, 3, 1, 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, default=MARKET)
    ap.add_argument("--n", type=int, default=32)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    x = _images(args.images, args.n, tmp)
    for layout in ("binary", "real"):
        torch.manual_seed(0)
        model = _randomize(ReIDModel(binary_resnet18(width=64, downsample=layout), num_classes=751), 1).eval()
        export_bnn(model, tmp / "m.bnn", input_size=(256, 128))
        got = BNNModel.load(tmp / "m.bnn").forward(x)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
            ref64 = model.double()(torch.from_numpy(x).double()).numpy()
        rel = np.abs(got - ref).max(1) / np.abs(ref).max(1)
        print(f"{layout} downsample: engine vs torch fp32 {np.abs(got - ref).max() / np.abs(ref).max():.1e} "
              f"(per image: median {np.median(rel):.1e}, {int((rel > 1e-4).sum())} of {len(rel)} above 1e-4); "
              f"torch fp32 vs fp64 {np.abs(ref - ref64).max() / np.abs(ref64).max():.1e}")


if __name__ == "__main__":
    main()
