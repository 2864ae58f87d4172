"""The evaluation hook: Rank-k, mAP and mINP of a model on a data set's query/gallery split."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
import torch.nn as nn

from ..config import Config
from ..data import IMAGENET_MEAN, IMAGENET_STD, ReIDDataset, build_test_loaders
from ..distributed import DistInfo, gather_tensors
from ..evaluation import evaluate_features, extract_features


def evaluate_model(model: nn.Module, cfg: Config, eval_ds: ReIDDataset, device: torch.device,
                   dist_info: DistInfo, mean: Sequence[float] = IMAGENET_MEAN,
                   std: Sequence[float] = IMAGENET_STD) -> dict:
    """Rank-1/5/10, mAP, mINP on ``eval_ds``; with several ranks each extracts a shard, features are gathered.

    Any module returning (N, D) features works, a deployed ``.bnn`` model included (``bireid.deploy.EngineModule``,
    with its own ``mean``/``std``): the loaders, flip, metric and re-ranking are the same. Progress bars follow
    ``train.progress`` (on rank 0, on a terminal)."""
    if not eval_ds.query or not eval_ds.gallery:
        return {}
    if dist_info.enabled:
        r, w = dist_info.rank, dist_info.world_size
        eval_ds = ReIDDataset(eval_ds.name, [], eval_ds.query[r::w], eval_ds.gallery[r::w])
    ql, gl = build_test_loaders(cfg, eval_ds, mean, std)
    t0 = time.perf_counter()
    show = cfg.train.progress and dist_info.is_main
    qf, qp, qc = extract_features(model, ql, device=device, flip=cfg.eval.flip, progress="query" if show else "")
    gf, gp, gc = extract_features(model, gl, device=device, flip=cfg.eval.flip, progress="gallery" if show else "")
    if dist_info.enabled:
        qf, gf = gather_tensors(qf.to(device)).cpu(), gather_tensors(gf.to(device)).cpu()
        qp, qc, gp, gc = (gather_tensors(torch.as_tensor(a).to(device)).cpu().numpy() for a in (qp, qc, gp, gc))
    res = evaluate_features(qf, qp, qc, gf, gp, gc, metric=cfg.eval.metric, rerank=cfg.eval.rerank,
                            max_rank=cfg.eval.max_rank)
    return {"rank1": res.rank1, "rank5": res.rank5, "rank10": res.rank10, "mAP": res.mAP, "mINP": res.mINP,
            "num_query": len(qp), "num_gallery": len(gp), "num_valid_queries": res.num_valid_queries,
            "num_skipped_queries": res.num_skipped_queries, "eval_time": time.perf_counter() - t0}
