"""The data sets the config's data section describes, and the check of its data-set names.

Each task has its registry of data sets (re-ID: ``DATASETS``; the classification tasks: their own, in
``bireid.data.classification`` and ``bireid.data.pointcloud``); both functions take the one to use.
"""

from __future__ import annotations

from typing import Any

from ..config import ConfigError, check_names
from ..registry import Registry
from .datasets.base import DATASETS, DatasetSpec


def check_data_config(cfg: Any, registry: Registry[DatasetSpec] = DATASETS) -> None:
    """``data.dataset`` and ``data.eval_dataset`` name data sets of ``registry`` (close matches otherwise)."""
    check_names(cfg, {"dataset": registry})


def build_datasets(cfg: Any, registry: Registry[DatasetSpec] = DATASETS) -> tuple[Any, Any]:
    """(training data set, evaluation data set) as the config describes them (the same one without
    ``data.eval_dataset``), parsed by the entries of ``registry``."""
    d = cfg.data
    spec = registry.get(d.dataset)
    root = d.root or spec.default_root
    if not root:
        raise ConfigError(f"--data-root is required for --dataset {d.dataset}")
    train_ds = spec.build(root, **spec.config_options(d))
    eval_ds = train_ds
    if d.eval_dataset:
        if not d.eval_root:
            raise ConfigError("data.eval_dataset needs data.eval_root")
        eval_spec = registry.get(d.eval_dataset)
        eval_ds = eval_spec.build(d.eval_root, **eval_spec.config_options(d))
    return train_ds, eval_ds
