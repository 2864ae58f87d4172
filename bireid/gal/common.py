"""Pieces shared by KR-GAL and FR-GAL: the MLP discriminator, a base class owning discriminators and their
Adam optimizer (with the optimizer state inside ``state_dict()`` for exact resume), and DDP helpers
(``unwrap`` and ``is_distributed`` come from ``bireid.distributed``; kernel.py and feature.py import them here).

Discriminator conventions (both GALs): D outputs a *logit*; "real" samples get label 1, "fake" samples
label 0, and D maximises ``log D(real) + log(1 - D(fake))`` by minimising the binary cross-entropy with
logits. The generator side minimises the non-saturating ``-log D(fake)`` = BCE(D(fake), 1). In the generator
term D's parameters are used *detached* (``torch.func.functional_call``) so the model's backward pass never
accumulates gradients into D, and the model optimizer never sees them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from ..config import ConfigError
from ..distributed import is_distributed, unwrap
from ..nn import is_binary_conv

# Key under which the discriminator optimizer's per-parameter state is stored in state_dict() (flat tensors,
# so safetensors checkpoints hold it without pickling): "<prefix>disc_optimizer.<param index>.<name>".
OPT_KEY = "disc_optimizer"
# Adaptive instance noise (gal.disc_target_acc): per D step the std is multiplied by exp(RATE * (acc - target)),
# so a D at accuracy 1 against a target of 0.75 raises it 2.5% per step (x12 in 100 steps); start (when
# gal.disc_noise is 0) and ceiling in the samples' own units.
NOISE_RATE = 0.1
NOISE_FLOOR = 0.05
NOISE_CEIL = 10.0


def find_scaled_binary_convs(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Binary convs (``bireid.nn.is_binary_conv``) that have a scale: convs whose ``weight_scale()`` is None
    (no alpha to reconstruct with) are left out."""
    out = []
    for name, m in unwrap(model).named_modules():
        if not is_binary_conv(m):
            continue
        with torch.no_grad():
            if m.weight_scale() is None:
                continue
        out.append((name, m))
    return out


def backbone_of(model: nn.Module) -> nn.Module:
    """The backbone of a ReIDModel (``model.backbone``), or the model itself when it is a bare backbone."""
    m = unwrap(model)
    return getattr(m, "backbone", m)


