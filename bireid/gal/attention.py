"""The attention-aware scale factor: ``alpha`` computed from the kernel by a squeeze-excitation-style gate.

``AttentionScale`` plugs into ``BinaryConv2d(scaling=...)`` (protocol of ``bireid.nn.scaling``:
``forward(weight) -> (Cout,)``). For a latent kernel ``W`` of shape ``(Cout, Cin, k, k)``:

    m_c = mean |W_c|                                   the XNOR-Net scale of output channel c
    s_c = [mean |W_c|, std W_c, mean W_c] / mean_c(m_c)  per-channel statistics, layer-scale free
    g   = 2 * sigmoid(FC2(SiLU(FC1(flatten(s)))))        (Cout,) gate in (0, 2): "squeeze" = the statistics,
                                                       "excitation" = an MLP mixing all channels
    alpha_c = m_c * exp(beta_c) * g_c                  beta: a learned per-channel log-offset (the learned base)

At initialisation ``FC2`` is zero and ``beta = 0``, so ``alpha = mean|W|`` (XNOR-Net) exactly; training moves
the gate per channel from the statistics of the *whole layer's* kernel (that is the attention: channels
compete through the shared MLP). ``alpha`` is positive by construction, and depends on ``W`` differentiably,
so KR-GAL's terms train the MLP, ``beta`` and (through ``m`` and the statistics) the latent weights.
Deploy time: alpha is a deterministic function of the trained weights, computed once and folded like any
per-channel scale; the MLP costs nothing at inference.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

_EPS = 1e-8


def _out_channels(source: nn.Module | torch.Tensor | int) -> int:
    if isinstance(source, int):
        return source
    if isinstance(source, torch.Tensor):
        return int(source.shape[0])
    w = getattr(source, "weight", None)
    if isinstance(w, torch.Tensor):
        return int(w.shape[0])
    n = getattr(source, "out_channels", None)
    if isinstance(n, int):
        return n
    raise TypeError(f"AttentionScale needs a conv (with .weight), a weight tensor or a channel count, got "
                    f"{type(source).__name__}")


class AttentionScale(nn.Module):
    """Attention-aware channel-wise scale of a binary conv (see the module docstring).

    Args:
        source: the conv it scales (``BinaryConv2d`` calls ``AttentionScale(conv)`` as a scaling factory), its
            weight tensor, or the number of output channels.
        reduction: hidden width of the gate MLP = max(4, Cout // reduction) (SE's reduction ratio). The MLP
            uses SiLU rather than SE's ReLU so none of its few hidden units can die.
    """

    def __init__(self, source: nn.Module | torch.Tensor | int, reduction: int = 16) -> None:
        super().__init__()
        cout = _out_channels(source)
        if cout <= 0 or reduction <= 0:
            raise ValueError(f"AttentionScale needs positive channels and reduction, got {cout}, {reduction}")
        hidden = max(4, cout // reduction)
        self.out_channels = cout
        self.fc1 = nn.Linear(3 * cout, hidden)
        self.fc2 = nn.Linear(hidden, cout)
        # Zero excitation => gate 1 => alpha = mean|W| at the start (a neutral, XNOR-equivalent init).
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)
        self.log_base = nn.Parameter(torch.zeros(cout))

    def statistics(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean|W| ``(Cout,)`` and the normalised statistics ``(Cout, 3)`` fed to the gate."""
        flat = weight.flatten(1)
        m = flat.abs().mean(1)
        std = flat.std(1, unbiased=False) if flat.shape[1] > 1 else torch.zeros_like(m)
        stats = torch.stack([m, std, flat.mean(1)], dim=1)
        return m, stats / (m.mean() + _EPS)

    def gate(self, weight: torch.Tensor) -> torch.Tensor:
        """The ``(Cout,)`` attention gate in (0, 2)."""
        return self._gate(self.statistics(weight)[1])

    def _gate(self, stats: torch.Tensor) -> torch.Tensor:
        z = self.fc2(F.silu(self.fc1(stats.reshape(1, -1).to(self.fc1.weight.dtype))))
        return 2.0 * torch.sigmoid(z.reshape(-1))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if weight.shape[0] != self.out_channels:
            raise ValueError(f"AttentionScale built for {self.out_channels} output channels, got a weight "
                             f"of shape {tuple(weight.shape)}")
        m, stats = self.statistics(weight)
        return m * torch.exp(self.log_base).to(m.dtype) * self._gate(stats).to(m.dtype)

    def extra_repr(self) -> str:
        return f"{self.out_channels}, hidden={self.fc1.out_features}"
