"""bireid detect: find people in a folder of images with a .bnn detector; optionally rank each detected person
against a gallery with a .bnn re-ID model (detect, crop, embed, search: the whole 1-bit edge pipeline)."""

from __future__ import annotations

import argparse

import numpy as np

from ..boxes import DEPLOY_NMS_IOU, DEPLOY_SCORE

HELP = "detect people in images with a .bnn detector (and search a gallery for each with --reid)"
DESCRIPTION = """Runs the exported detector (bireid export of a --task detection model) on every image of
--images (subfolders included) and writes to --out: detections.json (per image: boxes [x1, y1, x2, y2] in the
image's pixels and scores) and one picture per image with the boxes drawn. With --reid MODEL --gallery DIR each
detected person is cropped, embedded by the re-ID model and ranked against the gallery; the top matches go into
detections.json and the picture labels show the best match."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="exported .bnn detector")
    p.add_argument("--images", required=True, help="folder of images (subfolders included)")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--score", type=float, default=DEPLOY_SCORE, help="lowest detection score kept")
    p.add_argument("--nms-iou", type=float, default=DEPLOY_NMS_IOU, help="IoU above which a lower-scoring box is "
                   "suppressed (1 = only the heatmap's local maxima)")
    p.add_argument("--reid", help="exported .bnn re-ID model: rank each detected person against --gallery")
    p.add_argument("--gallery", help="gallery folder for --reid")
    p.add_argument("--topk", type=int, default=5, help="gallery matches kept per person (with --reid)")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..deploy.detector import EngineDetector, draw_detections
    from ..errors import UserError
    from ..images import ImageError, list_images, load_image

    if not 0.0 <= args.score <= 1.0:
        raise UserError(f"--score must lie in [0, 1], got {args.score}")
    if not 0.0 < args.nms_iou <= 1.0:
        raise UserError(f"--nms-iou must lie in (0, 1], got {args.nms_iou}")
    if (args.reid is None) != (args.gallery is None):
        raise UserError("--reid and --gallery go together")
    if args.topk < 1:
        raise UserError("--topk must be >= 1")
    src = Path(args.images)
    if not src.is_dir():
        raise UserError(f"--images {src}: " + ("is a file; give a folder" if src.exists() else "folder not found"))
    files = list_images(src, recursive=True)
    if not files:
        raise UserError(f"--images {src}: no images found")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder")
    det = EngineDetector(args.model, args.score, nms_iou=None if args.nms_iou >= 1 else args.nms_iou)
    index = fx = None
    if args.reid:
        from ..deploy import FeatureExtractor, GalleryIndex

        fx = FeatureExtractor(args.reid)
        index = GalleryIndex.build(fx, args.gallery, progress=False)
    out.mkdir(parents=True, exist_ok=True)
    report, total = {}, 0
    for f in files:
        rel = f.relative_to(src).as_posix()
        try:
            img = load_image(f)
        except ImageError as e:
            print(f"skipped {f}: {e.reason}")
            continue
        boxes, scores = det.detect(img)
        people = [{"box": [round(float(v), 2) for v in b], "score": round(float(s), 4)}
                  for b, s in zip(boxes.tolist(), scores.tolist())]
        labels = None
        if index is not None and people:
            crops = [img.crop(_pixels(p["box"], img.size)) for p in people]
            feats = fx(crops)
            labels = []
            for p, q in zip(people, feats):
                idx, dist = index.search(q, args.topk)
                p["matches"] = [{"path": str(index.paths[i]), "distance": round(float(d), 4)}
                                for i, d in zip(idx, dist)]
                labels.append(f"{p['score']:.2f} {Path(p['matches'][0]['path']).name}" if p["matches"] else "")
        pic = out / (rel.replace("/", "__").rsplit(".", 1)[0] + ".png")
        draw_detections(img, boxes, scores, pic, labels)
        report[rel] = people
        total += len(people)
    (out / "detections.json").write_text(json.dumps(report, indent=1))
    print(f"{total} people in {len(report)} images; wrote {out / 'detections.json'} and the pictures")
    return 0


def _pixels(box: list[float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The whole pixels a box covers, at least one, inside the image."""
    x1, y1 = min(int(box[0]), size[0] - 1), min(int(box[1]), size[1] - 1)
    return x1, y1, max(x1 + 1, min(int(np.ceil(box[2])), size[0])), max(y1 + 1, min(int(np.ceil(box[3])), size[1]))
