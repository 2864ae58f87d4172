"""The model optimizer and its learning-rate schedule: parameter groups, Adam/SGD, warmup + cosine/step."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..config import Config
from ..methods import get_method
from ..nn import is_binary_conv


def build_param_groups(model: nn.Module, cfg: Config) -> list[dict]:
    """Separate rates as the paper describes: latent binary weights, scale factors alpha, and the rest."""
    o = cfg.optim
    binary_w = [m.weight for m in model.modules() if is_binary_conv(m)]
    bw_ids = {id(p) for p in binary_w}
    alpha, other, weights = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in bw_ids:
            continue
        if "alpha" in name.split(".")[-1] or ".scaling." in name or ".scaler." in name:
            alpha.append(p)
        elif p.ndim <= 1:
            other.append(p)
        else:
            weights.append(p)
    binary = get_method(cfg.model.method).binary
    groups = [
        dict(params=weights, lr=o.lr, weight_decay=o.weight_decay, name="weights"),
        dict(params=binary_w, lr=o.lr, weight_decay=o.binary_weight_decay, name="binary_weights"),
        dict(params=alpha, lr=o.lr * o.alpha_lr_mult, weight_decay=0.0, name="alpha"),
        # BN/PReLU/thresholds: decayed like weights in float models (the strong baseline), not in binary ones.
        dict(params=other, lr=o.lr * o.other_lr_mult, weight_decay=0.0 if binary else o.weight_decay, name="other"),
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(groups: list[dict], cfg: Config) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.optimizer == "adam":
        return torch.optim.Adam(groups, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=True)


def lr_factor(step: int, iters_per_epoch: int, cfg: Config) -> float:
    """Linear warmup, then cosine (to 1% of the rate) or step decay; evaluated per iteration."""
    o, total = cfg.optim, cfg.train.epochs * iters_per_epoch
    warm = min(o.warmup_epochs * iters_per_epoch, max(total - 1, 0))
    if step < warm:
        return o.warmup_factor + (1.0 - o.warmup_factor) * step / max(warm, 1)
    if o.scheduler == "cosine":
        t = (step - warm) / max(total - warm, 1)
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))
    epoch = step / iters_per_epoch
    return o.gamma ** sum(1 for m in o.milestones if epoch >= m)


def build_scheduler(optimizer: torch.optim.Optimizer, iters_per_epoch: int,
                    cfg: Config) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-iteration schedule of :func:`lr_factor` (stepped once per training step)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, iters_per_epoch, cfg))
