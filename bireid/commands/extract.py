"""bireid extract: features of a folder of images with a .bnn model (torch-free)."""

from __future__ import annotations

import argparse

HELP = "extract features of a folder of images with a .bnn model"
DESCRIPTION = """Compute re-ID features of every image in a folder and its subfolders (e.g. MARS's
bbox_test/<pid>/...; sorted by path) with an exported .bnn model and save them as a (N, D) float32 .npy file
at exactly --out, plus a text file (--out with the suffix .txt) listing the image paths in row order.
Unreadable images stop the command after every image was read, naming all of them (--bad-images error), or
are left out of both files with a warning (--bad-images skip)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="exported .bnn model")
    p.add_argument("--images", required=True, help="folder of images (.jpg/.png/...; subfolders included)")
    p.add_argument("--out", required=True, help="output .npy file (written at exactly this path)")
    p.add_argument("--batch-size", type=int, default=32, help="images per engine call")
    p.add_argument("--threads", type=int, help="engine threads (default: OMP_NUM_THREADS or all cores)")
    add_image_arguments(p)


def add_image_arguments(p: argparse.ArgumentParser) -> None:
    """The options extract and search share: the bad-image policy and the progress bar."""
    p.add_argument("--bad-images", choices=("error", "skip"), default="error",
                   help="unreadable images: stop after reading all of them, naming each (error), or leave them "
                        "out with a warning (skip) (default: error)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="show a progress bar on a terminal (default: on)")


def report_bad_images(bad: list, policy: str) -> None:
    """Print every unreadable image on stderr (one line each); with policy 'error', then fail."""
    import sys

    from ..errors import UserError

    for e in bad:
        print(f"bad image {e.path}: {e.reason}", file=sys.stderr)
    if bad and policy == "error":
        raise UserError(f"{len(bad)} image(s) cannot be read (listed above); fix or remove them, or pass "
                        "--bad-images skip to leave them out")
    if bad:
        print(f"skipped {len(bad)} unreadable image(s) (--bad-images skip)", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from ..deploy import BadImagesError, FeatureExtractor, list_images
    from ..errors import UserError
    from ..fileio import atomic_write

    out = Path(args.out)
    listing = out.with_suffix(".txt")
    if listing == out:
        raise UserError(f"--out {out}: the path list would overwrite the features; give a .npy file")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give the .npy file to write")
    if args.batch_size < 1:
        raise UserError("--batch-size must be >= 1")
    paths = list_images(args.images, recursive=True)
    if not paths:
        raise UserError(f"no images found in {args.images} (or its subfolders)")
    fx = FeatureExtractor(args.model, batch_size=args.batch_size, num_threads=args.threads)
    try:
        feats, kept, bad = fx.extract_files(paths, args.bad_images, progress=args.progress)
    except BadImagesError as e:
        report_bad_images(e.errors, "error")  # raises
        raise
    report_bad_images(bad, args.bad_images)

    def save(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save adds no ".npy" to the name
            np.save(f, feats)

    atomic_write(out, save)
    atomic_write(listing, lambda tmp: Path(tmp).write_text("".join(f"{p}\n" for p in kept)))
    print(f"wrote {out}: {feats.shape[0]} x {feats.shape[1]} features (paths in {listing})")
    return 0
