"""Re-ID data: data-set parsers, image loading and transforms, the P x K sampler and the loaders."""

from .datasets import (
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
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BadImageError",
    "DatasetError",
    "ImageDataset",
    "RandomIdentitySampler",
    "ReIDDataset",
    "Sample",
    "build_dataset",
    "build_test_loaders",
    "build_transforms",
    "build_train_loader",
    "list_datasets",
    "load_image",
    "register_dataset",
]
