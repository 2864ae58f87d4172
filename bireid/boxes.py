"""CenterNet box coding (NumPy only, so the torch-free deployed detector shares it): the dense training targets
of a set of boxes, the decoding of a head map back to scored boxes, and IoU / non-maximum suppression.

Head layout (channels of the map at output stride ``R``, Zhou et al., *Objects as Points*, 2019):
``0``: the person-centre heatmap logit; ``1, 2``: box width and height in output cells; ``3, 4``: the sub-cell
offset of the centre (x, y). A box with centre ``c`` (input pixels) is encoded at the cell ``p = floor(c / R)``:
size ``(w / R, h / R)``, offset ``c / R - p``, and a Gaussian peak of 1 at ``p`` on the heatmap (radius from the
box size so that a box displaced within it keeps IoU >= 0.7, CenterNet's rule). Targets have one more channel,
``5``: 1 where size and offset are supervised (box centres), 0 elsewhere.

Decoding: sigmoid of the heatmap, local maxima (a 3x3 max filter: CenterNet's NMS), the ``top_k`` best above
``score_thresh``, then boxes from size and offset; ``nms_iou`` optionally adds greedy IoU suppression.
"""

from __future__ import annotations

import numpy as np

HEAD_CHANNELS = 5
TARGET_CHANNELS = 6
MIN_OVERLAP = 0.7
DEPLOY_SCORE = 0.3  # the deployed detector's defaults (bireid detect): lowest score kept, NMS IoU
DEPLOY_NMS_IOU = 0.6


def gaussian_radius(h: float, w: float, min_overlap: float = MIN_OVERLAP) -> float:
    """CenterNet's Gaussian radius (in cells) of an ``h`` x ``w`` box: the smallest of the three corner-shift
    cases that keep IoU >= ``min_overlap`` (the quadratic roots of CornerNet, as in the reference code)."""
    a1, b1 = 1.0, h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2 = 4.0, 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + np.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + np.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return float(min(r1, r2, r3))


def encode(boxes: np.ndarray, out_h: int, out_w: int, stride: int) -> np.ndarray:
    """Dense targets float32 (6, out_h, out_w) of ``boxes`` (n, 4) xyxy in input pixels (see the module
    docstring). Boxes with no area, or with a centre outside the map, are left out."""
    t = np.zeros((TARGET_CHANNELS, out_h, out_w), np.float32)
    ys, xs = np.arange(out_h, dtype=np.float32)[:, None], np.arange(out_w, dtype=np.float32)[None, :]
    b = np.asarray(boxes, np.float32).reshape(-1, 4) / stride
    # Larger boxes first: where two centres share a cell, the smaller one (written last) keeps it.
    order = np.argsort(-(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), kind="stable")
    for x1, y1, x2, y2 in b[order]:
        w, h = x2 - x1, y2 - y1
        if w <= 0 or h <= 0:
            continue
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        px, py = int(np.floor(cx)), int(np.floor(cy))
        if not (0 <= px < out_w and 0 <= py < out_h):
            continue
        r = max(0, int(gaussian_radius(float(np.ceil(h)), float(np.ceil(w)))))
        sigma = (2 * r + 1) / 6
        g = np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * sigma * sigma))
        g[np.abs(xs - px).repeat(out_h, 0) > r] = 0  # CenterNet draws the Gaussian inside the (2r+1)^2 window
        g[np.abs(ys - py).repeat(out_w, 1) > r] = 0
        np.maximum(t[0], g, out=t[0])
        t[0, py, px] = 1.0
        t[1:, py, px] = (w, h, cx - px, cy - py, 1.0)
    return t


def _max3x3(a: np.ndarray) -> np.ndarray:
    """3x3 max filter with -inf padding (the max pool of CenterNet's peak extraction)."""
    p = np.pad(a, 1, constant_values=-np.inf)
    h, w = a.shape
    return np.max([p[i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)


def decode(head: np.ndarray, stride: int, top_k: int = 100, score_thresh: float = 0.05,
           nms_iou: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(boxes float32 (n, 4) xyxy in input pixels, scores (n,)) of one image's head map (5, H, W), best first."""
    head = np.asarray(head, np.float32)
    if head.ndim != 3 or head.shape[0] != HEAD_CHANNELS:
        raise ValueError(f"expected a ({HEAD_CHANNELS}, H, W) head map, got {head.shape}")
    heat = 1.0 / (1.0 + np.exp(-head[0].astype(np.float64)))
    peaks = (heat == _max3x3(heat)) & (heat >= score_thresh)
    py, px = np.nonzero(peaks)
    scores = heat[py, px]
    order = np.lexsort((px, py, -scores))[:top_k]  # ties broken by position: the same order everywhere
    py, px, scores = py[order], px[order], scores[order]
    w, h = np.maximum(head[1, py, px], 0), np.maximum(head[2, py, px], 0)  # an untrained head can go negative
    cx, cy = px + head[3, py, px], py + head[4, py, px]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32) * stride
    scores = scores.astype(np.float32)
    if nms_iou is not None and len(boxes):
        keep = nms(boxes, scores, nms_iou)
        boxes, scores = boxes[keep], scores[keep]
    return boxes.reshape(-1, 4), scores


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU (len(a), len(b)) of xyxy boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thresh: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    ious = iou(boxes, boxes)
    keep: list[int] = []
    alive = np.ones(len(order), bool)
    for k, i in enumerate(order):
        if not alive[k]:
            continue
        keep.append(int(i))
        alive[k + 1:] &= ious[i, order[k + 1:]] <= iou_thresh
    return np.asarray(keep, np.int64)
