"""The model a config (or a call) describes: ``create_model``, ``load_model``, ``init_from_checkpoint``.

The factory sits above the methods and below the engine: it turns a method name into a re-ID model
(``create_model``), a config into ``create_model``'s arguments (``model_kwargs``, asking the method which
config keys it takes), and a checkpoint file back into the model it was trained as (``load_model``).
``check_model_config`` checks the model section's names against the registries before anything is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .checkpoint import CheckpointError, check_state_compatible, read_checkpoint
from .config import Config, ConfigError, check_names, from_dict
from .methods import METHODS, get_method, teacher_methods
from .modeling import BACKBONES, ReIDModel
from .nn import init_from_state


def create_model(name: str = "resnet18", num_classes: int = 751, method: str = "real", head: str = "bnneck",
                 last_stride: int = 1, **kw: Any) -> nn.Module:
    """Build a re-ID model: backbone ``name`` binarized by ``method``, with a re-ID ``head``.

    Extra keyword arguments go to the backbone builder (e.g. ``width``, ``downsample``).
    """
    backbone = get_method(method).build_backbone(name, last_stride=last_stride, **kw)
    return ReIDModel(backbone, num_classes=num_classes, head=head)


def check_model_config(cfg: Config) -> None:
    """The method and architecture exist (close matches otherwise) and the method takes the options given."""
    check_names(cfg, {"method": METHODS})
    method = get_method(cfg.model.method)
    check_names(cfg, {"backbone": BACKBONES[method.family]})
    if cfg.model.teacher and not method.uses_teacher:
        raise ConfigError(f"model.teacher is only used by --method {', '.join(teacher_methods())} (the method is "
                          f"{cfg.model.method!r})")


def model_kwargs(cfg: Any, num_classes: int) -> dict[str, Any]:
    """The ``create_model`` arguments a config describes (one place for training and loading)."""
    m = cfg.model
    return dict(name=m.arch, num_classes=num_classes, method=m.method, head=m.head, last_stride=m.last_stride,
                width=m.width, **get_method(m.method).options_from_config(cfg))


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Config]:
    """Build the model a checkpoint was trained with and load its weights. Returns (model in eval mode, cfg)."""
    state, meta, _ = read_checkpoint(path)
    if "config" not in meta or "num_classes" not in meta:
        raise CheckpointError(f"{path}: checkpoint has no model description (config/num_classes)")
    try:
        cfg = from_dict(meta["config"])
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
