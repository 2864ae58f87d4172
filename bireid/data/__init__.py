"""Re-ID data: data-set parsers, the synthetic benchmark, image loading and transforms, the P x K sampler and
the loaders. Importing this package registers every data set (the parsers and ``synthetic``) in ``DATASETS``.
"""

from . import synth  # noqa: F401  (registers 'synthetic')
from .build import absolute_data_paths, build_datasets, build_eval_dataset, check_data_config, evaluated_set
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
from .loader import ImageDataset, build_test_loaders, build_train_loader
from .samplers import RandomIdentitySampler
from .transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms, load_image

__all__ = [
    "DATASETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BadImageError",
    "DatasetError",
    "ImageDataset",
    "RandomIdentitySampler",
    "ReIDDataset",
    "Sample",
    "absolute_data_paths",
    "build_dataset",
    "build_datasets",
    "build_eval_dataset",
    "build_test_loaders",
    "build_transforms",
    "build_train_loader",
    "check_data_config",
    "evaluated_set",
    "list_datasets",
    "load_image",
    "register_dataset",
]
