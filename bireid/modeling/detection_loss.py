"""CenterNet's objective (Zhou et al. 2019): the penalty-reduced pixel-wise focal loss on the centre heatmap
(alpha 2, beta 4, normalised by the number of people) and L1 losses on size (weight 0.1) and offset (weight 1)
at the box centres. Targets are ``bireid.boxes.encode``'s dense maps."""

from __future__ import annotations

import torch
import torch.nn.functional as F

SIZE_WEIGHT = 0.1
OFFSET_WEIGHT = 1.0
_CLAMP = 9.21  # |logit| bound: the reference clamps the sigmoid to [1e-4, 1 - 1e-4]


def centernet_loss_terms(outputs: dict, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    head = outputs["head"].float()
    t = targets.float()
    x = head[:, 0].clamp(-_CLAMP, _CLAMP)
    gt = t[:, 0]
    pos = gt.eq(1).float()
    p = torch.sigmoid(x)
    pos_loss = F.logsigmoid(x) * (1 - p) ** 2 * pos
    neg_loss = F.logsigmoid(-x) * p ** 2 * (1 - gt) ** 4 * (1 - pos)
    n = pos.sum().clamp(min=1.0)
    mask = t[:, 5:6]
    denom = (mask.sum() * 2).clamp(min=1.0)
    size = (torch.abs(head[:, 1:3] - t[:, 1:3]) * mask).sum() / denom
    offset = (torch.abs(head[:, 3:5] - t[:, 3:5]) * mask).sum() / denom
    return {"det_heatmap": -(pos_loss.sum() + neg_loss.sum()) / n, "det_size": SIZE_WEIGHT * size,
            "det_offset": OFFSET_WEIGHT * offset}
