"""Point-cloud data: file readers (PCD, OFF meshes, .npy), the ModelNet parsers, their registry
``POINTCLOUD_DATASETS`` and the standard augmentation. Importing this package registers the parsers.
"""

from . import modelnet  # noqa: F401  (registration side effects)
from .base import POINTCLOUD_DATASETS, register_pointcloud_dataset
from .io import POINT_EXTENSIONS, BadPointCloudError, read_off, read_pcd, read_points, sample_surface
from .transforms import PointCloudTransform, normalize_unit_sphere, rotation_about

__all__ = ["POINTCLOUD_DATASETS", "POINT_EXTENSIONS", "BadPointCloudError", "PointCloudTransform",
           "normalize_unit_sphere", "read_off", "read_pcd", "read_points", "register_pointcloud_dataset",
           "rotation_about", "sample_surface"]
