"""bireid search: rank a gallery folder for a query image with a .bnn model and draw the ranking."""

from __future__ import annotations

import argparse

from .extract import add_image_arguments, report_bad_images

HELP = "search a gallery folder for a query image with a .bnn model"
DESCRIPTION = """Extract (or load cached) gallery features, rank the gallery (the folder and its subfolders) for
the query image and save a picture: the query, then the top-k matches (green border = same person id, red =
different, when the file names follow Market-1501's 0002_c1s1_... convention). Gallery features are cached in
the user's cache folder ($XDG_CACHE_HOME/bireid/gallery, else ~/.cache/bireid/gallery; --cache-dir to choose),
one file per gallery folder and model, so the gallery folder is only read; a rebuild extracts only images
whose path, size or modification time changed."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="exported .bnn model")
    p.add_argument("--gallery", required=True, help="folder of gallery images (subfolders included)")
    p.add_argument("--query", required=True, help="query image")
    p.add_argument("--topk", type=int, default=10, help="number of results")
    p.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine", help="distance")
    p.add_argument("--out", default="ranks.png", help="output picture (.png, .jpg, ...: the extension picks the "
                   "format)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    p.add_argument("--cache-dir", help="folder for the feature cache (default: the user's cache folder)")
    add_image_arguments(p)


def check_picture_path(out: str) -> None:
    """Fail now, before any work, when PIL cannot write a picture at ``out`` (no or an unknown extension)."""
    from pathlib import Path

    from PIL import Image

    from ..errors import UserError

    Image.init()
    ext = Path(out).suffix.lower()
    writable = sorted(e for e, fmt in Image.registered_extensions().items() if fmt in Image.SAVE)
    if not ext:
        raise UserError(f"--out {out} has no extension; give a picture file such as ranks.png")
    if ext not in writable:
        raise UserError(f"--out {out}: cannot write pictures of type '{ext}'; use .png or .jpg "
                        f"(known: {', '.join(e for e in writable if e in ('.png', '.jpg', '.jpeg', '.bmp', '.webp'))})")
    if Path(out).is_dir():
        raise UserError(f"--out {out} is a folder; give the picture file to write")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..deploy import BadImagesError, FeatureExtractor, GalleryIndex, draw_ranking
    from ..errors import UserError

    if args.topk < 1:
        raise UserError("--topk must be >= 1")
    check_picture_path(args.out)
    if not Path(args.query).is_file():
        raise UserError(f"--query {args.query}: " + ("is a folder; give one image" if Path(args.query).is_dir()
                                                     else "file not found"))
    fx = FeatureExtractor(args.model)
    q = fx(args.query)[0]  # read the query first: a bad query fails before the gallery's work
    try:
        index = GalleryIndex.build(fx, args.gallery, metric=args.metric, cache=not args.no_cache,
                                   cache_dir=args.cache_dir, bad_images=args.bad_images, progress=args.progress)
    except BadImagesError as e:
        report_bad_images(e.errors, "error")  # raises
        raise
    report_bad_images(index.skipped, args.bad_images)
    idx, dist = index.search(q, args.topk)
    results = [index.paths[i] for i in idx]
    out = draw_ranking(args.query, results, args.out, distances=[float(d) for d in dist])
    for rank, (p, d) in enumerate(zip(results, dist), 1):
        print(f"{rank:3d}  {d:.4f}  {p}")
    print(f"wrote {out}")
    return 0
