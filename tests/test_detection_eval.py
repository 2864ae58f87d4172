"""Detection metrics on hand-made cases whose values are worked out by hand (COCO AP through pycocotools, VOC AP50)."""

from __future__ import annotations

import numpy as np
import pytest

from bireid.data.detection import DetSample
from bireid.evaluation.detection import coco_ap, detection_metrics, format_detection, voc_ap50

# One image, two people; three detections ranked A (exact on person 1), B (on nothing), C (on person 2).
GT = [DetSample("x.jpg", 100, 100, np.array([[50, 50, 80, 90], [0, 0, 10, 10]], np.float32))]
A, B = [50, 50, 80, 90], [30, 0, 40, 5]
SCORES = np.array([0.9, 0.8, 0.7])


def dets(c):
    return [(np.array([A, B, c], np.float32), SCORES)]


def test_exact_matches():
    # Precision / recall after each detection: (1, 1/2), (1/2, 1/2), (2/3, 1).
    # VOC (all points): 1/2 * 1 + 1/2 * 2/3 = 5/6.
    assert voc_ap50(GT, dets([0, 0, 10, 10])) == pytest.approx(5 / 6)
    # COCO: 101 recall points; precision envelope 1 at r <= 0.50 (51 points), 2/3 above (50 points); every IoU
    # threshold alike (the matches are exact): (51 + 50 * 2/3) / 101.
    m = coco_ap(GT, dets([0, 0, 10, 10]))
    assert m["AP50"] == pytest.approx((51 + 100 / 3) / 101)
    assert m["AP"] == pytest.approx((51 + 100 / 3) / 101)


def test_a_loose_match_counts_only_at_low_iou_thresholds():
    # C covers 62.5% of person 2 (IoU 0.625): a hit at IoU 0.50, 0.55, 0.60, a false positive at the 7 others,
    # where the envelope is 1 up to recall 1/2 and 0 above: 51 / 101.
    loose = [0, 0, 10, 6.25]
    m = coco_ap(GT, dets(loose))
    hit = (51 + 100 / 3) / 101
    assert m["AP50"] == pytest.approx(hit)
    assert m["AP"] == pytest.approx((3 * hit + 7 * 51 / 101) / 10)
    assert voc_ap50(GT, dets(loose)) == pytest.approx(5 / 6)


def test_ignored_boxes_are_neither_missed_nor_false_positives():
    gt = [DetSample("x.jpg", 100, 100, GT[0].boxes, np.array([False, True]))]
    # Person 2 is ignored: one positive; A hits it, B is a false positive, C (on person 2) is neither.
    # VOC: precision 1 at recall 1 (A first) -> AP 1.
    assert voc_ap50(gt, dets([0, 0, 10, 10])) == pytest.approx(1.0)
    assert coco_ap(gt, dets([0, 0, 10, 10]))["AP50"] == pytest.approx(1.0)


def test_no_detections_and_percent_report():
    assert coco_ap(GT, [(np.zeros((0, 4)), np.zeros(0))]) == {"AP": 0.0, "AP50": 0.0}
    assert voc_ap50(GT, [(np.zeros((0, 4)), np.zeros(0))]) == 0.0
    m = detection_metrics(GT, dets([0, 0, 10, 10]))
    assert m["voc_AP50"] == pytest.approx(5 / 6) and m["num_images"] == 1
    assert "VOC AP50 83.33%" in format_detection(m)
