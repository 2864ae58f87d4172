"""Point-cloud classification (ModelNet10 / ModelNet40): fixed-size clouds normalised to the unit sphere, rotated
about the up axis, scaled and jittered; PointNet real or 1-bit (with EMA-max aggregation), cross-entropy, overall
accuracy and mean class accuracy."""

from __future__ import annotations

from typing import Any

from ..data import POINTCLOUD_DATASETS
from ..data.pointcloud import PointCloudTransform
from .base import register_task
from .labelled import labelled_task

POINT_NORM = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # point clouds are normalised to the unit sphere instead


def points_transform(cfg: Any, train: bool) -> PointCloudTransform:
    d = cfg.data
    return PointCloudTransform(d.num_points, train, d.up_axis, d.rotate, tuple(d.point_scale), d.point_jitter)


POINTCLOUD = register_task(labelled_task(
    name="pointcloud",
    summary="point-cloud classification: PointNet (EMA-max), rotation/scale/jitter, overall and mean class accuracy",
    datasets=POINTCLOUD_DATASETS,
    backbones=("pointnet",),
    transform=points_transform,
    input_norm=POINT_NORM,
    model_options=lambda cfg: {"num_points": cfg.data.num_points, "aggregation": cfg.model.aggregation,
                               "dropout": cfg.model.dropout},
    table_metrics=(("top1", "OA"), ("class_acc", "mAcc")),
    input_shape=lambda cfg: (3, cfg.data.num_points, 1),
    describe_model=lambda cfg: (f"Point clouds: {cfg.model.arch} (width {cfg.model.width}, aggregation "
                                f"{cfg.model.aggregation}, dropout {cfg.model.dropout}), {cfg.data.num_points} points, "
                                f"batch {cfg.data.batch_size}"),
    defaults={"data.dataset": "modelnet10", "data.batch_size": 32, "data.test_batch_size": 64,
              "model.arch": "pointnet", "model.dropout": 0.4, "loss.label_smoothing": 0.0,
              "optim.weight_decay": 1e-4, "gal.fr_stages": [1, 2], "gal.fr_grid": [1, 1]},
))
