"""Image classification (CIFAR-10, folder-per-class and CSV sets): shuffled batches with pad + crop + flip,
cross-entropy, top-1 / top-5. Models: the CIFAR ResNet-20 (CPU budgets) and ResNet-18/34/50, with the CIFAR stem
by default, real or 1-bit by the method, with a real linear classifier (``bireid.modeling.Classifier``)."""

from __future__ import annotations

from typing import Any

from ..data import CLASSIFICATION_DATASETS, IMAGENET_MEAN, IMAGENET_STD, build_transforms
from ..evaluation import format_classification
from .base import Task, register_task
from .labelled import METRIC_KEYS, build_classifier, ce_loss_terms, datasets_builder, evaluator, train_loader_builder


def image_transform(cfg: Any, train: bool):
    """The standard augmentation (He et al. 2016 on CIFAR): flip, zero-pad by ``data.pad`` (4) and crop; test time:
    resize + normalise, as the deployed extractor does."""
    d = cfg.data
    return build_transforms(d.height, d.width, train, d.flip_prob, d.pad, d.erasing_prob)


CLASSIFICATION = register_task(Task(
    name="classification",
    summary="image classification: shuffled batches, pad 4 + crop + flip, cross-entropy, top-1/top-5",
    datasets=CLASSIFICATION_DATASETS,
    backbones=("resnet20", "resnet18", "resnet34", "resnet50"),
    build_model=build_classifier,
    head_options=("dropout",),
    model_options=lambda cfg: {"last_stride": cfg.model.last_stride, "stem": cfg.model.stem,
                               "dropout": cfg.model.dropout},
    build_datasets=datasets_builder(CLASSIFICATION_DATASETS),
    num_classes=lambda ds: ds.num_classes,
    transform=image_transform,
    build_train_loader=train_loader_builder(image_transform),
    loss_terms=ce_loss_terms,
    evaluate=evaluator(image_transform, (IMAGENET_MEAN, IMAGENET_STD)),
    metric_keys=METRIC_KEYS,
    table_metrics=(("top1", "top-1"), ("top5", "top-5")),
    primary_metric="top1",
    format_results=format_classification,
    input_shape=lambda cfg: (3, cfg.data.height, cfg.data.width),
    input_norm=(IMAGENET_MEAN, IMAGENET_STD),
    describe_model=lambda cfg: (f"Classification: {cfg.model.arch} (width {cfg.model.width}, stem {cfg.model.stem}, "
                                f"downsample {cfg.model.downsample}, dropout {cfg.model.dropout}), batch "
                                f"{cfg.data.batch_size}"),
    reference={"num_classes": 10},
    defaults={"data.dataset": "cifar10", "data.height": 32, "data.width": 32, "data.pad": 4, "data.erasing_prob": 0.0,
              "data.batch_size": 128, "data.test_batch_size": 256, "model.arch": "resnet20", "model.stem": "cifar",
              "model.last_stride": 2, "loss.label_smoothing": 0.0, "gal.fr_stages": [1, 2], "gal.fr_grid": [2, 2]},
))
