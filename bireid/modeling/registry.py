"""The model registry: backbones register by (family, arch); the full re-ID model is built elsewhere.

Backbones are keyed by (family, arch): family "real" holds the float ResNets, family "binary" the 1-bit
ones (``bireid.modeling.backbones.binary_resnet``). A binarization *method* (``bireid.methods``) picks the
family and the options passed to its builder; the full re-ID model is built by ``bireid.factory.create_model``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

_BACKBONES: dict[tuple[str, str], Callable[..., nn.Module]] = {}


def register_backbone(arch: str, family: str = "real") -> Callable:
    """Decorator: ``@register_backbone("resnet18", family="binary")`` on a builder ``fn(**kw) -> nn.Module``."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = (family, arch)
        if key in _BACKBONES:
            raise KeyError(f"backbone {arch!r} ({family}) is registered twice")
        _BACKBONES[key] = fn
        return fn

    return deco


def list_backbones(family: str | None = None) -> list[str]:
    _import_builtin()
    return sorted({a for f, a in _BACKBONES if family is None or f == family})


def create_backbone(arch: str, family: str = "real", **kw) -> nn.Module:
    _import_builtin()
    key = (family, arch)
    if key not in _BACKBONES:
        known = ", ".join(a for f, a in sorted(_BACKBONES) if f == family) or "none"
        raise KeyError(f"unknown {family} backbone {arch!r}; known: {known}")
    return _BACKBONES[key](**kw)


def _import_builtin() -> None:
    # Registration happens on import; import lazily to keep `import bireid` cheap and cycle-free.
    from .backbones import resnet  # noqa: F401

    try:
        from .backbones import binary_resnet  # noqa: F401
    except ImportError as e:  # only while the binary family is absent; never hide its own errors
        if "binary_resnet" not in str(e):
            raise
