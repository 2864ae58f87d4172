"""bireid search: rank a gallery folder for a query image with a .bnn model and draw the ranking."""

from __future__ import annotations

import argparse

HELP = "search a gallery folder for a query image with a .bnn model"
DESCRIPTION = """Extract (or load cached) gallery features, rank the gallery for the query image and save a
picture: the query, then the top-k matches (green border = same person id, red = different, when the file
names follow Market-1501's 0002_c1s1_... convention). Gallery features are cached in
<gallery>/.bireid_cache, keyed by the model file and every image's path, size and mtime."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="exported .bnn model")
    p.add_argument("--gallery", required=True, help="folder of gallery images")
    p.add_argument("--query", required=True, help="query image")
    p.add_argument("--topk", type=int, default=10, help="number of results")
    p.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine", help="distance")
    p.add_argument("--out", default="ranks.png", help="output picture")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")


def run(args: argparse.Namespace) -> int:
    from ..deploy import FeatureExtractor, GalleryIndex, ImageError, draw_ranking
    from ..errors import UserError

    if args.topk < 1:
        raise UserError("--topk must be >= 1")
    fx = FeatureExtractor(args.model)
    try:
        if args.no_cache:
            from ..deploy import list_images

            index = GalleryIndex.build(fx, list_images(args.gallery), metric=args.metric)
        else:
            index = GalleryIndex.build(fx, args.gallery, metric=args.metric)
        q = fx(args.query)
        idx, dist = index.search(q, args.topk)
        results = [index.paths[i] for i in idx[0]]
        out = draw_ranking(args.query, results, args.out, distances=[float(d) for d in dist[0]])
    except ImageError as e:
        raise UserError(str(e)) from None
    for rank, (p, d) in enumerate(zip(results, dist[0]), 1):
        print(f"{rank:3d}  {d:.4f}  {p}")
    print(f"wrote {out}")
    return 0
