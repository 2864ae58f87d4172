"""Backbones: real-valued ResNets (``resnet``), their 1-bit counterparts (``binary_resnet``) and PointNet in both
families (``pointnet``); importing this package registers them all."""

from . import binary_resnet, pointnet, resnet  # noqa: F401  (registration side effects)
