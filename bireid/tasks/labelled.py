"""What the two classification tasks (images, point clouds) share: data sets from a registry, the classifier
model, cross-entropy, and the evaluation hook (top-1 / top-5 / mean class accuracy on the test split), put
together by ``labelled_task`` from what differs (data sets, the sample -> tensor transform, the model's options)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from ..config import ConfigError
from ..data import LabelledData, build_datasets
from ..data.labelled import build_labelled_test_loader, build_labelled_train_loader
from ..distributed import DistInfo, gather_tensors
from ..evaluation import classification_metrics, format_classification, predict
from ..modeling import Classifier
from ..modeling.losses import classification_loss_terms
from ..registry import Registry
from .base import Task

METRIC_KEYS = ("top1", "top5", "class_acc")
Transform = Callable[[Any, bool], Callable[[Any], torch.Tensor]]  # (cfg, train) -> sample -> tensor


def build_classifier(backbone: nn.Module, num_classes: int, dropout: float = 0.0) -> Classifier:
    return Classifier(backbone, num_classes, dropout)


def datasets_builder(registry: Registry) -> Callable[[Any], tuple[LabelledData, LabelledData]]:
    """``build_datasets(cfg)`` over ``registry``; an evaluation data set must have the training set's classes."""

    def build(cfg: Any) -> tuple[LabelledData, LabelledData]:
        train_ds, eval_ds = build_datasets(cfg, registry)
        if eval_ds is not train_ds and eval_ds.classes != train_ds.classes:
            raise ConfigError(f"data.eval_dataset {eval_ds.name} has classes {eval_ds.classes[:5]}..., the training "
                              f"set {train_ds.classes[:5]}...: they must be the same, in the same order")
        return train_ds, eval_ds

    return build


def train_loader_builder(transform: Transform) -> Callable[..., Any]:
    def build(cfg: Any, train_ds: LabelledData, rank: int, world_size: int, seed: int):
        d = cfg.data
        return build_labelled_train_loader(train_ds.train, transform(cfg, True), d.batch_size, d.workers,
                                           d.bad_images, seed, rank, world_size, cfg.train.device)

    return build


def evaluator(transform: Transform, input_norm: tuple[tuple[float, ...], tuple[float, ...]]) -> Callable[..., dict]:
    """The evaluation hook over ``eval_ds.test``; with several ranks each predicts a shard, logits are gathered.
    ``mean``/``std`` (a deployed model's own input normalisation) must be the task's ``input_norm``, which the
    transform applies."""

    def evaluate(model: nn.Module, cfg: Any, eval_ds: LabelledData, device: torch.device, dist_info: DistInfo,
                 mean: Any = None, std: Any = None) -> dict:
        for given, own, what in ((mean, input_norm[0], "mean"), (std, input_norm[1], "std")):
            # A .bnn file stores them as float32: equal up to that rounding.
            if given is not None and not all(abs(float(a) - b) <= 1e-6 for a, b in zip(given, own, strict=True)):
                raise ValueError(f"input {what} {tuple(given)} differs from this task's {tuple(own)}")
        split = eval_ds.test
        if not len(split):
            return {}
        d = cfg.data
        loader = build_labelled_test_loader(split, transform(cfg, False), d.test_batch_size, d.workers, d.bad_images,
                                            dist_info.rank, dist_info.world_size, cfg.train.device)
        t0 = time.perf_counter()
        logits, labels, _ = predict(model, loader, device)
        if not logits.numel():
            logits = torch.zeros(0, eval_ds.num_classes)
        if dist_info.enabled:
            logits = gather_tensors(logits.to(device)).cpu()
            labels = gather_tensors(torch.as_tensor(labels).to(device)).cpu().numpy()
        res = classification_metrics(logits, labels)
        res.update(num_test=len(split), num_skipped=len(split) - res["num_samples"],
                   eval_time=time.perf_counter() - t0)
        return res

    return evaluate


def ce_loss_terms(cfg: Any):
    return lambda outputs, targets: classification_loss_terms(outputs, targets, cfg.loss)


def labelled_task(name: str, summary: str, datasets: Registry, backbones: tuple[str, ...], transform: Transform,
                  input_norm: tuple[tuple[float, ...], tuple[float, ...]],
                  model_options: Callable[[Any], dict[str, Any]], table_metrics: tuple[tuple[str, str], ...],
                  input_shape: Callable[[Any], tuple[int, int, int]], describe_model: Callable[[Any], str],
                  defaults: dict[str, Any]) -> Task:
    """The ``Task`` of a classification task over ``datasets``: the classifier model (``model.dropout``),
    shuffled batches of ``transform``'s tensors, cross-entropy, top-1 as the primary metric, 10 classes in the
    complexity reference."""
    return Task(
        name=name, summary=summary, datasets=datasets, backbones=backbones, build_model=build_classifier,
        head_options=("dropout",), model_options=model_options, build_datasets=datasets_builder(datasets),
        num_classes=lambda ds: ds.num_classes, transform=transform, build_train_loader=train_loader_builder(transform),
        loss_terms=ce_loss_terms, evaluate=evaluator(transform, input_norm), metric_keys=METRIC_KEYS,
        table_metrics=table_metrics, primary_metric="top1", format_results=format_classification,
        input_shape=input_shape, input_norm=input_norm, describe_model=describe_model,
        reference={"num_classes": 10}, defaults=defaults, test_input=lambda ds, i: ds.test.load(i))
