"""The re-ID model: backbone -> global pooling -> head.

Heads:
- ``bnneck``: pooled feature f (triplet loss) -> BatchNorm1d (BNNeck) -> linear classifier; test feature =
  the BN output.
- ``fc2``: pooled feature -> Linear(C, 512) = f (triplet loss) -> BatchNorm1d -> classifier: the paper's
  "FC, FC" head, with a 512-d embedding.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ReIDModel(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int, head: str = "bnneck", embed_dim: int = 512):
        super().__init__()
        if head not in ("bnneck", "fc2"):
            raise ValueError(f"unknown head {head!r}: use bnneck or fc2")
        self.backbone = backbone
        self.head_type = head
        c = backbone.out_channels
        self.embed = nn.Linear(c, embed_dim) if head == "fc2" else None
        self.feat_dim = embed_dim if head == "fc2" else c
        self.bnneck = nn.BatchNorm1d(self.feat_dim)
        self.bnneck.bias.requires_grad_(False)  # BNNeck: no shift, so the ID and metric spaces stay aligned
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.feat_dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)
        if self.embed is not None:
            nn.init.kaiming_normal_(self.embed.weight, mode="fan_out")
            nn.init.zeros_(self.embed.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor | list[torch.Tensor]]:
        """Training: a dict with ``logits``, ``feat`` (pre-BN), ``feat_bn`` and ``stages`` (the backbone's
        stage maps, for feature-level losses). Evaluation: the test feature (post-BN), shape (N, feat_dim)."""
        stages = self.backbone(x)
        f = F.adaptive_avg_pool2d(stages[-1], 1).flatten(1)
        if self.embed is not None:
            f = self.embed(f)
        fb = self.bnneck(f)
        if not self.training:
            return fb
        return {"logits": self.classifier(fb), "feat": f, "feat_bn": fb, "stages": stages}

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Identity logits of ``x`` in the current mode (eval: the classifier on the test feature)."""
        out = self(x)
        return out["logits"] if isinstance(out, dict) else self.classifier(out)
