"""The deployed person detector: a ``.bnn`` detector (``bireid export`` of a ``--task detection`` model) run by the
bit-packed engine, torch-free: image -> boxes and scores (``bireid.boxes.decode``), and the boxes drawn."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..boxes import DEPLOY_NMS_IOU, DEPLOY_SCORE, HEAD_CHANNELS, decode
from ..images import preprocess
from ..runtime import BNNModel
from ..runtime.errors import FormatError

STRIDE = 4  # the detector's output stride (bireid.modeling.detector.OUTPUT_STRIDE)


class EngineDetector:
    """``EngineDetector("det.bnn").detect(image) -> (boxes (n, 4) xyxy in the image's pixels, scores (n,))``."""

    def __init__(self, model_path: str | os.PathLike, score_thresh: float = DEPLOY_SCORE, top_k: int = 100,
                 nms_iou: float | None = DEPLOY_NMS_IOU) -> None:
        self.model = BNNModel.load(model_path)
        shape = self.model.output_shape
        h, w = self.model.input_size
        if len(shape) != 3 or shape[2] != HEAD_CHANNELS or (shape[0] * STRIDE, shape[1] * STRIDE) != (h, w):
            raise FormatError(f"{model_path}: not a detector (its output is {shape}, a detector's is "
                              f"({h // STRIDE}, {w // STRIDE}, {HEAD_CHANNELS}))")
        self.score_thresh, self.top_k, self.nms_iou = score_thresh, top_k, nms_iou

    def head(self, images: list[Image.Image]) -> np.ndarray:
        """The raw head maps (N, 5, H/4, W/4) of RGB images (resized to the model's input)."""
        x = np.stack([preprocess(im, self.model.input_size, self.model.mean, self.model.std) for im in images])
        return self.model.forward(x)

    def detect(self, image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.model.input_size
        boxes, scores = decode(self.head([image])[0], STRIDE, self.top_k, self.score_thresh, self.nms_iou)
        boxes = boxes * np.asarray([image.width / w, image.height / h] * 2, np.float32)
        np.clip(boxes, 0, np.asarray([image.width, image.height] * 2, np.float32), out=boxes)
        return boxes, scores


def draw_detections(image: Image.Image, boxes: np.ndarray, scores: np.ndarray, path: str | os.PathLike,
                    labels: list[str] | None = None) -> Path:
    """``image`` with the boxes (and their scores, or ``labels``) drawn, saved to ``path``."""
    img = image.convert("RGB").copy()
    d = ImageDraw.Draw(img)
    lw = max(1, round(min(img.size) / 200))
    for i, (b, s) in enumerate(zip(np.asarray(boxes).tolist(), np.asarray(scores).tolist())):
        d.rectangle(b, outline=(40, 230, 40), width=lw)
        text = labels[i] if labels is not None else f"{s:.2f}"
        d.text((b[0] + lw + 1, b[1] + lw), text, fill=(255, 255, 0))
    path = Path(path)
    img.save(path)
    return path
