"""bireid export: a trained checkpoint -> a torch-free ``.bnn`` model (and optionally ONNX)."""

from __future__ import annotations

import argparse

HELP = "export a checkpoint to the bit-packed .bnn runtime format (and ONNX)"
DESCRIPTION = """Export a trained model for deployment: the .bnn file runs with numpy and the compiled
XNOR-popcount engine only (bireid.runtime); BatchNorm and the binary scales are folded. The input size and
normalization are taken from the checkpoint's config and stored in the file. --verify compares the
engine's features with PyTorch's on random inputs."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="model checkpoint (.safetensors) of a training run")
    p.add_argument("--out", required=True, help="output .bnn file")
    p.add_argument("--onnx", help="also write an ONNX file (float simulation of the binary layers)")
    p.add_argument("--verify", action="store_true", help="check the exported model against PyTorch")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np
    import torch

    from ..deploy.export import ExportError, export_bnn
    from ..errors import UserError
    from ..factory import load_model
    from ..tasks import get_task

    out = Path(args.out)
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give the .bnn file to write")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise UserError(f"--out {out}: {parent} is a file, not a folder")
    model, cfg = load_model(args.checkpoint, "cpu")
    task = get_task(cfg.task.name)
    channels, *hw = task.input_shape(cfg)  # a point cloud of P points is a (3, P, 1) input
    size = (int(hw[0]), int(hw[1]))
    mean, std = task.input_norm
    try:
        path = export_bnn(model, args.out, input_size=size, mean=tuple(mean), std=tuple(std),
                          name=f"{cfg.model.arch}-{cfg.model.method}",
                          extra={"checkpoint": str(args.checkpoint), "task": task.name})
    except ExportError as e:
        raise UserError(f"cannot export {args.checkpoint}: {e}") from None
    except OSError as e:
        # e.g. a full disk: the atomic writer left any previous file at --out untouched.
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    from ..runtime import BNNModel

    rt = BNNModel.load(path)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): input {size[0]}x{size[1]}, "
          f"{rt.meta['binary_convs']} binary convs, {rt.feat_dim}-d output")
    if args.verify:
        x = torch.randn(4, channels, *size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            ref = model(x).numpy()
        got = rt.forward(x.numpy())
        err = float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-12))
        print(f"verify: max relative difference to PyTorch {err:.2e}")
        if err > 1e-3:
            raise UserError(f"exported model differs from PyTorch (relative error {err:.2e})")
    if args.onnx:
        from ..deploy.onnx_export import export_onnx

        print(f"wrote {export_onnx(model, args.onnx, size)}")
    return 0
