"""Detection metrics: COCO AP (IoU 0.50:0.95) and AP50 through ``pycocotools`` (the reference implementation),
and Pascal VOC AP50 (all-point interpolated average precision, VOC2010+; ``difficult`` boxes neither missed nor
false positives).

Ground truth is a list of :class:`~bireid.data.detection.DetSample` (boxes in image pixels, ``ignore`` flags);
detections are one (boxes (n, 4) xyxy, scores (n,)) pair per image, in the same order. For COCO the ignored boxes
go in as ``iscrowd`` (pycocotools' ignore regions); for VOC as ``difficult``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..boxes import iou

Detections = Sequence[tuple[np.ndarray, np.ndarray]]


def coco_ap(gts: Sequence[Any], dets: Detections) -> dict[str, float]:
    """{"AP": AP@[.5:.95], "AP50": AP@.5} of ``dets`` against ``gts`` by pycocotools' COCOeval (one category)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(gts) != len(dets):
        raise ValueError(f"{len(gts)} images but {len(dets)} detection lists")
    images, anns, res = [], [], []
    for i, (g, (boxes, scores)) in enumerate(zip(gts, dets), 1):
        images.append({"id": i, "width": int(g.width), "height": int(g.height)})
        for b, ig in zip(np.asarray(g.boxes, float).tolist(), np.asarray(g.ignore).tolist()):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "bbox": [b[0], b[1], w, h],
                         "area": w * h, "iscrowd": int(ig)})
        for b, s in zip(np.asarray(boxes, float).reshape(-1, 4).tolist(), np.asarray(scores, float).tolist()):
            res.append({"image_id": i, "category_id": 1, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                        "score": s})
    if not res or not any(not a["iscrowd"] for a in anns):
        return {"AP": 0.0, "AP50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its progress and table
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(res), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"AP": max(float(ev.stats[0]), 0.0), "AP50": max(float(ev.stats[1]), 0.0)}


def voc_ap50(gts: Sequence[Any], dets: Detections, iou_thresh: float = 0.5) -> float:
    """Pascal VOC average precision at IoU ``iou_thresh``: detections of all images ranked by score, each matched
    greedily to the best-overlapping unmatched box of its image; matching a difficult box counts as neither; AP
    is the area under the precision envelope (all points)."""
    recs = []
    npos = 0
    for g, (boxes, scores) in zip(gts, dets):
        npos += int((~np.asarray(g.ignore, bool)).sum())
        for j, s in enumerate(np.asarray(scores).tolist()):
            recs.append((s, len(recs), g, np.asarray(boxes)[j]))
    if npos == 0:
        return 0.0
    recs.sort(key=lambda r: (-r[0], r[1]))
    used: dict[int, np.ndarray] = {}
    tp, fp = [], []
    for _, _, g, box in recs:
        key = id(g)
        taken = used.setdefault(key, np.zeros(len(g.boxes), bool))
        ov = iou(box[None], g.boxes)[0] if len(g.boxes) else np.zeros(0)
        j = int(ov.argmax()) if len(ov) else -1
        if j >= 0 and ov[j] >= iou_thresh:
            if g.ignore[j]:
                continue  # a difficult box: neither
            if not taken[j]:
                taken[j] = True
                tp.append(1), fp.append(0)
                continue
        tp.append(0), fp.append(1)
    if not tp:
        return 0.0
    ctp, cfp = np.cumsum(tp), np.cumsum(fp)
    rec = ctp / npos
    prec = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def detection_metrics(gts: Sequence[Any], dets: Detections) -> dict[str, float]:
    """COCO AP and AP50 (pycocotools) and VOC AP50, as fractions (as the other tasks' metrics)."""
    return {**coco_ap(gts, dets), "voc_AP50": voc_ap50(gts, dets), "num_images": len(gts)}


def format_detection(m: Mapping[str, Any]) -> str:
    if "AP" not in m:
        return "no test images"
    return (f"AP {100 * m['AP']:.2f}% | AP50 {100 * m['AP50']:.2f}% | VOC AP50 {100 * m['voc_AP50']:.2f}% "
            f"({m.get('num_images', 0)} images)")
