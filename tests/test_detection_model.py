"""The detector: CenterNet target coding (a hand-worked case and the encode -> decode round trip), the real and
1-bit models (which convs are binary), training steps lowering the loss, and the trainer end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from detection_fixtures import tiny_det_config

from bireid.boxes import decode, encode, gaussian_radius, iou, nms
from bireid.distributed import DistInfo
from bireid.engine.setup import build_parts
from bireid.engine.step import train_step
from bireid.engine.trainer import train
from bireid.factory import create_model
from bireid.modeling.detection_loss import centernet_loss_terms
from bireid.nn import is_binary_conv
from bireid.tasks import get_task


def test_encode_hand_worked_box():
    # centre (16, 24) px -> (4, 6) cells at stride 4; size 16 x 32 px -> 4 x 8 cells; no sub-cell offset
    t = encode(np.array([[8, 8, 24, 40]]), 16, 16, 4)
    np.testing.assert_allclose(t[1:, 6, 4], [4, 8, 0, 0, 1])
    assert t[0, 6, 4] == 1 and t[0].max() == 1 and t[5].sum() == 1
    r = int(gaussian_radius(8, 4))
    assert r == 1  # the smallest quadratic root for a 4 x 8 cell box at IoU 0.7 is 1.5
    sigma = (2 * r + 1) / 6
    np.testing.assert_allclose(t[0, 6, 5], np.exp(-1 / (2 * sigma ** 2)), rtol=1e-6)
    assert t[0, 6, 6] == 0  # outside the (2r+1)^2 window


def test_encode_decode_round_trip():
    rng = np.random.default_rng(0)
    boxes = []
    for cy in (20, 60, 100):
        for cx in (14, 50, 90):
            w, h = rng.uniform(8, 20), rng.uniform(16, 36)
            cx2, cy2 = cx + rng.uniform(0, 3.9), cy + rng.uniform(0, 3.9)
            boxes.append([cx2 - w / 2, cy2 - h / 2, cx2 + w / 2, cy2 + h / 2])
    boxes = np.asarray(boxes, np.float32)
    t = encode(boxes, 32, 32, 4)
    head = np.concatenate([np.log(np.clip(t[:1], 1e-6, 1 - 1e-6) / (1 - np.clip(t[:1], 1e-6, 1 - 1e-6))), t[1:5]])
    out, scores = decode(head, 4, top_k=100, score_thresh=0.5)
    assert len(out) == len(boxes) and (scores > 0.99).all()
    match = iou(out, boxes).max(1)
    np.testing.assert_allclose(match, 1.0, atol=1e-5)


def test_nms_keeps_the_best_of_overlapping_boxes():
    b = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], np.float32)
    assert nms(b, np.array([0.5, 0.9, 0.4]), 0.5).tolist() == [1, 2]


@pytest.mark.parametrize("method", ["real", "bireid"])
def test_detector_shapes_and_binary_layout(method):
    m = create_model("resnet18-det", 1, method, task="detection", width=8, last_stride=2)
    x = torch.randn(2, 3, 64, 96)
    out = m(x)
    assert out["head"].shape == (2, 5, 16, 24) and [s.shape[1] for s in out["stages"]] == [8, 16, 32, 64]
    m.eval()
    assert m(x).shape == (2, 5, 16, 24)
    binary = [n for n, c in m.named_modules() if is_binary_conv(c)]
    real = [n for n, c in m.named_modules() if isinstance(c, torch.nn.Conv2d) and not is_binary_conv(c)]
    if method == "real":
        assert not binary
    else:
        assert {n for n in binary if "neck" in n} == {"backbone.neck.convs.0", "backbone.neck.convs.1",
                                                         "backbone.neck.convs.2"}
        # real: the stem, the head, and Bi-Real's real 1x1 downsamples
        assert {n for n in real if "downsample" not in n} == {"backbone.body.stem.0", "head.0", "head.2"}


def test_detection_refuses_a_classification_backbone():
    from bireid.config import ConfigError

    with pytest.raises(ConfigError, match="detection architecture"):
        get_task("detection").check_arch("resnet18")


def test_one_training_step_lowers_the_loss(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_det_config(tmp_path / "scenes", tmp_path / "out", **{"model.method": "bireid"})
    train_ds, _ = get_task("detection").build_datasets(cfg)
    parts = build_parts(cfg, train_ds, torch.device("cpu"), DistInfo())
    assert [type(a).__name__ for a in parts.aux_losses] == ["KernelRefinement", "FeatureRefinement"]
    images, targets, *_ = next(iter(parts.loader))
    assert targets.shape == (4, 6, 16, 16) and targets[:, 5].sum() > 0
    parts.model.train()

    def loss() -> float:
        with torch.no_grad():
            return float(sum(centernet_loss_terms(parts.model(images), targets).values()))

    before = loss()
    logs = [train_step(parts, images, targets, cfg, 0, 0)]  # one step, as the issue asks
    assert {"det_heatmap", "det_size", "det_offset", "kr_mse", "fr_mse"} <= set(logs[0]) and "acc" not in logs[0]
    after = loss()
    assert after < before, (before, after)


def test_trainer_end_to_end(tmp_path):
    res = train(tiny_det_config(tmp_path / "scenes", tmp_path / "out", **{"model.method": "bireal"}))
    for key in ("AP", "AP50", "voc_AP50"):
        assert 0 <= res[key] <= 1
    assert res["num_images"] == 4
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["AP50"] == res["AP50"]
    assert (tmp_path / "out" / "curves.png").exists() and (tmp_path / "out" / "model.safetensors").exists()
