"""The data sets the config's data section describes, and the check of its data-set names."""

from __future__ import annotations

from typing import Any

from ..config import ConfigError, check_names
from .datasets.base import DATASETS, ReIDDataset


def check_data_config(cfg: Any) -> None:
    """``data.dataset`` and ``data.eval_dataset`` name registered data sets (close matches otherwise)."""
    check_names(cfg, {"dataset": DATASETS})


def build_datasets(cfg: Any) -> tuple[ReIDDataset, ReIDDataset]:
    """(training data set, evaluation data set) as the config describes them (the same one without
    ``data.eval_dataset``)."""
    d = cfg.data
    spec = DATASETS.get(d.dataset)
    root = d.root or spec.default_root
    if not root:
        raise ConfigError(f"--data-root is required for --dataset {d.dataset}")
    train_ds = spec.build(root, **spec.config_options(d))
    eval_ds = train_ds
    if d.eval_dataset:
        if not d.eval_root:
            raise ConfigError("data.eval_dataset needs data.eval_root")
        eval_spec = DATASETS.get(d.eval_dataset)
        eval_ds = eval_spec.build(d.eval_root, **eval_spec.config_options(d))
    return train_ds, eval_ds
