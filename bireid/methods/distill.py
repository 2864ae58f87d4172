"""ReActNet's distribution loss: the student matches a frozen real-valued teacher's class distribution."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


class DistillationLoss(nn.Module):
    """AuxLoss: ``weight * T^2 * KL(softmax(t / T) || softmax(s / T))`` on identity logits.

    ReActNet writes the loss as the soft cross-entropy ``-sum p_t log p_s``; KL differs from it only by the
    teacher's entropy, a constant, so the gradients are identical and the logged value is 0 at a perfect
    match. Teacher logits are ``teacher.logits(images)`` with the teacher in eval mode (an eval ReIDModel returns
    its test feature, a Classifier its logits; ``logits`` gives class scores for both), computed without gradient.

    The teacher is kept out of ``state_dict()`` (it is not trained and has its own checkpoint) but follows
    ``.to(device)``; ``train()`` never switches it out of eval mode.
    """

    def __init__(self, teacher: nn.Module, num_classes: int, weight: float = 1.0, temperature: float = 1.0):
        super().__init__()
        clf = getattr(teacher, "classifier", None)
        if not isinstance(clf, nn.Linear):
            raise ValueError("the distillation teacher must be a bireid model (ReIDModel or Classifier) with a linear "
                             "'classifier' head")
        if clf.out_features != num_classes:
            raise ValueError(f"the teacher classifies {clf.out_features} identities but the student "
                             f"{num_classes}: train the teacher on the same training set")
        if temperature <= 0:
            raise ValueError(f"distillation temperature must be positive, got {temperature}")
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        object.__setattr__(self, "teacher", teacher)  # not a registered submodule: no state_dict entries
        self.weight = float(weight)
        self.temperature = float(temperature)

    def _apply(self, fn, recurse: bool = True):  # type: ignore[override]
        self.teacher._apply(fn)
        return super()._apply(fn, recurse)

    def train(self, mode: bool = True) -> DistillationLoss:
        super().train(mode)
        self.teacher.eval()
        return self

    @torch.no_grad()
    def teacher_logits(self, images: torch.Tensor) -> torch.Tensor:
        self.teacher.eval()
        return self.teacher.logits(images).float()

    def generator_loss(self, model: nn.Module, images: torch.Tensor, outputs: dict[str, Any],
                       targets: torch.Tensor) -> dict[str, torch.Tensor]:
        s = outputs["logits"].float()
        t = self.teacher_logits(images)
        if t.shape != s.shape:
            raise ValueError(f"teacher logits {tuple(t.shape)} and student logits {tuple(s.shape)} differ")
        T = self.temperature
        kl = F.kl_div(F.log_softmax(s / T, dim=1), F.log_softmax(t / T, dim=1), reduction="batchmean",
                      log_target=True)
        return {"distill": self.weight * T * T * kl}

    def discriminator_step(self, outputs: dict[str, Any]) -> dict[str, float]:
        return {}

    def param_groups(self) -> list[dict]:
        return []


def build_distillation(model: nn.Module, cfg: Any, num_classes: int,
                       teacher: nn.Module | None) -> list[nn.Module]:
    """ReActNet's AuxLoss list: one DistillationLoss when a teacher is given (``model.teacher``), else nothing."""
    if teacher is None:
        return []
    return [DistillationLoss(teacher, num_classes, weight=cfg.loss.distill_weight)]
