"""One training step, in parts: the model's forward pass and loss terms, its update, and the discriminator
updates of the auxiliary losses (the AuxLoss contract, docs/ARCHITECTURE.md).

``train_step`` runs them in the order ``gal.disc_order`` names: the discriminators after the model step, or
before it (the paper's Algorithm 11: the discriminators ascend first, then the model plays against the updated
ones). Either way each ``discriminator_step`` gets the same ``outputs`` of this batch's forward pass.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..config import Config
from ..distributed import unwrap
from .setup import TrainingParts


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf or exploded; the last good checkpoint is left untouched."""


def train_step(parts: TrainingParts, images: torch.Tensor, targets: torch.Tensor, cfg: Config, epoch: int,
               step: int) -> dict[str, float]:
    """One iteration on a batch already on the device; returns the values to log (terms, D logs, loss, acc)."""
    outputs = forward(parts, images)
    d_first = cfg.gal.disc_order == "before"
    d_logs = update_discriminators(parts, outputs) if d_first else {}
    terms = loss_terms(parts, images, outputs, targets)
    loss = sum(terms.values())
    check_finite(loss, epoch, step, Path(cfg.train.output_dir))
    update_model(parts, loss, cfg)
    logs = {k: float(v.detach()) for k, v in terms.items()}
    logs.update(d_logs if d_first else update_discriminators(parts, outputs))
    logs["loss"] = float(loss.detach())
    if "logits" in outputs:  # a classifier (a detector has no per-image label to be accurate on)
        logs["acc"] = float((outputs["logits"].argmax(1) == targets).float().mean())
    return logs


def forward(parts: TrainingParts, images: torch.Tensor) -> dict[str, Any]:
    """The model's training outputs (under autocast when AMP is on)."""
    with torch.autocast(images.device.type, dtype=torch.float16, enabled=parts.use_amp):
        return parts.model(images)


def loss_terms(parts: TrainingParts, images: torch.Tensor, outputs: dict[str, Any],
               targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every loss term: the task's, then each AuxLoss's ``generator_loss`` (against the discriminators as they
    are now)."""
    with torch.autocast(images.device.type, dtype=torch.float16, enabled=parts.use_amp):
        terms = parts.loss_terms(outputs, targets)
        for a in parts.aux_losses:
            terms.update(a.generator_loss(unwrap(parts.model), images, outputs, targets))
    return terms


def update_model(parts: TrainingParts, loss: torch.Tensor, cfg: Config) -> None:
    """Backward through the model (AMP-scaled), optional gradient clipping, the optimizer and schedule step."""
    optimizer, scaler = parts.optimizer, parts.scaler
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if cfg.optim.grad_clip > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], cfg.optim.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    parts.scheduler.step()


def update_discriminators(parts: TrainingParts, outputs: dict[str, Any]) -> dict[str, float]:
    """Each AuxLoss updates its own discriminators from ``outputs``; returns their log values."""
    logs: dict[str, float] = {}
    for a in parts.aux_losses:
        logs.update(a.discriminator_step(outputs))
    return logs


def check_finite(loss: torch.Tensor, epoch: int, step: int, out: Path) -> None:
    v = float(loss.detach())
    if not math.isfinite(v) or abs(v) > 1e6:
        kept = out / "last.safetensors"
        where = f"the last good checkpoint {kept} is intact" if kept.exists() else "no checkpoint was written yet"
        raise TrainingDiverged(f"training loss became {v:.4g} at epoch {epoch + 1}, step {step + 1}: the run "
                               f"stopped; {where}. Try a lower --lr, --optim.grad_clip, or a longer warmup.")
