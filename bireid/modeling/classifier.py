"""The classification model of the image and point-cloud tasks: backbone -> global average pooling ->
[dropout] -> a real linear classifier.

The backbone contract is the re-ID one (``forward`` returns the stage maps, low to high); a point-cloud backbone's
last stage is already a global (N, C, 1, 1) map, for which the average pooling is the identity.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(backbone.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor | list[torch.Tensor]]:
        """Training: a dict with ``logits``, ``feat`` (the pooled feature) and ``stages`` (the backbone's maps, for
        feature-level losses). Evaluation: the logits, (N, num_classes)."""
        stages = self.backbone(x)
        f = F.adaptive_avg_pool2d(stages[-1], 1).flatten(1)
        logits = self.classifier(self.dropout(f))
        if not self.training:
            return logits
        return {"logits": logits, "feat": f, "stages": stages}

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of ``x`` in the current mode."""
        out = self(x)
        return out["logits"] if isinstance(out, dict) else out
