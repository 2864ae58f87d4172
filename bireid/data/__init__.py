"""Data: re-ID data-set parsers, the synthetic benchmark, image loading and transforms, the P x K sampler and the
loaders; the labelled data of the classification tasks (``labelled``) with the image-classification parsers
(``classification``) and the point-cloud parsers (``pointcloud``). Importing this package registers every data set:
re-ID's in ``DATASETS``, the others in ``CLASSIFICATION_DATASETS`` and ``POINTCLOUD_DATASETS``.
"""

from . import synth  # noqa: F401  (registers 'synthetic')
from .build import absolute_data_paths, build_datasets, build_eval_dataset, check_data_config, evaluated_set
from .classification import CLASSIFICATION_DATASETS
from .datasets import (
    DATASETS,
    BadImageError,
    DatasetError,
    ReIDDataset,
    Sample,
    build_dataset,
    list_datasets,
    register_dataset,
)
from .labelled import LabelledData, Split
from .loader import ImageDataset, build_test_loaders, build_train_loader
from .pointcloud import POINTCLOUD_DATASETS
from .samplers import RandomIdentitySampler
from .transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms, config_transforms, load_image

__all__ = [
    "CLASSIFICATION_DATASETS",
    "DATASETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BadImageError",
    "DatasetError",
    "ImageDataset",
    "LabelledData",
    "POINTCLOUD_DATASETS",
    "RandomIdentitySampler",
    "ReIDDataset",
    "Sample",
    "Split",
    "absolute_data_paths",
    "build_dataset",
    "build_datasets",
    "build_eval_dataset",
    "build_test_loaders",
    "build_transforms",
    "build_train_loader",
    "check_data_config",
    "config_transforms",
    "evaluated_set",
    "list_datasets",
    "load_image",
    "register_dataset",
]
