"""KR-GAL: kernel refinement of every binary conv by reconstruction (MSE) and an adversarial loss.

For binary conv i with latent weight ``w_i`` ``(Cout, Cin, k, k)``, scale ``alpha_i`` ``(Cout,)``
(``conv.weight_scale()``) and ``b_i = sign(w_i)`` (``conv.binary_weight()``, ApproxSign gradient), the
reconstruction is ``w^_i = alpha_i o b_i`` and

    L_MSE = lambda/2 * sum_i ||w_i - alpha_i o b_i||^2

**summed** over every element of every layer (no mean): this is the paper's form, and its lambda range
[0, 1e-4] only makes sense for a sum (a ResNet-18 sum is O(1e3) at init, so lambda=1e-4 gives O(0.1)). Its
gradient w.r.t. alpha is ``-lambda * sum_{Cin,k,k} (w - alpha o b) o b`` per output channel; w receives
``lambda (w - alpha b)`` plus the ApproxSign term through b.

Adversarial part. A discriminator *sample* is one output filter, flattened (``Cin*k*k`` values): real =
the latent filter ``w_i[c]``, fake = its reconstruction ``alpha_i[c] * b_i[c]``. Both are divided by the
same per-layer constant (the detached RMS of ``w_i``) so layers of different magnitude share a
discriminator and D sees O(1) inputs; the constant is shared by real and fake, so the magnitude of alpha
relative to w is still visible to D and alpha gets an adversarial gradient. Filter sizes differ across
layers, so there is **one discriminator per distinct filter shape** ``(Cin, k, k)``, shared by all layers of
that shape (ResNet-18: 3x3 convs at 4 widths + 1x1 downsamples at 3 = 7 small MLPs). Cost is bounded by
drawing at most ``filters_per_layer`` random filters per layer and step (fresh draws for the D step).
D maximises ``log D(w) + log(1 - D(alpha o b))``; (w, alpha) minimise ``kr_adv_weight * -log D(alpha o b)``
(the non-saturating form; the fake side is the only one the generator controls, as in the paper).
What this pushes for: a filter whose reconstruction is indistinguishable from the latent filter, i.e.
latent weights that cluster at ±alpha and an alpha matching their magnitude -- less quantization error.

The loss applies whether or not the convs currently binarize their weights (two-step schedules): pulling
the latent weights towards ±alpha during the real-weight phase eases the switch.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn as nn

from ..config import ConfigError
from .common import (
    AdversarialAux,
    Discriminator,
    discriminator_bce,
    find_scaled_binary_convs,
    frozen_logits,
    generator_bce,
    unwrap,
    with_noise,
)


class _PaperKernelMSE(torch.autograd.Function):
    """``sum ||w - alpha o sign(w)||^2`` whose backward gives the gradients the paper prints.

    Times lambda/2 (applied outside): ``dL/dw = lambda (w - alpha b) o alpha`` and ``dL/dalpha = -lambda *
    sum_{Cin,k,k} (w - alpha b) o b``. Plain autograd would give w ``lambda (w - alpha b)`` (no factor alpha,
    ~mean|w| ~ 1/20 of it) plus an ApproxSign term through b.
    """

    @staticmethod
    def forward(ctx, w: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        a = alpha.view(-1, 1, 1, 1)
        b = torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
        err = w - a * b
        ctx.save_for_backward(err, b, a)
        return err.pow(2).sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        err, b, a = ctx.saved_tensors
        return 2 * grad * err * a, -2 * grad * (err * b).sum(dim=(1, 2, 3))


def _shape_key(weight: torch.Tensor) -> str:
    _, cin, kh, kw = weight.shape
    return f"{cin}x{kh}x{kw}"


def _rms(w: torch.Tensor) -> torch.Tensor:
    """Detached RMS of a weight: the per-layer constant both real and fake filters are divided by."""
    return (torch.linalg.vector_norm(w.detach().float()) / w.numel() ** 0.5).clamp_min(1e-12)


class KernelRefinement(AdversarialAux):
    """KR-GAL as an AuxLoss (see the module docstring and docs/ARCHITECTURE.md's AuxLoss contract).

    Args:
        model: the model (or DDP wrapper) whose scaled binary convs are refined.
        lam: lambda of ``lambda/2 * sum ||w - alpha o sign(w)||^2``.
        adv_weight: weight of the generator's adversarial term (0 disables the GAN part and its D steps).
        disc_lr: Adam learning rate of the discriminators (betas 0.5, 0.999).
        disc_hidden: hidden width of the discriminator MLPs.
        filters_per_layer: filters drawn per layer and step for the discriminator (<= 0: all filters).
        disc_blocks: Linear + LeakyReLU blocks per discriminator.
        disc_noise: std of the instance noise added to every D input (filters are in units of the layer's
            RMS, so this is relative to the latent weights' scale; 0 = off); the start value when adapted.
        grad: ``'autograd'`` (plain autograd of both terms) or ``'paper'`` (the printed gradients: see
            ``_PaperKernelMSE`` and ``_paper_adversarial``).
        disc_target_acc: > 0 adapts the instance noise to hold D's accuracy near this value.
    """

    def __init__(self, model: nn.Module, lam: float = 1e-4, adv_weight: float = 1e-4, disc_lr: float = 1e-4,
                 disc_hidden: int = 64, filters_per_layer: int = 32, disc_blocks: int = 2,
                 disc_noise: float = 0.0, grad: str = "autograd", disc_target_acc: float = 0.0) -> None:
        super().__init__()
        if lam < 0 or adv_weight < 0:
            raise ConfigError(f"KR-GAL weights must be >= 0, got gal.kr_lambda={lam}, gal.kr_adv_weight={adv_weight}")
        if grad not in ("autograd", "paper"):
            raise ConfigError(f"gal.kr_grad must be 'autograd' or 'paper', got {grad!r}")
        convs = find_scaled_binary_convs(model)
        if not convs:
            raise ConfigError("KR-GAL needs binary convs with a channel-wise scale (e.g. --method bireid); this "
                             "model has none")
        self.lam = float(lam)
        self.adv_weight = float(adv_weight)
        self.filters_per_layer = int(filters_per_layer)
        self.grad = grad
        self._init_noise(float(disc_noise), float(disc_target_acc))
        self.discs = nn.ModuleDict()
        for _, conv in convs:
            key = _shape_key(conv.weight)
            if key not in self.discs:
                self.discs[key] = Discriminator(conv.weight[0].numel(), disc_hidden, disc_blocks)
        self._init_optimizer(disc_lr)
        # Plain attributes (not submodules): the convs belong to the model, not to this module's state.
        self._convs: list[tuple[str, nn.Module]] = convs
        self._model_ref = weakref.ref(unwrap(model))

    def extra_repr(self) -> str:
        return (f"layers={len(self._convs)}, lam={self.lam}, adv_weight={self.adv_weight}, grad={self.grad}, "
                f"filters_per_layer={self.filters_per_layer}, noise={self.noise():.3g}, target_acc={self.target_acc}")

    def _resolve(self, model: nn.Module | None) -> list[tuple[str, nn.Module]]:
        if model is None or unwrap(model) is self._model_ref():
            return self._convs
        convs = find_scaled_binary_convs(model)
        missing = sorted({_shape_key(c.weight) for _, c in convs} - set(self.discs.keys()))
        if missing:
            raise ValueError(f"KR-GAL was built for another model: no discriminator for filter shapes {missing}")
        self._convs, self._model_ref = convs, weakref.ref(unwrap(model))
        return convs

    def _pick(self, cout: int, device: torch.device) -> torch.Tensor | None:
        if self.filters_per_layer <= 0 or cout <= self.filters_per_layer:
            return None
        return torch.randperm(cout, device=device)[: self.filters_per_layer]

    @staticmethod
    def _reconstruct(conv: nn.Module) -> torch.Tensor:
        """alpha o sign(w), differentiable w.r.t. alpha and (ApproxSign) w."""
        w = conv.weight
        return conv.weight_scale().to(w.dtype).view(-1, 1, 1, 1) * conv.binary_weight().to(w.dtype)

    def _fake_samples(self, conv: nn.Module, rec: torch.Tensor) -> torch.Tensor:
        """Reconstructed filters ``alpha[c] * sign(w[c])`` of a random subset of channels, one row each."""
        idx = self._pick(rec.shape[0], rec.device)
        fake = rec if idx is None else rec[idx]
        return fake.flatten(1).float() / _rms(conv.weight)

    def generator_loss(self, model: nn.Module, images: torch.Tensor, outputs: dict,
                       targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """``kr_mse`` (lambda/2 * sum of squared reconstruction errors) and ``kr_adv`` (weighted adversarial)."""
        convs = self._resolve(model)
        device = convs[0][1].weight.device
        zero = torch.zeros((), device=device)
        out = {"kr_mse": zero, "kr_adv": zero}
        if self.lam > 0:
            out["kr_mse"] = 0.5 * self.lam * sum(self._mse(conv) for _, conv in convs)
        if self.adv_weight > 0:
            adv = self._paper_adversarial(convs) if self.grad == "paper" else self._autograd_adversarial(convs)
            out["kr_adv"] = self.adv_weight * adv
        return out

    def _mse(self, conv: nn.Module) -> torch.Tensor:
        w, alpha = conv.weight.float(), conv.weight_scale().float()
        if self.grad == "paper":
            return _PaperKernelMSE.apply(w, alpha)
        return (w - self._reconstruct(conv).float()).pow(2).sum()

    def _autograd_adversarial(self, convs: list[tuple[str, nn.Module]]) -> torch.Tensor:
        """Non-saturating ``-log D(alpha o b)``: alpha, and w through b's ApproxSign, on the fake side only."""
        fakes: dict[str, list[torch.Tensor]] = {}
        for _, conv in convs:
            fakes.setdefault(_shape_key(conv.weight), []).append(self._fake_samples(conv, self._reconstruct(conv)))
        sigma = self.noise()
        logits = torch.cat([frozen_logits(self.discs[k], with_noise(torch.cat(v), sigma)) for k, v in fakes.items()])
        return generator_bce(logits)

    def _paper_adversarial(self, convs: list[tuple[str, nn.Module]]) -> torch.Tensor:
        """The minimax ``log D(w) + log(1 - D(alpha o b))`` with b held fixed.

        Its gradients are the printed ones: w gets ``(1/D(w)) dD/dw`` through the *real* side, alpha gets
        ``-1/(1 - D(alpha b)) dD/d(alpha b) b`` through the fake side; w gets nothing through sign().
        """
        reals: dict[str, list[torch.Tensor]] = {}
        fakes: dict[str, list[torch.Tensor]] = {}
        for _, conv in convs:
            w = conv.weight
            idx = self._pick(w.shape[0], w.device)
            ws = w if idx is None else w[idx]
            a = conv.weight_scale()
            a = a if idx is None else a[idx]
            b = torch.where(ws.detach() >= 0, 1.0, -1.0)
            scale = _rms(w)
            key = _shape_key(w)
            reals.setdefault(key, []).append(ws.flatten(1).float() / scale)
            fakes.setdefault(key, []).append((a.float().view(-1, 1, 1, 1) * b).flatten(1) / scale)
        sigma = self.noise()
        real = torch.cat([frozen_logits(self.discs[k], with_noise(torch.cat(v), sigma)) for k, v in reals.items()])
        fake = torch.cat([frozen_logits(self.discs[k], with_noise(torch.cat(v), sigma)) for k, v in fakes.items()])
        d_loss, _ = discriminator_bce(real, fake)
        return -d_loss

    def discriminator_step(self, outputs: dict | None = None) -> dict[str, float]:
        """One D update on fresh filter samples of the current weights: ``kr_d_loss``, ``kr_d_acc``."""
        if self.adv_weight <= 0:
            return {}
        reals: dict[str, list[torch.Tensor]] = {}
        fakes: dict[str, list[torch.Tensor]] = {}
        with torch.no_grad():
            for _, conv in self._convs:
                w = conv.weight
                scale = _rms(w)
                idx = self._pick(w.shape[0], w.device)
                alpha = conv.weight_scale().float()
                ws = w.float() if idx is None else w[idx].float()
                a = alpha if idx is None else alpha[idx]
                # Only the drawn filters are reconstructed (sign(0) = +1, the BinaryConv2d convention).
                rec = a.view(-1, 1, 1, 1) * torch.where(ws >= 0, 1.0, -1.0)
                key = _shape_key(w)
                reals.setdefault(key, []).append(ws.flatten(1) / scale)
                fakes.setdefault(key, []).append(rec.flatten(1) / scale)
        n = self.noise()
        real_logits = torch.cat([self.discs[k](with_noise(torch.cat(v), n)) for k, v in reals.items()])
        fake_logits = torch.cat([self.discs[k](with_noise(torch.cat(v), n)) for k, v in fakes.items()])
        loss, acc = discriminator_bce(real_logits, fake_logits)
        self._disc_update(loss)
        self._adapt_noise(acc)
        return {"kr_d_loss": float(loss.detach()), "kr_d_acc": acc, "kr_noise": n}
