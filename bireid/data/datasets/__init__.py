"""Data-set parsers, one module per layout; importing this package registers them all."""

from . import cuhk03, custom, dukemtmc, market1501, mars, msmt17  # noqa: F401  (registration side effects)
from .base import (
    DATASETS,
    IMAGE_EXTENSIONS,
    BadImageError,
    DatasetError,
    DatasetSpec,
    ReIDDataset,
    Sample,
    build_dataset,
    list_datasets,
    register_dataset,
)

__all__ = ["DATASETS", "IMAGE_EXTENSIONS", "BadImageError", "DatasetError", "DatasetSpec", "ReIDDataset", "Sample",
           "build_dataset", "list_datasets", "register_dataset"]
