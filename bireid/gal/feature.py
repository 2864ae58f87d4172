"""FR-GAL: feature refinement of low-level stages towards (projected) high-level features.

Inputs: ``outputs["stages"]``, the backbone's four stage maps (low to high). The high-level feature
``a_H`` is the last stage, **detached**: FR-GAL sends no gradient to it (nor, therefore, to the last stage's
parameters). For each supervised stage s (``gal.fr_stages``, 1-based) with map ``a_L``:

    a*_H = nearest_resize(conv1x1_s(a_H))            to a_L's channels and spatial size
    L_MSE = mu/2 * mean((a_L - a*_H)^2)               per stage, summed over stages
    D_s real = pool(a*_H), fake = pool(a_L);  D_s maximises log D_s(a*_H) + log(1 - D_s(a_L))
    L_adv = fr_adv_weight * sum_s -log D_s(pool(a_L))  (non-saturating; minimised by the backbone)

Normalisation: the MSE is the **mean** over elements (batch, channels, positions), so mu does not depend
on batch size or resolution (a sum over a 256x128 batch would be ~1e6 times larger); with feature values
of O(1) the default mu=1e-2 (the top of the paper's sweep) makes it a gentle regulariser next to the ID
loss -- raise mu to strengthen it.
``pool`` is adaptive average pooling to a small ``grid`` (default 4x2, the 2:1 person aspect ratio),
flattened to ``C_s*8`` values, so D sees coarse spatial layout as well as channel statistics.

Who learns what:
- the 1x1 projections are trained by the *model* optimizer (``param_groups()``) from the MSE term only. They
  are on the "real" side of the GAN, and a real-side sample has no generator objective (the generator
  only controls the fake term), so they get no adversarial signal; ``a*_H`` is also detached inside D's step.
- the backbone's stages up to s get both the MSE and the adversarial gradient through ``a_L``.
- the discriminators are trained by their own Adam in ``discriminator_step``.

Collapse. With ``a_H`` detached, the MSE is minimised jointly by moving the projection towards a_L and a_L
towards the projection. The projection chasing a_L is intended: it learns the best linear read-out of the
low-level map from high-level semantics, and what it cannot explain is what the backbone is asked to make
consistent with the semantics. The trivial joint solution (a_L -> 0, projection -> 0) is not free: a_L
feeds every later stage and the identity / triplet losses on a_H, Bi-Real blocks add BN outputs to an
identity shortcut, and mu is small; the adversarial term also requires a_L to *look like* a projected
high-level map (in distribution), not merely to be close to it in L2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ConfigError
from .common import (
    AdversarialAux,
    Discriminator,
    discriminator_bce,
    frozen_logits,
    generator_bce,
    is_distributed,
    sync_grads_in_backward,
    with_noise,
)


class FeatureRefinement(AdversarialAux):
    """FR-GAL as an AuxLoss (see the module docstring and docs/ARCHITECTURE.md's AuxLoss contract).

    Args:
        stage_channels: channels of the backbone's stage maps (low to high; the last is ``a_H``).
        stages: supervised low-level stages, 1-based, each < len(stage_channels).
        mu: mu of ``mu/2 * mean((a_L - a*_H)^2)``.
        adv_weight: weight of the generator's adversarial term (0 disables the GAN part and its D steps).
        disc_lr, disc_hidden, disc_blocks: discriminator optimizer rate (Adam, betas 0.5/0.999) and MLP size.
        grid: (h, w) of the adaptive average pooling that turns a map into a discriminator sample.
        disc_noise: std of the instance noise added to every D input, relative to the RMS of the pooled
            low-level feature of the batch (0 = off); the start value when adapted.
        disc_target_acc: > 0 adapts the instance noise to hold D's accuracy near this value.
    """

    def __init__(self, stage_channels: Sequence[int], stages: Sequence[int] = (1, 2, 3), mu: float = 1e-3,
                 adv_weight: float = 1e-3, disc_lr: float = 1e-4, disc_hidden: int = 64, disc_blocks: int = 2,
                 grid: tuple[int, int] = (4, 2), disc_noise: float = 0.0, disc_target_acc: float = 0.0,
                 compare: str = "upsampled") -> None:
        super().__init__()
        chans = [int(c) for c in stage_channels]
        if len(chans) < 2:
            raise ValueError(f"FR-GAL needs at least two stages, got stage_channels={chans}")
        stages = [int(s) for s in stages]
        if not stages:
            raise ConfigError("gal.fr_stages is empty: FR-GAL needs at least one supervised stage")
        bad = [s for s in stages if not 1 <= s < len(chans)]
        if bad or len(set(stages)) != len(stages):
            raise ConfigError(f"gal.fr_stages must be distinct values in 1..{len(chans) - 1} (stage "
                             f"{len(chans)} is the high level), got {stages}")
        if mu < 0 or adv_weight < 0:
            raise ConfigError(f"FR-GAL weights must be >= 0, got gal.fr_mu={mu}, gal.fr_adv_weight={adv_weight}")
        gh, gw = (int(g) for g in grid)
        if gh <= 0 or gw <= 0:
            raise ConfigError(f"FR-GAL pooling grid must be positive, got {grid}")
        self.stage_channels = chans
        self.stages = sorted(stages)
        self.mu = float(mu)
        self.adv_weight = float(adv_weight)
        self.grid = (gh, gw)
        self.compare = compare
        self._init_noise(float(disc_noise), float(disc_target_acc))
        high = chans[-1]
        self.proj = nn.ModuleDict({str(s): nn.Conv2d(high, chans[s - 1], 1) for s in self.stages})
        self.discs = nn.ModuleDict({str(s): Discriminator(chans[s - 1] * gh * gw, disc_hidden, disc_blocks)
                                    for s in self.stages})
        self._init_optimizer(disc_lr)
        self._grad_sync = False

    def extra_repr(self) -> str:
        return (f"stages={self.stages}, mu={self.mu}, adv_weight={self.adv_weight}, grid={self.grid}, "
                f"noise={self.noise():.3g}, target_acc={self.target_acc}")

    def param_groups(self) -> list[dict]:
        """The 1x1 projections, trained by the model optimizer (weight decay left to the trainer)."""
        return [{"params": list(self.proj.parameters()), "name": "fr_gal_proj"}]

    def _stages(self, outputs: dict) -> list[torch.Tensor]:
        stages = outputs.get("stages") if isinstance(outputs, dict) else None
        if stages is None or len(stages) != len(self.stage_channels):
            n = "none" if stages is None else len(stages)
            raise ValueError(f"FR-GAL needs outputs['stages'] with {len(self.stage_channels)} maps, got {n}")
        return list(stages)

    def target(self, stage: int, a_high: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """a*_H for a stage: 1x1 projection of the (already detached) high-level map, NN-resized to ``like``."""
        conv = self.proj[str(stage)]
        t = conv(a_high.to(conv.weight.dtype) if not torch.is_autocast_enabled(a_high.device.type) else a_high)
        return F.interpolate(t, size=like.shape[-2:], mode="nearest")

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """A discriminator sample per image: adaptive average pool to ``grid``, flattened, float32."""
        return F.adaptive_avg_pool2d(x.float(), self.grid).flatten(1)

    def _noise_std(self, pooled_low: torch.Tensor) -> float | torch.Tensor:
        """Instance-noise std for a batch: the noise level times the (detached) RMS of the pooled a_L."""
        sigma = self.noise()
        if sigma <= 0:
            return 0.0
        return sigma * pooled_low.detach().pow(2).mean().sqrt()

    def generator_loss(self, model: nn.Module, images: torch.Tensor, outputs: dict,
                       targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """``fr_mse`` (mu/2 * mean squared error, summed over stages) and ``fr_adv`` (weighted -log D(a_L))."""
        if is_distributed() and not self._grad_sync:
            # The projections live outside the DDP-wrapped model: average their gradients across ranks.
            sync_grads_in_backward(self.proj)
            self._grad_sync = True
        maps = self._stages(outputs)
        a_high = maps[-1].detach()  # stop-gradient: no FR-GAL gradient reaches the high-level feature
        mse = torch.zeros((), device=a_high.device)
        adv = torch.zeros((), device=a_high.device)
        for s in self.stages:
            a_low = maps[s - 1]
            if self.mu > 0:
                if self.compare == "pooled":
                    low = F.adaptive_avg_pool2d(a_low.float(), a_high.shape[-2:])
                    mse = mse + F.mse_loss(low, self.target(s, a_high, low).float())
                else:
                    mse = mse + F.mse_loss(a_low.float(), self.target(s, a_high, a_low).float())
            if self.adv_weight > 0:
                fake = self.pool(a_low)
                fake = with_noise(fake, self._noise_std(fake))
                adv = adv + generator_bce(frozen_logits(self.discs[str(s)], fake))
        return {"fr_mse": 0.5 * self.mu * mse, "fr_adv": self.adv_weight * adv}

    def discriminator_step(self, outputs: dict) -> dict[str, float]:
        """One D update per supervised stage on this batch's detached maps: ``fr_d_loss``, ``fr_d_acc``."""
        if self.adv_weight <= 0:
            return {}
        maps = self._stages(outputs)
        a_high = maps[-1].detach()
        total = None
        correct = count = 0
        for s in self.stages:
            a_low = maps[s - 1].detach()
            with torch.no_grad():
                real = self.pool(self.target(s, a_high, a_low))
                fake = self.pool(a_low)
                std = self._noise_std(fake)
                real, fake = with_noise(real, std), with_noise(fake, std)
            d = self.discs[str(s)]
            loss, acc = discriminator_bce(d(real), d(fake))
            total = loss if total is None else total + loss
            correct += acc * (real.shape[0] + fake.shape[0])
            count += real.shape[0] + fake.shape[0]
        self._disc_update(total)
        acc = correct / max(1, count)
        noise = self.noise()
        self._adapt_noise(acc)
        return {"fr_d_loss": float(total.detach()), "fr_d_acc": acc, "fr_noise": noise}
