"""Feature extraction and the end-to-end re-ID evaluation (query vs gallery).

Metrics are fractions in [0, 1] everywhere in the code (dicts, logs, checkpoints' metadata); only
:func:`format_results` turns them into percentages for humans.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from .distance import compute_distance
from .metrics import RankResult, evaluate_rank
from .rerank import k_reciprocal_rerank


def _split_batch(batch) -> tuple[torch.Tensor, object, object]:
    if not isinstance(batch, (tuple, list)) or len(batch) < 3:
        raise ValueError(
            f"a test loader must yield (images, pids, camids[, indices]) tuples, got {type(batch).__name__}"
        )
    return batch[0], batch[1], batch[2]


def _to_int_array(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.int64).reshape(-1)


def extract_features(
    model: nn.Module,
    loader: Iterable,
    device: str | torch.device = "cpu",
    flip: bool = False,
    amp: bool = True,
    progress: str = "",
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Run ``model`` (in eval mode) over ``loader``; returns (features float32 on CPU (N, D), pids, camids).

    The loader yields ``(images, pids, camids, indices)``; a batch may be shorter than the batch size when
    the data set's bad-image policy dropped images, so the batch's own pids/camids are used. ``flip=True``
    averages the features of each image and its horizontal mirror. ``amp`` enables float16 autocast on
    CUDA only (features are returned in float32). The model's train/eval mode is restored afterwards.
    ``progress``: the label of a progress bar over the batches (shown on a terminal); empty = none.
    """
    from tqdm import tqdm

    device = torch.device(device)
    was_training = model.training
    model.eval()
    use_amp = amp and device.type == "cuda"
    feats: list[torch.Tensor] = []
    pids: list[np.ndarray] = []
    camids: list[np.ndarray] = []
    try:
        # The bar is updated by hand, not wrapped around the loader: the loader's own warnings (skipped images)
        # then come from this frame, which the CLI prints as one line.
        bar = tqdm(total=_length(loader), desc=progress, unit="batch", leave=False, disable=None if progress else True)
        with bar, torch.inference_mode(), torch.autocast(device_type=device.type, enabled=use_amp):
            for batch in loader:
                bar.update(1)
                images, b_pids, b_camids = _split_batch(batch)
                b_pids, b_camids = _to_int_array(b_pids), _to_int_array(b_camids)
                if len(b_pids) != len(b_camids) or len(b_pids) != images.shape[0]:
                    raise ValueError(
                        f"batch has {images.shape[0]} images but {len(b_pids)} pids and {len(b_camids)} camids"
                    )
                if images.shape[0] == 0:  # every image of the batch was dropped
                    continue
                images = images.to(device, non_blocking=True)
                f = _forward(model, images)
                if flip:
                    f = (f + _forward(model, torch.flip(images, dims=[3]))) / 2
                feats.append(f.float().cpu())
                pids.append(b_pids)
                camids.append(b_camids)
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError("the loader yielded no images; nothing to evaluate")
    return torch.cat(feats), np.concatenate(pids), np.concatenate(camids)


def _length(loader: Iterable) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def _forward(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    out = model(images)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        desc = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise TypeError(f"in eval mode the model must return (N, D) features, got {desc}")
    return out.float()


def evaluate_features(
    qf,
    q_pids,
    q_camids,
    gf,
    g_pids,
    g_camids,
    metric: str = "euclidean",
    rerank: bool = False,
    max_rank: int = 50,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> RankResult:
    """Metrics of query features against gallery features (numpy or torch), optionally re-ranked."""
    q_g = compute_distance(qf, gf, metric)
    if rerank:
        q_q = compute_distance(qf, qf, metric)
        g_g = compute_distance(gf, gf, metric)
        q_g = k_reciprocal_rerank(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lambda_value)
        del q_q, g_g
    return evaluate_rank(q_g, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank)


def evaluate(
    model: nn.Module,
    query_loader: Iterable,
    gallery_loader: Iterable,
    metric: str = "euclidean",
    rerank: bool = False,
    flip: bool = False,
    device: str | torch.device = "cpu",
    max_rank: int = 50,
) -> dict:
    """Extract query and gallery features and compute the Market-1501 protocol metrics.

    Returns a dict with ``rank1``, ``rank5``, ``rank10``, ``mAP``, ``mINP`` (fractions in [0, 1]),
    ``num_query``, ``num_gallery``, ``num_valid_queries``, ``num_skipped_queries``, ``cmc`` (list of
    floats, length ``min(max_rank, num_gallery)``) and timings in seconds: ``time_extract_s``,
    ``time_match_s`` (distances + re-ranking + ranking) and ``time_total_s``.
    """
    t0 = time.perf_counter()
    qf, q_pids, q_camids = extract_features(model, query_loader, device=device, flip=flip)
    gf, g_pids, g_camids = extract_features(model, gallery_loader, device=device, flip=flip)
    t1 = time.perf_counter()
    result = evaluate_features(
        qf, q_pids, q_camids, gf, g_pids, g_camids, metric=metric, rerank=rerank, max_rank=max_rank
    )
    t2 = time.perf_counter()
    out = result.as_dict()
    out.update(
        num_query=int(qf.shape[0]),
        num_gallery=int(gf.shape[0]),
        time_extract_s=t1 - t0,
        time_match_s=t2 - t1,
        time_total_s=t2 - t0,
    )
    return out


def format_results(results: Mapping | RankResult) -> str:
    """One-line summary in percent, e.g. ``Rank-1 81.2% | Rank-5 92.0% | Rank-10 94.9% | mAP 60.1% | mINP
    28.3%``; accepts the dict from :func:`evaluate` or a :class:`RankResult`."""
    if isinstance(results, RankResult):
        results = results.as_dict()
    fields = (("Rank-1", "rank1"), ("Rank-5", "rank5"), ("Rank-10", "rank10"), ("mAP", "mAP"), ("mINP", "mINP"))
    missing = [key for _, key in fields if key not in results]
    if missing:
        raise KeyError(f"results lack {missing}")
    return " | ".join(f"{label} {100.0 * float(results[key]):.1f}%" for label, key in fields)
