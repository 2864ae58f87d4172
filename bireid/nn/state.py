"""Initialising a model from another model's weights by matching parameter names and shapes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from .conv import binary_convs


@dataclass
class InitReport:
    """What ``init_from_state`` did: keys loaded, keys of the model left as they were (absent in the
    source), keys present in both with different shapes (left as they were), and source keys unused."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    rescaled: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"loaded {len(self.loaded)} tensors, {len(self.missing)} missing in the source, "
                f"{len(self.mismatched)} with mismatching shapes, {len(self.unexpected)} unused"
                + (f", re-initialised {len(self.rescaled)} scale factors from the loaded weights"
                   if self.rescaled else ""))


def _strip(key: str) -> str:
    # DDP / torch.compile wrappers prefix every key.
    for pre in ("module.", "_orig_mod."):
        while key.startswith(pre):
            key = key[len(pre):]
    return key


def init_from_state(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> InitReport:
    """Copy every tensor of ``state_dict`` whose (name, shape) matches one of ``model``'s into it.

    Typical use: initialise a binary model from a trained real one (the binary ResNets keep the real
    ResNet's module names). Names may carry ``module.`` prefixes; a backbone-only state dict is matched
    against ``model.backbone`` when that gives more matches. Learned scale factors (``alpha``) of binary
    convs whose latent weight was loaded (and whose alpha was not) are re-initialised to mean |W| of it.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"init_from_state expects a mapping of tensors, got {type(state_dict).__name__}")
    own = model.state_dict()
    src = {_strip(k): v for k, v in state_dict.items()}
    # A backbone-only source for a ReIDModel (or the reverse): pick the prefix with most name matches.
    best = (sum(k in own for k in src), src)
    for add, drop in (("backbone.", ""), ("", "backbone.")):
        cand = {add + (k[len(drop):] if drop and k.startswith(drop) else k): v for k, v in src.items()
                if not drop or k.startswith(drop)}
        hits = sum(k in own for k in cand)
        if hits > best[0]:
            best = (hits, cand)
    src = best[1]
    rep = InitReport()
    to_load: dict[str, torch.Tensor] = {}
    for k, v in own.items():
        if k not in src:
            rep.missing.append(k)
        elif not isinstance(src[k], torch.Tensor) or tuple(src[k].shape) != tuple(v.shape):
            rep.mismatched.append(k)
        else:
            to_load[k] = src[k]
            rep.loaded.append(k)
    rep.unexpected = [k for k in src if k not in own]
    model.load_state_dict(to_load, strict=False)
    loaded = set(rep.loaded)
    for name, conv in binary_convs(model):
        pre = f"{name}." if name else ""
        reset = getattr(conv.scaling, "reset_from", None)
        if reset is None or f"{pre}weight" not in loaded:
            continue
        scale_keys = [f"{pre}scaling.{n}" for n, _ in conv.scaling.named_parameters()]
        if any(k in loaded for k in scale_keys):
            continue
        reset(conv.weight)
        rep.rescaled.extend(scale_keys)
    return rep
