"""Person detection: the one-stage CenterNet-style detector (``bireid.modeling.detector``) on a real or 1-bit
ResNet-18, trained on person boxes (the synthetic pedestrian scenes by default, or Pascal VOC / COCO folders) with
CenterNet's focal + L1 objective; COCO AP / AP50 (pycocotools) and VOC AP50 on the test split."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..boxes import DEPLOY_NMS_IOU, DEPLOY_SCORE, decode
from ..config import ConfigError
from ..data import build_datasets
from ..data.detection import DETECTION_DATASETS, DetectionData
from ..data.detection.loader import build_detection_test_loader, build_detection_train_loader
from ..distributed import DistInfo
from ..evaluation.detection import detection_metrics, format_detection
from ..images import IMAGENET_MEAN, IMAGENET_STD, load_image, preprocess
from ..modeling.detection_loss import centernet_loss_terms
from ..modeling.detector import OUTPUT_STRIDE, build_detector
from .base import Task, register_task

TOP_K = 100  # detections kept per image for AP (COCO's maxDets)
EVAL_SCORE = 0.01  # AP needs the low-scoring tail too


def _size(cfg: Any) -> tuple[int, int]:
    h, w = cfg.data.height, cfg.data.width
    if h % 32 or w % 32:
        raise ConfigError(f"detection: data.height and data.width must be multiples of 32, got {h} x {w}")
    return h, w


def image_transform(cfg: Any, train: bool):
    size = _size(cfg)
    return lambda img: torch.from_numpy(preprocess(img, size, IMAGENET_MEAN, IMAGENET_STD))


def _train_loader(cfg: Any, train_ds: DetectionData, rank: int, world_size: int, seed: int):
    d = cfg.data
    h, w = _size(cfg)
    if not train_ds.train:
        raise ConfigError(f"data set '{train_ds.name}' has no training images")
    return build_detection_train_loader(train_ds.train, h, w, OUTPUT_STRIDE, d.batch_size, d.flip_prob, d.workers,
                                        d.bad_images, seed, rank, world_size)


def detect_batch(head: np.ndarray, sizes: list[tuple[int, int]], input_size: tuple[int, int],
                 score_thresh: float = EVAL_SCORE, top_k: int = TOP_K) -> list[tuple[np.ndarray, np.ndarray]]:
    """Boxes (in each image's own pixels, ``sizes`` = (width, height)) and scores from a batch of head maps."""
    h, w = input_size
    out = []
    for m, (iw, ih) in zip(head, sizes):
        boxes, scores = decode(m, OUTPUT_STRIDE, top_k, score_thresh)
        out.append((boxes * np.asarray([iw / w, ih / h] * 2, np.float32), scores))
    return out


def detections_agree(ref: np.ndarray, got: np.ndarray, rtol: float = 1e-3) -> tuple[np.ndarray, str]:
    """Per image of two batches of head maps (N, 5, H, W), e.g. PyTorch's and the engine's: whether the deployed
    detector finds the same people (``bireid detect``'s decoding: the same number of boxes after NMS, each within
    ``rtol`` relative, plus ``rtol`` of the input's size for boxes at the image's edge); and that rule in words."""
    same, boxes = [], 0
    for r, g in zip(ref, got):
        (rb, _), (gb, _) = (decode(m, OUTPUT_STRIDE, TOP_K, DEPLOY_SCORE, DEPLOY_NMS_IOU) for m in (r, g))
        atol = rtol * OUTPUT_STRIDE * max(r.shape[1:])
        same.append(len(rb) == len(gb) and bool(np.allclose(gb, rb, rtol=rtol, atol=atol)))
        boxes += len(rb)
    return np.asarray(same, bool), (f"the same detections (score >= {DEPLOY_SCORE}, NMS at IoU {DEPLOY_NMS_IOU}: "
                                    f"the same count, boxes within {rtol:g} relative; {boxes} boxes from PyTorch)")


def evaluate(model: nn.Module, cfg: Any, eval_ds: DetectionData, device: torch.device, dist_info: DistInfo,
             mean: Any = None, std: Any = None) -> dict:
    """AP / AP50 / VOC AP50 of ``model`` on ``eval_ds.test``; under DDP each rank detects a shard, gathered."""
    for given, own, what in ((mean, IMAGENET_MEAN, "mean"), (std, IMAGENET_STD, "std")):
        if given is not None and not all(abs(float(a) - b) <= 1e-6 for a, b in zip(given, own, strict=True)):
            raise ValueError(f"input {what} {tuple(given)} differs from this task's {tuple(own)}")
    samples = eval_ds.test
    if not samples:
        return {}
    d = cfg.data
    size = _size(cfg)
    loader = build_detection_test_loader(samples, *size, OUTPUT_STRIDE, d.test_batch_size, d.workers, d.bad_images,
                                         dist_info.rank, dist_info.world_size)
    t0 = time.perf_counter()
    was = model.training
    model.eval()
    found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    with torch.no_grad():
        for images, _, _, idx in loader:
            head = model(images.to(device)).float().cpu().numpy()
            sizes = [(samples[i].width, samples[i].height) for i in idx.tolist()]
            found.update(zip(idx.tolist(), detect_batch(head, sizes, size)))
    model.train(was)
    if dist_info.enabled:
        parts: list[Any] = [None] * dist_info.world_size
        torch.distributed.all_gather_object(parts, found)
        found = {k: v for p in parts for k, v in p.items()}
    keys = sorted(found)
    res = detection_metrics([samples[i] for i in keys], [found[i] for i in keys])
    res.update(num_test=len(samples), num_skipped=len(samples) - len(keys), eval_time=time.perf_counter() - t0)
    return res


DETECTION = register_task(Task(
    name="detection",
    summary="person detection: CenterNet-style one-stage detector, focal + L1 losses, COCO AP / AP50, VOC AP50",
    datasets=DETECTION_DATASETS,
    backbones=("resnet18-det",),
    build_model=build_detector,
    head_options=(),
    model_options=lambda cfg: {"last_stride": cfg.model.last_stride, "stem": cfg.model.stem},
    build_datasets=lambda cfg: build_datasets(cfg, DETECTION_DATASETS),
    num_classes=lambda ds: ds.num_classes,
    transform=image_transform,
    build_train_loader=_train_loader,
    loss_terms=lambda cfg: centernet_loss_terms,
    evaluate=evaluate,
    metric_keys=("AP", "AP50", "voc_AP50"),
    table_metrics=(("AP50", "AP50"), ("AP", "AP"), ("voc_AP50", "VOC AP50")),
    primary_metric="AP50",
    format_results=format_detection,
    input_shape=lambda cfg: (3, *_size(cfg)),
    input_norm=(IMAGENET_MEAN, IMAGENET_STD),
    describe_model=lambda cfg: (f"Detection: {cfg.model.arch} (width {cfg.model.width}, CenterNet head at stride "
                                f"{OUTPUT_STRIDE}), {cfg.data.height}x{cfg.data.width} input, batch "
                                f"{cfg.data.batch_size}"),
    reference={"num_classes": 1, "data.height": 384, "data.width": 640},
    test_input=lambda ds, i: load_image(ds.test[i].path),
    outputs_agree=detections_agree,
    defaults={"data.dataset": "synthetic", "data.height": 128, "data.width": 128, "data.batch_size": 16,
              "data.test_batch_size": 32, "data.pad": 0, "data.erasing_prob": 0.0, "model.arch": "resnet18-det",
              "model.last_stride": 2, "optim.weight_decay": 1e-4, "gal.fr_stages": [1, 2, 3], "gal.fr_grid": [2, 2]},
))
