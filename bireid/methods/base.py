"""The ``Method`` record and the method registry ``METHODS``.

A method owns everything specific to it: whether it is binary, its backbone options, which config keys it
reads, whether it takes a distillation teacher and which auxiliary losses it adds. Nobody else compares
method names: code that needs to know asks the record (``get_method(name).binary`` ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import torch.nn as nn

from ..modeling.registry import create_backbone
from ..registry import Registry

# Options only binary backbones understand; a real method accepts and ignores them so one config
# (e.g. ``model.downsample``) can drive every method.
BINARY_ONLY_OPTIONS = ("downsample", "act_binarizer", "weight_binarizer", "activation", "scaling", "pad_value",
                       "block_style", "alpha_mode", "stem_activation", "branch_gamma")

# The config keys every binary method passes to its backbone builder (a value "auto" means "the method's own
# default" and is not passed).
BINARY_CONFIG_KEYS = ("model.downsample", "model.branch_gamma")

# (model, cfg, num_classes, teacher or None) -> the method's AuxLoss modules (docs/ARCHITECTURE.md).
AuxBuilder = Callable[[nn.Module, Any, int, "nn.Module | None"], list[nn.Module]]


def _no_aux(model: nn.Module, cfg: Any, num_classes: int, teacher: nn.Module | None) -> list[nn.Module]:
    return []


@dataclass(frozen=True)
class Method:
    """How one binarization method builds its backbone and its auxiliary training losses.

    ``binary``: 1-bit convs (False: the real-valued reference, built from the real backbone family);
    ``defaults``: the backbone options of the method (overridable per call); ``config_keys``: the dotted config
    keys passed to the backbone builder as options (named by their last part); ``uses_teacher``: takes a
    trained model as distillation teacher (``model.teacher``, loaded by the trainer); ``aux`` builds the
    AuxLoss modules; ``prepare`` translates options before the backbone is built; ``unused_keys(cfg)``: the
    config keys that cannot change a run of this method under ``cfg`` (default: every ``gal.*`` key it does not
    read, since only a method whose ``aux`` builds GAL losses uses them).
    """

    name: str
    paper: str
    summary: str
    binary: bool = True
    defaults: dict[str, Any] = field(default_factory=dict)
    config_keys: tuple[str, ...] = ()
    uses_teacher: bool = False
    aux: AuxBuilder = _no_aux
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    unused_keys: Callable[[Any], set[str]] | None = None

    @property
    def family(self) -> str:
        """The backbone family this method builds from (``bireid.modeling.BACKBONES``)."""
        return "binary" if self.binary else "real"

    def backbone_options(self, **kw: Any) -> dict[str, Any]:
        """The method's defaults updated with ``kw`` (after method-specific translation)."""
        # None means "the method's default", so a config can pass every option unconditionally.
        opts = {**self.defaults, **{k: v for k, v in kw.items() if v is not None}}
        if self.prepare is not None:
            opts = self.prepare(opts)
        mode = opts.pop("alpha_mode", "learned")  # left over: a method without KR-GAL's scale choice
        if mode != "learned":
            takers = [m.name for m in METHODS.values() if "alpha_mode" in m.defaults]
            raise ValueError(f"alpha_mode={mode!r} is only supported by --method {', '.join(takers)} (method is "
                             f"{self.name!r})")
        if not self.binary:
            opts = {k: v for k, v in opts.items() if k not in BINARY_ONLY_OPTIONS}
        return opts

    def unused_config_keys(self, cfg: Any) -> set[str]:
        """Dotted config keys that cannot change a run of this method under ``cfg``: `bireid ablate` ignores them
        when it checks that a finished run is the one asked for (a default of a module the run did not use may
        change without invalidating it)."""
        if self.unused_keys is not None:
            return set(self.unused_keys(cfg))
        return {f"gal.{f.name}" for f in fields(cfg.gal)} - set(self.config_keys)

    def build_backbone(self, arch: str, last_stride: int = 1, **kw: Any) -> nn.Module:
        """Build ``arch`` (resnet18/34/50) the way this method binarizes it."""
        return create_backbone(arch, self.family, last_stride=last_stride, **self.backbone_options(**kw))

    def options_from_config(self, cfg: Any) -> dict[str, Any]:
        """The backbone options this method takes from ``cfg`` (its ``config_keys``; "auto" values left out)."""
        opts: dict[str, Any] = {}
        for key in self.config_keys:
            value: Any = cfg
            for part in key.split("."):
                value = getattr(value, part)
            if value != "auto":
                opts[key.rsplit(".", 1)[-1]] = value
        return opts

    def build_aux(self, model: nn.Module, cfg: Any, num_classes: int,
                  teacher: nn.Module | None = None) -> list[nn.Module]:
        """The extra training objectives (AuxLoss modules) of this method for ``model``; may be empty.

        ``teacher``: the trained model to distil from (only for methods with ``uses_teacher``).
        """
        if teacher is not None and not self.uses_teacher:
            raise ValueError(f"model.teacher is only used by --method {', '.join(teacher_methods())} (method is "
                             f"{self.name!r})")
        return list(self.aux(model, cfg, num_classes, teacher))


METHODS: Registry[Method] = Registry("method")


def register_method(method: Method) -> Method:
    return METHODS.add(method.name, method)


def get_method(name: str) -> Method:
    """The method called ``name`` (real, xnor, bireal, reactnet, bireid); unknown names raise a KeyError."""
    return METHODS.get(name)


def list_methods() -> list[str]:
    return METHODS.names()


def teacher_methods() -> list[str]:
    """Names of the methods that take a distillation teacher."""
    return [m.name for m in METHODS.values() if m.uses_teacher]
