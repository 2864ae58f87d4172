"""The registry of image-classification data sets (names for ``data.dataset`` under ``--task classification``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...registry import Registry
from ..datasets.base import DatasetError, DatasetSpec
from ..labelled import LabelledData

# Case-insensitive; an unknown name is a DatasetError naming the close matches.
CLASSIFICATION_DATASETS: Registry[DatasetSpec] = Registry("classification data set", error=DatasetError,
                                                          fold_case=True)


def register_classification_dataset(name: str) -> Callable[[Callable[..., LabelledData]], Callable[..., LabelledData]]:
    """Decorator: register ``parser(root) -> LabelledData`` under ``name``."""

    def deco(parser: Callable[..., Any]) -> Callable[..., Any]:
        CLASSIFICATION_DATASETS.add(name, DatasetSpec(parser))
        return parser

    return deco
