"""Person re-identification (the default task): P x K batches, identity CE + triplet, Rank-k / mAP / mINP."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from ..data import (
    DATASETS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ReIDDataset,
    build_datasets,
    build_test_loaders,
    build_train_loader,
    config_transforms,
)
from ..distributed import DistInfo, gather_tensors
from ..evaluation import evaluate_features, extract_features, format_results
from ..modeling import ReIDModel
from ..modeling.losses import reid_loss_terms
from .base import Task, register_task


def evaluate_reid(model: nn.Module, cfg: Any, eval_ds: ReIDDataset, device: torch.device, dist_info: DistInfo,
                  mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> dict:
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


def _train_loader(cfg: Any, train_ds: ReIDDataset, rank: int, world_size: int, seed: int):
    return build_train_loader(cfg, train_ds, rank=rank, world_size=world_size, seed=seed)


REID = register_task(Task(
    name="reid",
    summary="person re-identification: P x K batches, identity cross-entropy + batch-hard triplet, CMC/mAP/mINP",
    datasets=DATASETS,
    backbones=("resnet18", "resnet34", "resnet50", "resnet20"),
    build_model=lambda backbone, num_classes, head="bnneck": ReIDModel(backbone, num_classes=num_classes, head=head),
    head_options=("head",),
    model_options=lambda cfg: {"head": cfg.model.head, "last_stride": cfg.model.last_stride,
                               "stem": cfg.model.stem},
    build_datasets=build_datasets,
    num_classes=lambda ds: ds.num_train_pids,
    transform=lambda cfg, train: config_transforms(cfg.data, train),
    build_train_loader=_train_loader,
    loss_terms=lambda cfg: (lambda outputs, targets: reid_loss_terms(outputs, targets, cfg.loss)),
    evaluate=evaluate_reid,
    metric_keys=("rank1", "rank5", "rank10", "mAP", "mINP"),
    table_metrics=(("rank1", "Rank-1"), ("mAP", "mAP")),
    primary_metric="mAP",
    format_results=format_results,
    input_shape=lambda cfg: (3, cfg.data.height, cfg.data.width),
    input_norm=(IMAGENET_MEAN, IMAGENET_STD),
    describe_model=lambda cfg: (f"Backbone {cfg.model.arch} (width {cfg.model.width}, downsample "
                                f"{cfg.model.downsample}, head {cfg.model.head})"),
    reference={"num_classes": 751, "data.height": 256, "data.width": 128},
))
