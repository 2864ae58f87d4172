"""Data-set parsers, one module per layout; importing this package registers them all."""

from . import cuhk03, custom, dukemtmc, market1501, mars, msmt17  # noqa: F401  (registration side effects)
from .base import (
    IMAGE_EXTENSIONS,
    BadImageError,
    DatasetError,
    ReIDDataset,
    Sample,
    build_dataset,
    list_datasets,
    register_dataset,
)

__all__ = ["IMAGE_EXTENSIONS", "BadImageError", "DatasetError", "ReIDDataset", "Sample", "build_dataset",
           "list_datasets", "register_dataset"]
