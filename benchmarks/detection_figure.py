"""Issue 18's figure: a trained detector exported to .bnn, run by the engine on synthetic test scenes, boxes drawn
(green: the engine's detections with their scores; thin white: the ground truth), as one PNG montage.

    .venv/bin/python benchmarks/detection_figure.py RUN_DIR/model.safetensors docs/detections.png [--scenes 8]

Also prints the engine's AP on those scenes next to PyTorch's (the same decoding) as a check."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from bireid.deploy.detector import EngineDetector
from bireid.deploy.export import export_bnn
from bireid.evaluation.detection import detection_metrics
from bireid.factory import load_model
from bireid.images import load_image
from bireid.tasks import get_task
from bireid.tasks.detection import detect_batch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("out")
    p.add_argument("--scenes", type=int, default=8)
    p.add_argument("--score", type=float, default=0.3)
    p.add_argument("--columns", type=int, default=4)
    a = p.parse_args()
    model, cfg = load_model(a.checkpoint)
    task = get_task("detection")
    _, eval_ds = task.build_datasets(cfg)
    samples = eval_ds.test[:a.scenes]
    size = (cfg.data.height, cfg.data.width)
    with tempfile.TemporaryDirectory() as tmp:
        det = EngineDetector(export_bnn(model, Path(tmp) / "det.bnn", input_size=size), a.score, nms_iou=0.6)
    images = [load_image(s.path) for s in samples]
    engine = [det.detect(im) for im in images]
    with torch.no_grad():
        x = torch.stack([task.transform(cfg, False)(im) for im in images])
        heads = model(x).numpy()
    sizes = [(s.width, s.height) for s in samples]
    # Like for like: both head maps through the same decoding (no NMS, no clipping).
    print(f"engine on {len(samples)} scenes: {detection_metrics(samples, detect_batch(det.head(images), sizes, size))}")
    print(f"pytorch on the same scenes:  {detection_metrics(samples, detect_batch(heads, sizes, size))}")
    tiles = []
    for im, s, (boxes, scores) in zip(images, samples, engine):
        im = im.resize((im.width * 2, im.height * 2), Image.NEAREST)
        d = ImageDraw.Draw(im)
        for b in s.boxes[~s.ignore]:
            d.rectangle((b * 2).tolist(), outline=(255, 255, 255), width=1)
        for b, sc in zip(boxes, scores):
            d.rectangle((b * 2).tolist(), outline=(40, 230, 40), width=2)
            d.text((2 * b[0] + 3, 2 * b[1] + 2), f"{sc:.2f}", fill=(255, 255, 0))
        tiles.append(im)
    cols = min(a.columns, len(tiles))
    rows = -(-len(tiles) // cols)
    w, h = tiles[0].size
    sheet = Image.new("RGB", (cols * w + (cols - 1) * 4, rows * h + (rows - 1) * 4), (255, 255, 255))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * (w + 4), (i // cols) * (h + 4)))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