class Discriminator(nn.Module):
    """An MLP ``in_dim -> hidden -> ... -> 1`` of Linear + LeakyReLU(0.2) blocks; returns a logit per row."""

    def __init__(self, in_dim: int, hidden: int = 64, blocks: int = 2) -> None:
        super().__init__()
        if in_dim <= 0 or hidden <= 0 or blocks <= 0:
            raise ValueError(f"Discriminator needs positive sizes, got in_dim={in_dim}, hidden={hidden}, "
                             f"blocks={blocks}")
        layers: list[nn.Module] = []
        d = in_dim
        for _ in range(blocks):
            layers += [nn.Linear(d, hidden), nn.LeakyReLU(0.2)]
            d = hidden
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)
        self.in_dim = in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def frozen_logits(disc: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``disc(x)`` with the discriminator's parameters detached: gradients reach ``x`` only."""
    params = {n: p.detach() for n, p in disc.named_parameters()}
    return functional_call(disc, params, (x,))


def with_noise(x: torch.Tensor, std: float | torch.Tensor) -> torch.Tensor:
    """``x`` plus Gaussian instance noise of standard deviation ``std`` (``x`` itself when std is 0).

    Why: KR-GAL's fake filters take two values per filter (+-alpha) while the latent filters are continuous,
    so the two sets never overlap and a discriminator separates them perfectly within a few hundred steps;
    noise on both sides makes the distributions overlap, keeps D uncertain and its gradient informative
    (instance noise, Sonderby et al. 2017; Arjovsky & Bottou 2017).
    """
    if isinstance(std, float) and std <= 0:
        return x
    return x + torch.randn_like(x) * std


def generator_bce(logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-log D(fake)`` averaged over samples (computed in float32)."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def discriminator_bce(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, float]:
    """D loss ``-[log D(real) + log(1 - D(fake))]`` (each side averaged) and D's accuracy on both sides."""
    real, fake = real.float(), fake.float()
    loss = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    with torch.no_grad():
        correct = (real > 0).sum() + (fake < 0).sum()
        acc = float(correct) / max(1, real.numel() + fake.numel())
    return loss, acc


def mean_over_ranks(value: float, device: torch.device) -> float:
    """``value`` averaged over ranks (itself in a single process): keeps per-rank controllers in step."""
    if not is_distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t) / dist.get_world_size()


def all_reduce_grads(params: Iterable[nn.Parameter]) -> None:
    """Average the gradients of ``params`` over ranks (no-op in a single process); one flat collective."""
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    i = 0
    for g in grads:
        g.copy_(flat[i:i + g.numel()].view_as(g))
        i += g.numel()


def _sync_grad_hook(p: torch.Tensor) -> None:
    # Parameters trained by the model optimizer but living outside the DDP-wrapped model (FR-GAL's
    # projections) would otherwise drift apart across ranks. The hook runs during backward in the same
    # autograd order on every rank, so the collectives line up.
    if is_distributed() and p.grad is not None:
        dist.all_reduce(p.grad)
        p.grad /= dist.get_world_size()


def sync_grads_in_backward(module: nn.Module) -> None:
    """Register hooks averaging the gradients of ``module``'s parameters across ranks during backward."""
    for p in module.parameters():
        p.register_post_accumulate_grad_hook(_sync_grad_hook)


class AdversarialAux(nn.Module):
    """Base of the GAL losses: owns ``discs`` (an ``nn.ModuleDict`` of discriminators) and their Adam.

    ``state_dict()`` holds the discriminators, any other submodules, and the optimizer's per-parameter
    state as flat tensors (``disc_optimizer.<i>.step|exp_avg|exp_avg_sq``); ``load_state_dict`` restores all
    of it, so a resumed run continues the discriminator updates exactly. Hyper-parameters (lr, betas) come
    from the config, not the checkpoint.
    """

    discs: nn.ModuleDict
    noise_std: torch.Tensor

    def _init_optimizer(self, lr: float) -> None:
        if lr <= 0:
            raise ConfigError(f"gal.disc_lr must be positive, got {lr}")
        self.d_opt = torch.optim.Adam(self.discs.parameters(), lr=lr, betas=(0.5, 0.999))

    def _init_noise(self, start: float, target_acc: float = 0.0) -> None:
        """Instance noise: a fixed std, or (``target_acc`` > 0) one adapted after every D step.

        Why adaptive: a fixed std that keeps D honest on one data set lets it win outright on another; a
        controller that raises the noise while D's accuracy is above the target (and lowers it, down to
        ``start``, while below) holds D near the target without per-data-set tuning (the feedback idea of
        StyleGAN2-ADA, applied to instance noise). The std is a buffer, so it is checkpointed and resumed.
        """
        if start < 0:
            raise ConfigError(f"gal.disc_noise must be >= 0, got {start}")
        if not 0 <= target_acc < 1:
            raise ConfigError(f"gal.disc_target_acc must lie in [0, 1), got {target_acc}")
        self.target_acc = float(target_acc)
        self.noise_floor = float(start) if start > 0 or target_acc <= 0 else NOISE_FLOOR
        self.register_buffer("noise_std", torch.tensor(self.noise_floor))

    def _adapt_noise(self, acc: float) -> None:
        if self.target_acc <= 0:
            return
        acc = mean_over_ranks(acc, self.noise_std.device)
        new = float(self.noise_std) * math.exp(NOISE_RATE * (acc - self.target_acc))
        self.noise_std.fill_(min(max(new, self.noise_floor), NOISE_CEIL))

    def noise(self) -> float:
        """The current instance-noise std (in the units each GAL defines)."""
        return float(self.noise_std)

    def param_groups(self) -> list[dict]:
        """Extra parameters for the model optimizer (none by default)."""
        return []

    def _disc_update(self, loss: torch.Tensor) -> None:
        """One Adam step on the discriminators from ``loss`` (gradients averaged over ranks under DDP)."""
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        all_reduce_grads(self.discs.parameters())
        self.d_opt.step()

    # ---- optimizer state inside state_dict (flat tensors, safetensors-friendly)
    def _save_to_state_dict(self, destination, prefix, keep_vars):  # type: ignore[override]
        super()._save_to_state_dict(destination, prefix, keep_vars)
        for idx, st in self.d_opt.state_dict()["state"].items():
            for name, val in st.items():
                t = val if isinstance(val, torch.Tensor) else torch.tensor(float(val))
                destination[f"{prefix}{OPT_KEY}.{idx}.{name}"] = t if keep_vars else t.detach()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,  # type: ignore[override]
                              unexpected_keys, error_msgs):
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        if f"{prefix}noise_std" in missing_keys:  # written before adaptive noise existed: keep the start value
            missing_keys.remove(f"{prefix}noise_std")
        head = f"{prefix}{OPT_KEY}."
        n_params = sum(len(g["params"]) for g in self.d_opt.param_groups)
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key in list(state_dict.keys()):
            if not key.startswith(head):
                continue
            if key in unexpected_keys:
                unexpected_keys.remove(key)
            idx_s, _, name = key[len(head):].partition(".")
            if not idx_s.isdigit() or not name or int(idx_s) >= n_params:
                error_msgs.append(f"discriminator optimizer state key '{key}' does not fit this module "
                                  f"({n_params} discriminator parameters)")
                continue
            state.setdefault(int(idx_s), {})[name] = state_dict[key].clone()
        # No entries = a checkpoint written before the first discriminator step: start Adam afresh.
        groups = self.d_opt.state_dict()["param_groups"]
        self.d_opt.load_state_dict({"state": state, "param_groups": groups})
