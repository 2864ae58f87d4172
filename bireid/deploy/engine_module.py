"""A deployed ``.bnn`` model as a torch module, so that bireid's evaluation code (loaders, flip, distances,
re-ranking, CMC/mAP/mINP) measures the engine's features exactly as it measures a checkpoint's."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from ..runtime import BNNModel


class EngineModule(nn.Module):
    """``EngineModule(BNNModel.load("x.bnn"))(images) -> (N, D)`` features from the bit-packed engine.

    Inference only (no gradients, CPU); ``images`` are normalised (N, 3, H, W) batches at the model's input size.
    """

    def __init__(self, engine: BNNModel) -> None:
        super().__init__()
        self.engine = engine

    @property
    def input_size(self) -> tuple[int, int]:
        return self.engine.input_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(images.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(self.engine.forward(x))
