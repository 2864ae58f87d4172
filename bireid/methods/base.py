"""The ``Method`` record and the method registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn

from ..modeling.registry import create_backbone

# Options only binary backbones understand; the real method accepts and ignores them so one config
# (e.g. ``model.downsample``) can drive every method.
BINARY_ONLY_OPTIONS = ("downsample", "act_binarizer", "weight_binarizer", "activation", "scaling", "pad_value",
                       "block_style", "alpha_mode", "stem_activation", "branch_gamma")

AuxBuilder = Callable[[nn.Module, Any, int], list[nn.Module]]


def _no_aux(model: nn.Module, cfg: Any, num_classes: int) -> list[nn.Module]:
    return []


@dataclass
class Method:
    """How one binarization method builds its backbone and its auxiliary training losses.

    ``defaults`` are the backbone options of the method (overridable per call); ``family`` picks the
    backbone registry family; ``aux`` builds the AuxLoss modules (docs/ARCHITECTURE.md).
    """

    name: str
    paper: str
    summary: str
    defaults: dict[str, Any] = field(default_factory=dict)
    family: str = "binary"
    aux: AuxBuilder = _no_aux
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def backbone_options(self, **kw: Any) -> dict[str, Any]:
        """The method's defaults updated with ``kw`` (after method-specific translation)."""
        # None means "the method's default", so a config can pass every option unconditionally.
        opts = {**self.defaults, **{k: v for k, v in kw.items() if v is not None}}
        if self.prepare is not None:
            opts = self.prepare(opts)
        mode = opts.pop("alpha_mode", "learned")  # left over: a method without KR-GAL's scale choice
        if mode != "learned":
            raise ValueError(f"alpha_mode={mode!r} is only supported by --method bireid (method is {self.name!r})")
        if self.family == "real":
            opts = {k: v for k, v in opts.items() if k not in BINARY_ONLY_OPTIONS}
        return opts

    def build_backbone(self, arch: str, last_stride: int = 1, **kw: Any) -> nn.Module:
        """Build ``arch`` (resnet18/34/50) the way this method binarizes it."""
        return create_backbone(arch, self.family, last_stride=last_stride, **self.backbone_options(**kw))

    def build_aux(self, model: nn.Module, cfg: Any, num_classes: int) -> list[nn.Module]:
        """The extra training objectives (AuxLoss modules) of this method for ``model``; may be empty."""
        teacher = getattr(getattr(cfg, "model", None), "teacher", "")
        if teacher and self.name != "reactnet":
            raise ValueError(f"model.teacher is only used by --method reactnet (method is {self.name!r})")
        return list(self.aux(model, cfg, num_classes))


_METHODS: dict[str, Method] = {}


def register_method(method: Method) -> Method:
    if method.name in _METHODS:
        raise KeyError(f"method {method.name!r} is registered twice")
    _METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The method called ``name`` (real, xnor, bireal, reactnet, bireid)."""
    if name not in _METHODS:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(_METHODS))}")
    return _METHODS[name]


def list_methods() -> list[str]:
    return sorted(_METHODS)
