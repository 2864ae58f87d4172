"""The evaluation hook: the config's task evaluates the model on its evaluation data set (re-ID: Rank-k, mAP and
mINP on the query/gallery split; classification and point clouds: top-1 / top-5 / mean class accuracy on the test
split; see ``bireid.tasks``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from ..config import Config
from ..distributed import DistInfo
from ..tasks import get_task


def evaluate_model(model: nn.Module, cfg: Config, eval_ds: Any, device: torch.device, dist_info: DistInfo,
                   mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> dict:
    """The metrics of ``model`` on ``eval_ds`` by the task of ``cfg`` ({} when the data set has nothing to
    evaluate on); under DDP every rank takes part and every rank gets the result.

    Any module mapping the task's inputs to its outputs works, a deployed ``.bnn`` model included
    (``bireid.deploy.EngineModule``, with its own input ``mean``/``std``; default: the task's ``input_norm``)."""
    task = get_task(cfg.task.name)
    mean = task.input_norm[0] if mean is None else mean
    std = task.input_norm[1] if std is None else std
    return task.evaluate(model, cfg, eval_ds, device, dist_info, mean=mean, std=std)
