"""Classification metrics: top-k accuracy and mean per-class accuracy, and the logits of a model over a loader.

Metrics are fractions in [0, 1]. Top-k counts a sample as correct when its label is among the k highest logits
(``torch.topk``; among equal logits the lower class index wins). Mean class accuracy (ModelNet's "mAcc") is the
mean over the classes present in the labels of the fraction of their samples predicted right.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int]) -> dict[int, int]:
    """{k: number of samples whose label is among the top-k logits} (k is capped at the number of classes)."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"expected (N, C) logits and (N,) labels, got {tuple(logits.shape)}, {tuple(labels.shape)}")
    kmax = min(max(ks), logits.shape[1])
    top = logits.float().topk(kmax, dim=1).indices
    hit = top == labels.view(-1, 1).to(top.device)
    return {k: int(hit[:, :min(k, kmax)].any(dim=1).sum()) for k in ks}


def class_accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """Mean over the classes present in ``labels`` of the fraction of their samples with ``pred == label``."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    classes = np.unique(labels)
    if not len(classes):
        return float("nan")
    return float(np.mean([(pred[labels == c] == c).mean() for c in classes]))


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor | np.ndarray) -> dict[str, float]:
    """``top1``, ``top5`` (top-min(5, C)), ``class_acc`` and ``num_samples`` of (N, C) logits against labels."""
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    n = int(labels_t.numel())
    if n == 0:
        return {"top1": float("nan"), "top5": float("nan"), "class_acc": float("nan"), "num_samples": 0}
    hits = topk_correct(logits, labels_t, (1, 5))
    pred = logits.float().argmax(dim=1).cpu().numpy()
    return {"top1": hits[1] / n, "top5": hits[5] / n, "class_acc": class_accuracy(pred, labels_t.numpy()),
            "num_samples": n}


def predict(model: nn.Module, loader: Iterable, device: str | torch.device = "cpu",
            amp: bool = True) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Run ``model`` (eval mode, restored afterwards) over a loader of ``(inputs, labels, _, indices)`` batches;
    returns (logits float32 on CPU (N, C), labels, indices). ``amp``: float16 autocast on CUDA only."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    outs: list[torch.Tensor] = []
    labels: list[np.ndarray] = []
    indices: list[np.ndarray] = []
    try:
        with torch.inference_mode(), torch.autocast(device.type, enabled=amp and device.type == "cuda"):
            for batch in loader:
                x, y, _, idx = batch
                outs.append(model(x.to(device, non_blocking=True)).float().cpu())
                labels.append(np.asarray(y, dtype=np.int64).reshape(-1))
                indices.append(np.asarray(idx, dtype=np.int64).reshape(-1))
    finally:
        model.train(was_training)
    if not outs:
        return torch.zeros(0, 0), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return torch.cat(outs), np.concatenate(labels), np.concatenate(indices)


def format_classification(results: dict) -> str:
    """One line for humans: top-1 | top-5 | mean class accuracy, in percent."""
    return (f"top-1 {100 * results['top1']:.2f}% | top-5 {100 * results['top5']:.2f}% | "
            f"mean class accuracy {100 * results['class_acc']:.2f}%")
