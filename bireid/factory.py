"""The model a config (or a call) describes: ``create_model``, ``load_model``, ``init_from_checkpoint``.

The factory sits above the methods and the tasks and below the engine: it turns a task, a method and an
architecture into a model (``create_model``: the method builds the backbone, the task the model around it), a
config into ``create_model``'s arguments (``model_kwargs``, asking the task and the method which config keys they
take), and a checkpoint file back into the model it was trained as (``load_model``). ``check_model_config`` checks
the config's task, method and architecture names before anything is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .checkpoint import CheckpointError, check_state_compatible, read_checkpoint
from .config import DEFAULT_TASK, Config, ConfigError, check_names, from_dict
from .methods import METHODS, get_method, teacher_methods
from .modeling import BACKBONES
from .nn import init_from_state
from .tasks import TASKS, get_task, task_defaults


def create_model(name: str = "resnet18", num_classes: int = 751, method: str = "real", task: str = DEFAULT_TASK,
                 **kw: Any) -> nn.Module:
    """Build the ``task``'s model (re-ID by default) on backbone ``name`` binarized by ``method``.

    Keywords the task's model takes (re-ID: ``head``; classification, point clouds: ``dropout``) go to it, the
    others to the backbone builder (e.g. ``width``, ``last_stride``, ``downsample``, ``stem``, ``num_points``).
    """
    t = get_task(task)
    head = {k: kw.pop(k) for k in list(kw) if k in t.head_options}
    backbone = get_method(method).build_backbone(name, **kw)
    return t.build_model(backbone, num_classes, **head)


def check_model_config(cfg: Config) -> None:
    """The task, method and architecture exist (close matches otherwise), the architecture belongs to the task's
    model family, and the method takes the options given."""
    check_names(cfg, {"task": TASKS, "method": METHODS})
    method = get_method(cfg.model.method)
    check_names(cfg, {"backbone": BACKBONES[method.family]})
    get_task(cfg.task.name).check_arch(cfg.model.arch)
    if cfg.model.teacher and not method.uses_teacher:
        raise ConfigError(f"model.teacher is only used by --method {', '.join(teacher_methods())} (the method is "
                          f"{cfg.model.method!r})")


def model_kwargs(cfg: Any, num_classes: int) -> dict[str, Any]:
    """The ``create_model`` arguments a config describes (one place for training and loading)."""
    m = cfg.model
    task = get_task(cfg.task.name)
    return dict(name=m.arch, num_classes=num_classes, method=m.method, task=task.name, width=m.width,
                **task.model_options(cfg), **get_method(m.method).options_from_config(cfg))


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Config]:
    """Build the model a checkpoint was trained with and load its weights. Returns (model in eval mode, cfg)."""
    state, meta, _ = read_checkpoint(path)
    if "config" not in meta or "num_classes" not in meta:
        raise CheckpointError(f"{path}: checkpoint has no model description (config/num_classes)")
    try:
        cfg = from_dict(meta["config"], task_defaults)
        check_model_config(cfg)
    except ConfigError as e:
        raise CheckpointError(f"{path}: stored config is invalid: {e}") from None
    model = create_model(**model_kwargs(cfg, int(meta["num_classes"])))
    check_state_compatible(model, state, str(path))
    model.load_state_dict(state)
    return model.to(device).eval(), cfg


def init_from_checkpoint(model: nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Copy every tensor whose name and shape match (e.g. a real model into a binary one); report the rest.

    Matching (and re-initialising learned scales from the loaded kernels) is ``bireid.nn.init_from_state``.
    """
    state, _, _ = read_checkpoint(path)
    rep = init_from_state(model, state)
    if not rep.loaded:
        raise CheckpointError(f"{path}: no tensor matches this model by name and shape; is it a bireid model of "
                              "the same architecture?")
    return {"loaded": rep.loaded, "mismatched": rep.mismatched, "missing": rep.missing}
