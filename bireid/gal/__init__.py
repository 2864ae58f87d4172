"""BiRe-ID's generative adversarial learning: KR-GAL (kernel refinement) and FR-GAL (feature refinement).

``build_gal_losses(model, cfg)`` returns the AuxLoss modules selected by ``cfg.gal`` (see
docs/ARCHITECTURE.md); ``AttentionScale`` is the attention-aware alpha (``cfg.gal.alpha_mode='attention'``).
"""

from __future__ import annotations

import dataclasses

import torch.nn as nn

from .attention import AttentionScale
from .common import Discriminator, backbone_of, find_scaled_binary_convs, unwrap
from .feature import FeatureRefinement
from .kernel import KernelRefinement

__all__ = ["AttentionScale", "Discriminator", "FeatureRefinement", "KernelRefinement", "backbone_of",
           "build_gal_losses", "find_scaled_binary_convs", "unused_gal_keys", "unwrap"]

# Settings without a GALConfig field (read with getattr so a config that adds them takes effect).
DEFAULT_KR_FILTERS = 32  # gal.kr_filters_per_layer: filters per layer per step shown to KR-GAL's D
DEFAULT_FR_GRID = (4, 2)  # gal.fr_grid: pooling grid of FR-GAL's discriminator samples
DEFAULT_DISC_BLOCKS = 2  # gal.disc_blocks: Linear + LeakyReLU blocks per discriminator


def build_gal_losses(model: nn.Module, cfg) -> list[nn.Module]:
    """KR-GAL and/or FR-GAL modules for ``model`` (bare, ReIDModel or DDP-wrapped) per ``cfg.gal`` flags.

    The modules are created on the device of the model's parameters.
    """
    g = cfg.gal
    blocks = int(getattr(g, "disc_blocks", DEFAULT_DISC_BLOCKS))
    losses: list[nn.Module] = []
    if g.kr_gal:
        losses.append(KernelRefinement(model, lam=g.kr_lambda, adv_weight=g.kr_adv_weight, disc_lr=g.disc_lr,
                                       disc_hidden=g.disc_hidden, disc_blocks=blocks,
                                       filters_per_layer=int(getattr(g, "kr_filters_per_layer",
                                                                     DEFAULT_KR_FILTERS)),
                                       disc_noise=g.disc_noise, grad=g.kr_grad,
                                       disc_target_acc=g.disc_target_acc))
    if g.fr_gal:
        backbone = backbone_of(model)
        chans = getattr(backbone, "stage_channels", None)
        if chans is None:
            raise ValueError(f"FR-GAL needs a backbone with 'stage_channels'; {type(backbone).__name__} has none")
        losses.append(FeatureRefinement(chans, stages=g.fr_stages, mu=g.fr_mu, adv_weight=g.fr_adv_weight,
                                        disc_lr=g.disc_lr, disc_hidden=g.disc_hidden, disc_blocks=blocks,
                                        grid=tuple(getattr(g, "fr_grid", DEFAULT_FR_GRID)),
                                        disc_noise=g.disc_noise, disc_target_acc=g.disc_target_acc,
                                        compare=g.fr_compare))
    p = next(unwrap(model).parameters(), None)
    if p is not None:
        losses = [m.to(p.device) for m in losses]
    return losses


def unused_gal_keys(g) -> set[str]:
    """The ``gal.*`` settings that cannot change a run with ``g``'s module flags: KR-GAL's (``kr_*``) when it is
    off, FR-GAL's (``fr_*``) when it is off, the discriminators' (``disc_*``) when both are."""
    names = [f.name for f in dataclasses.fields(g) if f.name not in ("kr_gal", "fr_gal")]
    off = {prefix for prefix, on in (("kr_", g.kr_gal), ("fr_", g.fr_gal), ("disc_", g.kr_gal or g.fr_gal))
           if not on}
    return {f"gal.{n}" for n in names if any(n.startswith(p) for p in off)}
