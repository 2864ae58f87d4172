"""The built-in binarization methods: real, xnor, bireal, reactnet, bireid.

Block layouts (see ``bireid.modeling.backbones.binary_resnet``):
- ``xnor``: the real ResNet's block (one real shortcut per block, ``block_style='standard'``), sign with the
  clipped STE on activations and weights, alpha = mean |W| per output channel recomputed every step. The
  sign is the only non-linearity (``activation='none'``): with our conv -> BN -> act order a ReLU would make
  every next binary input +1.
- ``bireal``: a real identity shortcut around every binary conv, ApproxSign on activations and weights,
  PReLU after each addition, no weight scale (the BatchNorm after each conv absorbs a per-channel scale in
  the forward pass). Default downsample: real (avg-pool + real 1x1), as in Bi-Real Net.
- ``reactnet``: the Bi-Real layout with RSign (learnable thresholds, ApproxSign gradient) and RPReLU;
  weights sign with STE and a mean |W| scale (as ReActNet's code); optional distribution (KL) loss from a
  real teacher (``model.teacher``, loaded by the trainer and handed to ``build_aux``).
- ``bireid``: the Bi-Real layout with ApproxSign and PReLU, a learned channel-wise alpha per binary conv
  (``alpha_mode='learned'``) or KR-GAL's attention scale (``alpha_mode='attention'``), and KR-GAL / FR-GAL
  losses from ``bireid.gal``. Default downsample: real, as the Bi-Real baseline the paper builds on; the
  paper's 12.51x accounting counts binary 1x1 downsamples (``--model.downsample binary``), which put a sign
  on the shortcut itself and, trained from random init, scramble the features (docs/methods.md).
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from ..gal import AttentionScale, build_gal_losses, unused_gal_keys
from .base import BINARY_CONFIG_KEYS, Method, register_method
from .distill import build_distillation


def _bireid_prepare(opts: dict[str, Any]) -> dict[str, Any]:
    mode = opts.pop("alpha_mode", "learned")
    if mode == "learned":
        return opts
    if mode != "attention":
        raise ValueError(f"alpha_mode must be 'learned' or 'attention', got {mode!r}")
    opts["scaling"] = AttentionScale  # a factory: AttentionScale(conv) -> module(weight) -> (Cout,)
    return opts


def _bireid_aux(model: nn.Module, cfg: Any, num_classes: int, teacher: nn.Module | None) -> list[nn.Module]:
    return list(build_gal_losses(model, cfg))


register_method(Method(
    name="real", paper="He et al., Deep Residual Learning for Image Recognition (CVPR 2016)",
    summary="full-precision ResNet (the accuracy reference and distillation teacher)", binary=False))

register_method(Method(
    name="xnor", paper="Rastegari et al., XNOR-Net (ECCV 2016)",
    summary="sign(x), sign(W) with clipped STE and alpha = mean|W| per filter; standard residual blocks",
    defaults=dict(act_binarizer="ste", weight_binarizer="ste", scaling="xnor", activation="none",
                  block_style="standard", downsample="binary"),
    config_keys=BINARY_CONFIG_KEYS))

register_method(Method(
    name="bireal", paper="Liu et al., Bi-Real Net (ECCV 2018)",
    summary="real shortcut around every binary conv, ApproxSign gradient, PReLU, no weight scale",
    defaults=dict(act_binarizer="approx", weight_binarizer="approx", scaling="none", activation="prelu",
                  block_style="bireal", downsample="real"),
    config_keys=BINARY_CONFIG_KEYS))

register_method(Method(
    name="reactnet", paper="Liu et al., ReActNet (ECCV 2020)",
    summary="Bi-Real layout with RSign thresholds, RPReLU and a KL distribution loss from a real teacher",
    defaults=dict(act_binarizer="rsign", weight_binarizer="ste", scaling="xnor", activation="rprelu",
                  block_style="bireal", downsample="binary"),
    config_keys=BINARY_CONFIG_KEYS, uses_teacher=True, aux=build_distillation))

register_method(Method(
    name="bireid", paper="Xu et al., BiRe-ID: Binary Neural Network for Efficient Person Re-ID (ACM TOMM 2022)",
    summary="Bi-Real layout with a learned channel-wise alpha refined by KR-GAL, plus FR-GAL on features",
    defaults=dict(act_binarizer="approx", weight_binarizer="approx", scaling="learned", activation="prelu",
                  block_style="bireal", downsample="real", alpha_mode="learned"),
    config_keys=BINARY_CONFIG_KEYS + ("gal.alpha_mode",), prepare=_bireid_prepare, aux=_bireid_aux,
    unused_keys=lambda cfg: unused_gal_keys(cfg.gal)))
