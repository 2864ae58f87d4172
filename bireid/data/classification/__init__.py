"""Image-classification data: the parsers (folder per class, CSV list, the CIFAR-10 binary release), their registry
``CLASSIFICATION_DATASETS`` and the standard augmentation. Importing this package registers the parsers.
"""

from . import cifar, csvlist, folders  # noqa: F401  (registration side effects)
from .base import CLASSIFICATION_DATASETS, register_classification_dataset
from .transforms import build_classification_transforms

__all__ = ["CLASSIFICATION_DATASETS", "build_classification_transforms", "register_classification_dataset"]
