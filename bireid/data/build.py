"""The data sets the config's data section describes, and the check of its data-set names.

Training reads ``data.dataset`` at ``data.root``; evaluation reads ``data.eval_dataset`` at ``data.eval_root``
when set, else the training set's query/gallery (or test split). An evaluation set is parsed with
``eval_only=True``: only the folders its query and gallery need are read (a query/gallery-only folder is enough).
Each task has its registry of data sets (re-ID: ``DATASETS``; the classification tasks: their own, in
``bireid.data.classification`` and ``bireid.data.pointcloud``); every function takes the one to use.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ..config import ConfigError, check_names
from ..registry import Registry
from .datasets.base import DATASETS, DatasetSpec


def check_data_config(cfg: Any, registry: Registry[DatasetSpec] = DATASETS) -> None:
    """``data.dataset`` and ``data.eval_dataset`` name data sets of ``registry`` (close matches otherwise)."""
    check_names(cfg, {"dataset": registry})


def evaluated_set(cfg: Any, registry: Registry[DatasetSpec] = DATASETS) -> tuple[str, str]:
    """(name, root) of the data set ``cfg`` evaluates on: ``data.eval_dataset`` or the training set, with the
    registered default folder when no root is given."""
    d = cfg.data
    name, root = (d.eval_dataset, d.eval_root) if d.eval_dataset else (d.dataset, d.root)
    return name, root or registry.get(name).default_root


def build_eval_dataset(cfg: Any, registry: Registry[DatasetSpec] = DATASETS) -> Any:
    """The evaluation set ``cfg`` describes, parsed for its query and gallery (or test split) only."""
    name, root = evaluated_set(cfg, registry)
    if not root:
        raise ConfigError(f"a data set folder is required for {name} ("
                          + ("data.eval_root)" if cfg.data.eval_dataset else "--data-root)"))
    spec = registry.get(name)
    return spec.build(root, eval_only=True, **spec.config_options(cfg.data))


def build_datasets(cfg: Any, registry: Registry[DatasetSpec] = DATASETS) -> tuple[Any, Any]:
    """(training data set, evaluation data set) as the config describes them (the same one without
    ``data.eval_dataset``), parsed by the entries of ``registry``."""
    d = cfg.data
    spec = registry.get(d.dataset)
    root = d.root or spec.default_root
    if not root:
        raise ConfigError(f"--data-root is required for --dataset {d.dataset}")
    train_ds = spec.build(root, **spec.config_options(d))
    if not d.eval_dataset:
        return train_ds, train_ds
    if not d.eval_root:
        raise ConfigError("data.eval_dataset needs data.eval_root")
    return train_ds, build_eval_dataset(cfg, registry)


def absolute_data_paths(cfg: Any, registry: Registry[DatasetSpec] = DATASETS) -> Any:
    """A copy of ``cfg`` whose data folders are absolute (the registered default folder spelled out), so that a
    checkpoint's config names its data wherever it is read from."""
    cfg = copy.deepcopy(cfg)
    d = cfg.data
    root = d.root or (registry.get(d.dataset).default_root if d.dataset in registry else "")
    if root:
        d.root = str(Path(root).expanduser().resolve())
    if d.eval_root:
        d.eval_root = str(Path(d.eval_root).expanduser().resolve())
    return cfg
