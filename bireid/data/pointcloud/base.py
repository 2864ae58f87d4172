"""The registry of point-cloud data sets (names for ``data.dataset`` under ``--task pointcloud``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...registry import Registry
from ..datasets.base import DatasetError, DatasetSpec

POINTCLOUD_DATASETS: Registry[DatasetSpec] = Registry("point-cloud data set", error=DatasetError, fold_case=True)


def register_pointcloud_dataset(name: str, config_options: Callable[[Any], dict[str, Any]] | None = None
                                ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``parser(root, **kw) -> LabelledData`` under ``name``; ``config_options(cfg.data)``
    gives the keywords it takes from the config."""

    def deco(parser: Callable[..., Any]) -> Callable[..., Any]:
        POINTCLOUD_DATASETS.add(name, DatasetSpec(parser, config_options) if config_options else DatasetSpec(parser))
        return parser

    return deco
