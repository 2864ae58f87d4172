"""bireid extract: features of a folder of images with a .bnn model (torch-free)."""

from __future__ import annotations

import argparse

HELP = "extract features of a folder of images with a .bnn model"
DESCRIPTION = """Compute re-ID features of every image in a folder with an exported .bnn model and save them
as a (N, D) float32 .npy file, plus a .txt file listing the image paths in row order."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="exported .bnn model")
    p.add_argument("--images", required=True, help="folder of images (.jpg/.png/...)")
    p.add_argument("--out", required=True, help="output .npy file")
    p.add_argument("--batch-size", type=int, default=32, help="images per engine call")
    p.add_argument("--threads", type=int, help="engine threads (default: OMP_NUM_THREADS or all cores)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from ..deploy import FeatureExtractor, ImageError, list_images
    from ..errors import UserError

    paths = list_images(args.images)
    if not paths:
        raise UserError(f"no images found in {args.images}")
    if args.batch_size < 1:
        raise UserError("--batch-size must be >= 1")
    fx = FeatureExtractor(args.model, batch_size=args.batch_size, num_threads=args.threads)
    try:
        feats = fx.extract(paths)
    except ImageError as e:
        raise UserError(str(e)) from None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, feats)
    out.with_suffix(".txt").write_text("".join(f"{p}\n" for p in paths))
    print(f"wrote {out}: {feats.shape[0]} x {feats.shape[1]} features (paths in {out.with_suffix('.txt')})")
    return 0
