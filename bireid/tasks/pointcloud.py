"""Point-cloud classification (ModelNet10 / ModelNet40): fixed-size clouds normalised to the unit sphere, rotated
about the up axis, scaled and jittered; PointNet real or 1-bit (with EMA-max aggregation), cross-entropy, overall
accuracy and mean class accuracy."""

from __future__ import annotations

from typing import Any

from ..data import POINTCLOUD_DATASETS
from ..data.pointcloud import PointCloudTransform
from ..evaluation import format_classification
from .base import Task, register_task
from .labelled import METRIC_KEYS, build_classifier, ce_loss_terms, datasets_builder, evaluator, train_loader_builder

POINT_NORM = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # point clouds are normalised to the unit sphere instead


def points_transform(cfg: Any, train: bool) -> PointCloudTransform:
    d = cfg.data
    return PointCloudTransform(d.num_points, train, d.up_axis, d.rotate, tuple(d.point_scale), d.point_jitter)


POINTCLOUD = register_task(Task(
    name="pointcloud",
    summary="point-cloud classification: PointNet (EMA-max), rotation/scale/jitter, overall and mean class accuracy",
    datasets=POINTCLOUD_DATASETS,
    backbones=("pointnet",),
    build_model=build_classifier,
    head_options=("dropout",),
    model_options=lambda cfg: {"num_points": cfg.data.num_points, "aggregation": cfg.model.aggregation,
                               "dropout": cfg.model.dropout},
    build_datasets=datasets_builder(POINTCLOUD_DATASETS),
    num_classes=lambda ds: ds.num_classes,
    transform=points_transform,
    build_train_loader=train_loader_builder(points_transform),
    loss_terms=ce_loss_terms,
    evaluate=evaluator(points_transform, POINT_NORM),
    metric_keys=METRIC_KEYS,
    table_metrics=(("top1", "OA"), ("class_acc", "mAcc")),
    primary_metric="top1",
    format_results=format_classification,
    input_shape=lambda cfg: (3, cfg.data.num_points, 1),
    input_norm=POINT_NORM,
    describe_model=lambda cfg: (f"Point clouds: {cfg.model.arch} (width {cfg.model.width}, aggregation "
                                f"{cfg.model.aggregation}, dropout {cfg.model.dropout}), {cfg.data.num_points} points, "
                                f"batch {cfg.data.batch_size}"),
    reference={"num_classes": 10},
    defaults={"data.dataset": "modelnet10", "data.batch_size": 32, "data.test_batch_size": 64,
              "model.arch": "pointnet", "model.dropout": 0.4, "loss.label_smoothing": 0.0,
              "optim.weight_decay": 1e-4, "gal.fr_stages": [1, 2], "gal.fr_grid": [1, 1]},
))
