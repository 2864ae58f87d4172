"""Losses: label-smoothed cross-entropy, the batch-hard triplet loss, ``reid_loss_terms`` (the two as re-ID's
objective) and ``classification_loss_terms`` (the image and point-cloud tasks' objective)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def cross_entropy_label_smooth(logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """Cross-entropy against (1 - eps) * one_hot + eps / num_classes (Szegedy et al.)."""
    logp = F.log_softmax(logits.float(), dim=1)
    nll = -logp.gather(1, targets[:, None]).squeeze(1)
    uniform = -logp.mean(dim=1)
    return ((1.0 - epsilon) * nll + epsilon * uniform).mean()


def pairwise_euclidean(x: torch.Tensor) -> torch.Tensor:
    """Euclidean (not squared) distances between rows; the clamp keeps sqrt's gradient finite at 0."""
    x = x.float()
    sq = x.pow(2).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * x @ x.t()
    return d2.clamp_min(1e-12).sqrt()


def batch_hard_triplet_loss(feat: torch.Tensor, pids: torch.Tensor, margin: float = 0.3,
                            normalize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch-hard triplet loss (Hermans et al. 2017), vectorized.

    For each anchor: the farthest positive and the nearest negative in the batch. ``margin <= 0`` uses the
    soft margin ``softplus(d_ap - d_an)``. Returns (loss, fraction of anchors with d_an > d_ap).
    Anchors without a positive or without a negative in the batch are ignored.
    """
    if normalize:
        feat = F.normalize(feat, dim=1)
    dist = pairwise_euclidean(feat)
    same = pids[:, None] == pids[None, :]
    eye = torch.eye(len(pids), dtype=torch.bool, device=pids.device)
    pos_mask = same & ~eye
    neg_mask = ~same
    valid = pos_mask.any(1) & neg_mask.any(1)
    if not valid.any():
        zero = feat.sum() * 0.0
        return zero, zero.detach()
    d_ap = dist.masked_fill(~pos_mask, float("-inf")).max(1).values[valid]
    d_an = dist.masked_fill(~neg_mask, float("inf")).min(1).values[valid]
    if margin > 0:
        loss = F.relu(d_ap - d_an + margin).mean()
    else:
        loss = F.softplus(d_ap - d_an).mean()
    return loss, (d_an > d_ap).float().mean().detach()


def reid_loss_terms(outputs: dict[str, Any], targets: torch.Tensor, cfg: Any) -> dict[str, torch.Tensor]:
    """The re-ID objective as named terms (summed by the trainer): label-smoothed identity cross-entropy on the
    logits and, with ``cfg.triplet`` (``cfg`` is the config's loss section), the weighted batch-hard triplet
    loss on the pre-BN feature."""
    terms = {"ce": cross_entropy_label_smooth(outputs["logits"], targets, cfg.label_smoothing)}
    if cfg.triplet:
        tri, _prec = batch_hard_triplet_loss(outputs["feat"], targets, cfg.margin)
        terms["triplet"] = cfg.triplet_weight * tri
    return terms


def classification_loss_terms(outputs: dict[str, Any], targets: torch.Tensor, cfg: Any) -> dict[str, torch.Tensor]:
    """The classification objective as named terms: cross-entropy on the logits, label-smoothed by
    ``cfg.label_smoothing`` (``cfg`` is the config's loss section; 0 = plain cross-entropy)."""
    return {"ce": cross_entropy_label_smooth(outputs["logits"], targets, cfg.label_smoothing)}
