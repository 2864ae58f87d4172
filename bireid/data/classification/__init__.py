"""Image-classification data: the parsers (folder per class, CSV list, the CIFAR-10 binary release) and their registry
``CLASSIFICATION_DATASETS``. Importing this package registers the parsers. The augmentation is re-ID's
(``bireid.data.build_transforms``: resize, flip, pad + crop, normalise) with the classification task's settings
(pad 4, no erasing).
"""

from . import cifar, csvlist, folders  # noqa: F401  (registration side effects)
from .base import CLASSIFICATION_DATASETS, register_classification_dataset

__all__ = ["CLASSIFICATION_DATASETS", "register_classification_dataset"]
