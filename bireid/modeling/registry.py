"""The backbone registries: one per family, filled by the backbone modules when ``bireid.modeling`` is imported.

Family "real" holds the float ResNets, family "binary" the 1-bit ones
(``bireid.modeling.backbones.binary_resnet``). A binarization *method* (``bireid.methods``) picks the family
(its ``binary`` flag) and the options passed to the builder; the full re-ID model is built by
``bireid.factory.create_model``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from ..registry import Registry

BackboneBuilder = Callable[..., nn.Module]
BACKBONES: dict[str, Registry[BackboneBuilder]] = {
    "real": Registry("real backbone"),
    "binary": Registry("binary backbone"),
}


def _family(family: str) -> Registry[BackboneBuilder]:
    if family not in BACKBONES:
        raise KeyError(f"unknown backbone family {family!r}; known: {', '.join(BACKBONES)}")
    return BACKBONES[family]


def register_backbone(arch: str, family: str = "real") -> Callable[[BackboneBuilder], BackboneBuilder]:
    """Decorator: ``@register_backbone("resnet18", family="binary")`` on a builder ``fn(**kw) -> nn.Module``."""
    return _family(family).register(arch)


def list_backbones(family: str | None = None) -> list[str]:
    """Architecture names of one family, or of every family."""
    regs = BACKBONES.values() if family is None else [_family(family)]
    return sorted({a for r in regs for a in r.names()})


def create_backbone(arch: str, family: str = "real", **kw) -> nn.Module:
    """Build the ``family`` backbone ``arch`` with the builder's keyword options ``kw``."""
    return _family(family).get(arch)(**kw)
