"""The ``Task`` record and the task registry ``TASKS``.

A task owns everything that differs between re-ID, image classification and point-cloud classification: its data
sets (a registry of parsers), its model family (the architectures it takes and the model it builds around a
method's backbone), its objective (``loss_terms``), its metric and evaluation hook, the shape and normalisation
of one input (for complexity accounting and export), and the config values it starts from (``defaults``, applied
before the user's YAML and flags). The trainer, the factory and the commands ask the record (``get_task(name)``);
nobody compares task names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..config import ConfigError
from ..registry import Registry

LossTerms = Callable[[dict[str, Any], torch.Tensor], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Task:
    """What one task brings to the shared trainer (see the module docstring).

    ``datasets``: the registry naming its data sets (``data.dataset``). ``backbones``: the architectures of its
    model family (``model.arch``). ``build_model(backbone, num_classes, **head_options)``: the model around a built
    backbone; ``head_options``: the ``create_model`` keywords that go to it rather than to the backbone.
    ``model_options(cfg)``: the task's ``create_model`` keywords read from the config. ``build_datasets(cfg)`` ->
    (train, eval) data sets; ``num_classes(train)``; ``transform(cfg, train)`` -> the callable turning one sample (a PIL
    image, a point array) into the model's input tensor; ``build_train_loader(cfg, train, rank, world_size, seed)``;
    ``loss_terms(cfg)`` -> the objective ``(outputs, targets) -> {name: term}``; ``evaluate(model, cfg, eval_ds,
    device, dist_info)`` -> metrics (the evaluation hook); ``metric_keys``: the metrics it reports; ``table_metrics``:
    (key, label) pairs for summaries and curves; ``primary_metric``: the one ablations compare and runs are judged
    by; ``format_results(metrics)`` -> one line;
    ``input_shape(cfg)`` -> (C, H, W) of one input; ``input_norm`` -> (mean, std) per channel stored in exports;
    ``describe_model(cfg)`` -> the model settings that matter, in words (for reports); ``reference``: the model its
    complexity figures are quoted for without a data set (``num_classes`` and config overrides, e.g. re-ID's
    256x128 input and 751 Market-1501 identities).
    ``test_input(eval_ds, i)`` -> test sample ``i`` as ``transform`` takes it (what ``bireid export --verify``
    compares on; None: no test split, re-ID verifies on query/gallery images); ``outputs_agree(ref, got)`` -> (per
    input, whether two batches of outputs give the same deployed result; what is compared, in words), for
    ``--verify`` (None: the retrieval check, each input's nearest neighbours among the others).
    """

    name: str
    summary: str
    datasets: Registry
    backbones: tuple[str, ...]
    build_model: Callable[..., nn.Module]
    head_options: tuple[str, ...]
    model_options: Callable[[Any], dict[str, Any]]
    build_datasets: Callable[[Any], tuple[Any, Any]]
    num_classes: Callable[[Any], int]
    transform: Callable[[Any, bool], Callable[[Any], torch.Tensor]]
    build_train_loader: Callable[..., Any]
    loss_terms: Callable[[Any], LossTerms]
    evaluate: Callable[..., dict[str, Any]]
    metric_keys: tuple[str, ...]
    table_metrics: tuple[tuple[str, str], ...]
    primary_metric: str
    format_results: Callable[[Mapping[str, Any]], str]
    input_shape: Callable[[Any], tuple[int, int, int]]
    input_norm: tuple[tuple[float, ...], tuple[float, ...]]
    describe_model: Callable[[Any], str]
    reference: Mapping[str, Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    test_input: Callable[[Any, int], Any] | None = None
    outputs_agree: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, str]] | None = None

    def check_arch(self, arch: str) -> None:
        """``arch`` belongs to this task's model family (a ConfigError naming the family otherwise)."""
        if arch not in self.backbones:
            raise ConfigError(f"config key 'model.arch': {arch!r} is not a {self.name} architecture; --task "
                              f"{self.name} takes {', '.join(self.backbones)}")


TASKS: Registry[Task] = Registry("task", error=ConfigError)


def register_task(task: Task) -> Task:
    return TASKS.add(task.name, task)


def get_task(name: str) -> Task:
    """The task called ``name`` (reid, classification, pointcloud); an unknown name is a ConfigError."""
    return TASKS.get(name)


def list_tasks() -> list[str]:
    return TASKS.names()


def task_defaults(name: str) -> Mapping[str, Any]:
    """The config values task ``name`` starts from ({dotted key: value}); what ``bireid.config`` calls
    ``TaskDefaults``."""
    return get_task(name).defaults
