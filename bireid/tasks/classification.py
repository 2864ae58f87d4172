"""Image classification (CIFAR-10, folder-per-class and CSV sets): shuffled batches with pad + crop + flip,
cross-entropy, top-1 / top-5. Models: the CIFAR ResNet-20 (CPU budgets) and ResNet-18/34/50, with the CIFAR stem
by default, real or 1-bit by the method, with a real linear classifier (``bireid.modeling.Classifier``)."""

from __future__ import annotations

from typing import Any

from ..data import CLASSIFICATION_DATASETS, IMAGENET_MEAN, IMAGENET_STD, config_transforms
from .base import register_task
from .labelled import labelled_task


def image_transform(cfg: Any, train: bool):
    """The standard augmentation (He et al. 2016 on CIFAR): flip, zero-pad by ``data.pad`` (4) and crop; test time:
    resize + normalise, as the deployed extractor does."""
    return config_transforms(cfg.data, train)


CLASSIFICATION = register_task(labelled_task(
    name="classification",
    summary="image classification: shuffled batches, pad 4 + crop + flip, cross-entropy, top-1/top-5",
    datasets=CLASSIFICATION_DATASETS,
    backbones=("resnet20", "resnet18", "resnet34", "resnet50"),
    transform=image_transform,
    input_norm=(IMAGENET_MEAN, IMAGENET_STD),
    model_options=lambda cfg: {"last_stride": cfg.model.last_stride, "stem": cfg.model.stem,
                               "dropout": cfg.model.dropout},
    table_metrics=(("top1", "top-1"), ("top5", "top-5")),
    input_shape=lambda cfg: (3, cfg.data.height, cfg.data.width),
    describe_model=lambda cfg: (f"Classification: {cfg.model.arch} (width {cfg.model.width}, stem {cfg.model.stem}, "
                                f"downsample {cfg.model.downsample}, dropout {cfg.model.dropout}), batch "
                                f"{cfg.data.batch_size}"),
    defaults={"data.dataset": "cifar10", "data.height": 32, "data.width": 32, "data.pad": 4, "data.erasing_prob": 0.0,
              "data.batch_size": 128, "data.test_batch_size": 256, "model.arch": "resnet20", "model.stem": "cifar",
              "model.last_stride": 2, "loss.label_smoothing": 0.0, "gal.fr_stages": [1, 2], "gal.fr_grid": [2, 2]},
))
