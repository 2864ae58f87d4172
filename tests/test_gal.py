"""KR-GAL, FR-GAL and the attention-aware scale (bireid.gal)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import yaml

import bireid
from bireid.config import Config
from bireid.gal import (
    AttentionScale,
    FeatureRefinement,
    KernelRefinement,
    build_gal_losses,
    find_scaled_binary_convs,
)
from bireid.nn import BinaryConv2d

torch.set_num_threads(1)


def tiny_model(**kw) -> nn.Module:
    torch.manual_seed(0)
    m = bireid.create_model("resnet18", num_classes=4, method="bireid", width=8, **kw)
    return m.train()


def batch(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 32, 16, generator=g), torch.arange(n) % 4


def cfg_with(**gal) -> Config:
    cfg = Config()
    for k, v in gal.items():
        setattr(cfg.gal, k, v)
    return cfg


# ------------------------------------------------------------------------------------------------ KR-GAL
def test_kr_mse_value_and_alpha_gradient_match_the_formula():
    model = tiny_model()
    lam = 1e-2
    kr = KernelRefinement(model, lam=lam, adv_weight=0.0)
    x, y = batch()
    terms = kr.generator_loss(model, x, None, y)
    convs = find_scaled_binary_convs(model)
    assert len(convs) > 10
    with torch.no_grad():
        expect = sum(((c.weight - c.scaling.alpha.view(-1, 1, 1, 1) * torch.where(c.weight >= 0, 1.0, -1.0))
                      ** 2).sum() for _, c in convs)
    torch.testing.assert_close(terms["kr_mse"], lam / 2 * expect)
    assert float(terms["kr_adv"]) == 0.0
    terms["kr_mse"].backward()
    for name, c in convs:
        w, a = c.weight.detach(), c.scaling.alpha.detach()
        b = torch.where(w >= 0, 1.0, -1.0)
        grad = -lam * ((w - a.view(-1, 1, 1, 1) * b) * b).sum(dim=(1, 2, 3))
        torch.testing.assert_close(c.scaling.alpha.grad, grad, msg=name)
        assert c.weight.grad is not None and c.weight.grad.abs().sum() > 0


def _single_conv_model() -> nn.Module:
    """One 2->3 3x3 binary conv with a learned alpha and hand-set weights (a hand-sized case)."""
    torch.manual_seed(3)
    conv = BinaryConv2d(2, 3, 3, padding=1, scaling="learned")
    with torch.no_grad():
        conv.weight.copy_(torch.linspace(-0.4, 0.5, conv.weight.numel()).view_as(conv.weight) ** 3)
        conv.scaling.alpha.copy_(torch.tensor([0.02, 0.05, 0.11]))
    return nn.Sequential(conv)


def test_paper_kr_mse_gradients_equal_the_printed_formulas():
    """dL/dw = lambda (w - alpha b) alpha and dL/dalpha = -lambda sum (w - alpha b) b, element by element."""
    model = _single_conv_model()
    conv = model[0]
    lam = 0.3
    kr = KernelRefinement(model, lam=lam, adv_weight=0.0, grad="paper")
    terms = kr.generator_loss(model, None, None, None)
    w, a = conv.weight.detach().tolist(), conv.scaling.alpha.detach().tolist()
    value, gw, ga = 0.0, [], []
    for c, filt in enumerate(w):  # plain loops: the printed formulas, one element at a time
        g_alpha = 0.0
        for plane in filt:
            for row in plane:
                for x in row:
                    b = 1.0 if x >= 0 else -1.0
                    err = x - a[c] * b
                    value += 0.5 * lam * err * err
                    gw.append(lam * err * a[c])
                    g_alpha -= lam * err * b
        ga.append(g_alpha)
    assert float(terms["kr_mse"].detach()) == pytest.approx(value, rel=1e-6)
    terms["kr_mse"].backward()
    torch.testing.assert_close(conv.weight.grad.flatten(), torch.tensor(gw))
    torch.testing.assert_close(conv.scaling.alpha.grad, torch.tensor(ga))
    # plain autograd differs by the factor alpha on w (and an ApproxSign term): the two readings are distinct
    model.zero_grad()
    KernelRefinement(model, lam=lam, adv_weight=0.0, grad="autograd").generator_loss(model, None, None, None)[
        "kr_mse"].backward()
    assert not torch.allclose(conv.weight.grad.flatten(), torch.tensor(gw))


def test_paper_kr_adversarial_gradients_equal_the_printed_formulas():
    """w through the real side: (1/D(w)) dD/dw; alpha through the fake side: -1/(1 - D(alpha b)) dD/d(alpha b) b."""
    model = _single_conv_model()
    conv = model[0]
    kr = KernelRefinement(model, lam=0.0, adv_weight=0.7, grad="paper", filters_per_layer=0)
    disc = next(iter(kr.discs.values()))
    kr.generator_loss(model, None, None, None)["kr_adv"].backward()
    w, a = conv.weight.detach(), conv.scaling.alpha.detach()
    rms = float(w.pow(2).mean().sqrt())
    n = w.shape[0]

    def d_and_grad(x: torch.Tensor) -> tuple[float, torch.Tensor]:  # D(x) = sigmoid(logit) and its gradient
        x = x.clone().requires_grad_(True)
        d = torch.sigmoid(disc(x[None]))[0]
        (g,) = torch.autograd.grad(d, x)
        return float(d.detach()), g

    for c in range(n):
        d_real, g_real = d_and_grad(w[c].flatten() / rms)
        expect_w = 0.7 / n * (1 / d_real) * g_real / rms  # each side's term is a mean over the n filters
        torch.testing.assert_close(conv.weight.grad[c].flatten(), expect_w)
        b = torch.where(w[c] >= 0, 1.0, -1.0).flatten()
        d_fake, g_fake = d_and_grad(a[c] * b / rms)
        expect_a = 0.7 / n * (-1 / (1 - d_fake)) * float((g_fake * b).sum()) / rms
        assert float(conv.scaling.alpha.grad[c]) == pytest.approx(expect_a, rel=1e-4)
    assert all(p.grad is None for p in disc.parameters())


def test_kr_adversarial_gradient_reaches_alpha_and_weights_not_discriminator():
    model = tiny_model()
    kr = KernelRefinement(model, lam=0.0, adv_weight=1.0, filters_per_layer=0)
    x, y = batch()
    terms = kr.generator_loss(model, x, None, y)
    assert float(terms["kr_mse"].detach()) == 0.0 and float(terms["kr_adv"].detach()) > 0
    terms["kr_adv"].backward()
    for name, c in find_scaled_binary_convs(model):
        assert c.scaling.alpha.grad is not None and c.scaling.alpha.grad.abs().sum() > 0, name
        assert c.weight.grad is not None and c.weight.grad.abs().sum() > 0, name
    # The generator term uses D's parameters detached: the model backward leaves D untouched.
    assert all(p.grad is None for p in kr.discs.parameters())
    assert kr.param_groups() == []


def test_alpha_before_batchnorm_leaves_the_forward_pass_unchanged():
    """Where alpha sits: each binary conv feeds a BatchNorm, which divides out any positive per-channel scale,
    so the identity loss gives alpha no gradient -- alpha is shaped by KR-GAL's terms alone, and KR-GAL acts
    on the network through the latent weights (docs/methods.md, RESULTS.md section 6). Float64, because in
    float32 rounding-level differences flip the sign of near-zero activations and grow from there."""
    m = tiny_model().double()
    x, y = batch()
    x = x.double()
    out = m(x)
    nn.functional.cross_entropy(out["logits"], y).backward()
    convs = [c for _, c in find_scaled_binary_convs(m)]
    g_alpha = max(float(c.scaling.alpha.grad.abs().max()) for c in convs)
    g_w = max(float(c.weight.grad.abs().max()) for c in convs)
    assert g_w > 1e-6 and g_alpha < 1e-2 * g_w, (g_alpha, g_w)  # not exactly 0: BN's eps
    with torch.no_grad():
        for c in convs:
            c.scaling.alpha.mul_(torch.rand_like(c.scaling.alpha) * 3 + 0.5)
    torch.testing.assert_close(m(x)["logits"], out["logits"].detach(), rtol=1e-4, atol=1e-4)


def test_kr_handles_wrapped_models_and_rejects_unscaled_models():
    model = tiny_model()
    kr = KernelRefinement(model, lam=1e-3, adv_weight=0.0)
    x, y = batch()
    a = kr.generator_loss(model, x, None, y)["kr_mse"]
    b = kr.generator_loss(nn.DataParallel(model), x, None, y)["kr_mse"]
    torch.testing.assert_close(a, b)
    real = bireid.create_model("resnet18", num_classes=4, method="real", width=8)
    with pytest.raises(ValueError, match="channel-wise scale"):
        KernelRefinement(real)
    bireal = bireid.create_model("resnet18", num_classes=4, method="bireal", width=8)  # no alpha
    with pytest.raises(ValueError, match="channel-wise scale"):
        build_gal_losses(bireal, cfg_with(kr_gal=True, fr_gal=False))


class _ToyConvs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.a = BinaryConv2d(4, 8, 3, padding=1, scaling="learned")
        self.b = BinaryConv2d(4, 6, 3, padding=1, scaling="learned")  # same filter shape: shares a D


def test_instance_noise_keeps_the_kernel_discriminator_uncertain():
    """Latent filters are continuous and their reconstructions take two values, so a noise-free D learns to
    separate them perfectly; instance noise (gal.disc_noise) on both sides keeps it well below that."""
    def d_accuracy(noise: float) -> float:
        torch.manual_seed(0)
        toy = _ToyConvs()
        kr = KernelRefinement(toy, lam=0.0, adv_weight=1.0, disc_lr=1e-2, filters_per_layer=0, disc_noise=noise)
        accs = [kr.discriminator_step()["kr_d_acc"] for _ in range(200)]
        return sum(accs[-20:]) / 20

    clean, noisy = d_accuracy(0.0), d_accuracy(1.0)
    assert clean > 0.95 and noisy < clean - 0.15, (clean, noisy)
    with pytest.raises(ValueError, match="disc_noise"):
        KernelRefinement(_ToyConvs(), disc_noise=-1.0)


def test_default_settings_keep_both_discriminators_in_the_game():
    """With the default GAL settings (adaptive instance noise), D's accuracy stays near its target on inputs a
    noise-free D separates perfectly -- for KR-GAL's filters and FR-GAL's features, at the default D rate and a
    100x faster one."""
    g = Config().gal

    def last_acc(kind: str, lr: float, noise: float, target: float, steps: int = 400) -> float:
        torch.manual_seed(0)
        if kind == "kr":
            aux = KernelRefinement(_ToyConvs(), lam=0.0, adv_weight=1.0, disc_lr=lr, filters_per_layer=0,
                                   disc_noise=noise, disc_target_acc=target)
            outputs = None
        else:
            aux = FeatureRefinement([4, 8], stages=[1], mu=0.0, adv_weight=1.0, disc_lr=lr, disc_noise=noise,
                                    disc_target_acc=target)
            low = torch.randn(16, 4, 8, 4).abs() * 3  # rectified, larger: unlike the projections of a_H
            outputs = {"stages": [low, torch.randn(16, 8, 4, 2)]}
        accs = [aux.discriminator_step(outputs)[f"{kind}_d_acc"] for _ in range(steps)]
        return sum(accs[-50:]) / 50

    for kind in ("kr", "fr"):
        assert last_acc(kind, 1e-2, 0.0, 0.0) > 0.95, kind  # no noise: a separable pair, D wins outright
        for lr in (g.disc_lr, 1e-2):
            acc = last_acc(kind, lr, g.disc_noise, g.disc_target_acc)
            assert acc < g.disc_target_acc + 0.1, (kind, lr, acc)


def test_adaptive_noise_is_resumed_and_loads_old_states():
    toy = _ToyConvs()
    kr = KernelRefinement(toy, lam=0.0, adv_weight=1.0, disc_lr=1e-2, filters_per_layer=0, disc_target_acc=0.6)
    for _ in range(30):
        kr.discriminator_step()
    assert kr.noise() > 0.05  # raised from its start while D was winning
    again = KernelRefinement(toy, lam=0.0, adv_weight=1.0, disc_lr=1e-2, filters_per_layer=0, disc_target_acc=0.6)
    again.load_state_dict(kr.state_dict())
    assert again.noise() == kr.noise()
    old = {k: v for k, v in kr.state_dict().items() if k != "noise_std"}  # a state saved before the controller
    again = KernelRefinement(toy, lam=0.0, adv_weight=1.0, disc_lr=1e-2, filters_per_layer=0, disc_target_acc=0.6)
    again.load_state_dict(old)
    assert again.noise() == pytest.approx(0.05)


def test_fr_instance_noise_reaches_the_discriminator_inputs():
    torch.manual_seed(0)
    fr = FeatureRefinement([4, 8], stages=[1], mu=0.0, adv_weight=1.0, disc_noise=0.5)
    maps = [torch.randn(3, 4, 8, 4), torch.randn(3, 8, 4, 2)]
    seen = []
    fr.discs["1"].register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach().clone()))
    fr.discriminator_step({"stages": maps})
    clean_fake = fr.pool(maps[0])
    assert len(seen) == 2 and not torch.allclose(seen[1], clean_fake)
    # the noise scale follows the batch's pooled low-level feature
    assert 0.2 < float((seen[1] - clean_fake).std() / clean_fake.pow(2).mean().sqrt()) < 1.0


def test_kr_discriminator_and_generator_move_in_opposite_directions():
    torch.manual_seed(0)
    toy = _ToyConvs()
    kr = KernelRefinement(toy, lam=0.0, adv_weight=1.0, disc_lr=1e-2, filters_per_layer=0)
    assert list(kr.discs.keys()) == ["4x3x3"]

    def gen_adv() -> float:
        with torch.no_grad():
            return float(kr.generator_loss(toy, None, None, None)["kr_adv"])

    g0 = gen_adv()
    d_losses = [kr.discriminator_step(None)["kr_d_loss"] for _ in range(30)]
    g1 = gen_adv()
    assert d_losses[-1] < d_losses[0] - 0.1
    assert g1 > g0 + 0.1  # a better D makes the generator's loss larger
    assert kr.discriminator_step(None)["kr_d_acc"] > 0.6
    opt = torch.optim.Adam(toy.parameters(), lr=2e-2)
    for _ in range(30):
        opt.zero_grad()
        kr.generator_loss(toy, None, None, None)["kr_adv"].backward()
        opt.step()
    assert gen_adv() < g1 - 0.1  # generator steps against the fixed D bring its loss down


# ------------------------------------------------------------------------------------------------ FR-GAL
def test_fr_sends_no_gradient_to_the_high_level_feature():
    model = tiny_model()
    backbone = model.backbone
    fr = FeatureRefinement(backbone.stage_channels, stages=[1, 2], mu=1e-1, adv_weight=1.0)
    x, y = batch()
    out = model(x)
    terms = fr.generator_loss(model, x, out, y)
    assert set(terms) == {"fr_mse", "fr_adv"} and all(float(v.detach()) > 0 for v in terms.values())
    loss = terms["fr_mse"] + terms["fr_adv"]
    g_high, g_low = torch.autograd.grad(loss, [out["stages"][-1], out["stages"][0]], retain_graph=True,
                                        allow_unused=True)
    assert g_high is None and g_low is not None and g_low.abs().sum() > 0
    loss.backward()
    later = list(backbone.stages[2].parameters()) + list(backbone.stages[3].parameters())
    assert all(p.grad is None for p in later)  # stage 3 is not supervised here, stage 4 is a_H (detached)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in backbone.stages[0].parameters())
    groups = fr.param_groups()
    assert len(groups) == 1 and {id(p) for p in groups[0]["params"]} == {id(p) for p in fr.proj.parameters()}
    assert all(p.grad is not None for p in groups[0]["params"])
    assert all(p.grad is None for p in fr.discs.parameters())


@pytest.mark.parametrize("compare", ["upsampled", "pooled"])
def test_fr_mse_compares_the_maps_the_option_names(compare):
    # Hand-sized maps: a_L 1 channel 4x2, a_H 1 channel 2x1, projection fixed to 2*a_H + 1.
    fr = FeatureRefinement([1, 1], stages=[1], mu=2.0, adv_weight=0.0, compare=compare)
    with torch.no_grad():
        fr.proj["1"].weight.fill_(2.0)
        fr.proj["1"].bias.fill_(1.0)
    low = torch.tensor([[1.0, 3.0], [5.0, 7.0], [0.0, 2.0], [4.0, 6.0]]).view(1, 1, 4, 2)
    high = torch.tensor([1.0, 2.0]).view(1, 1, 2, 1)  # targets 3 (top half) and 5 (bottom half)
    got = fr.generator_loss(None, None, {"stages": [low, high]}, None)["fr_mse"]
    if compare == "upsampled":  # every a_L pixel against its block's target
        want = ((1 - 3) ** 2 + 0 + (5 - 3) ** 2 + (7 - 3) ** 2 + (0 - 5) ** 2 + (2 - 5) ** 2 + (4 - 5) ** 2
                + (6 - 5) ** 2) / 8
    else:  # each block's mean (4 and 3) against its target
        want = ((4 - 3) ** 2 + (3 - 5) ** 2) / 2
    assert float(got.detach()) == pytest.approx(0.5 * 2.0 * want)


def test_fr_projection_gets_only_the_mse_signal():
    model = tiny_model()
    fr = FeatureRefinement(model.backbone.stage_channels, stages=[1], mu=0.0, adv_weight=1.0)
    x, y = batch()
    out = model(x)
    fr.generator_loss(model, x, out, y)["fr_adv"].backward()
    assert all(p.grad is None for p in fr.proj.parameters())


def test_fr_discriminator_and_generator_move_in_opposite_directions():
    torch.manual_seed(0)
    chans = [4, 6, 8, 10]
    fr = FeatureRefinement(chans, stages=[1, 3], mu=0.0, adv_weight=1.0, disc_lr=1e-2)
    high = torch.randn(8, 10, 2, 2) + 1.0
    lows = {s: nn.Parameter(torch.randn(8, chans[s - 1], 8 // s, 4 // s if s < 3 else 2)) for s in (1, 2, 3)}

    def outputs() -> dict:
        return {"stages": [lows[1], lows[2], lows[3], high]}

    def gen_adv() -> float:
        with torch.no_grad():
            return float(fr.generator_loss(None, None, outputs(), None)["fr_adv"])

    g0 = gen_adv()
    d_losses = [fr.discriminator_step(outputs())["fr_d_loss"] for _ in range(30)]
    g1 = gen_adv()
    assert d_losses[-1] < d_losses[0] - 0.1 and g1 > g0 + 0.1
    opt = torch.optim.Adam(lows.values(), lr=5e-2)
    for _ in range(30):
        opt.zero_grad()
        fr.generator_loss(None, None, outputs(), None)["fr_adv"].backward()
        opt.step()
    assert gen_adv() < g1 - 0.1
    assert lows[2].grad is None  # stage 2 is not supervised


def test_fr_rejects_bad_stages_and_outputs():
    with pytest.raises(ValueError, match="fr_stages"):
        FeatureRefinement([4, 8, 16, 32], stages=[4])
    with pytest.raises(ValueError, match="fr_stages"):
        FeatureRefinement([4, 8, 16, 32], stages=[])
    fr = FeatureRefinement([4, 8, 16, 32], stages=[1])
    with pytest.raises(ValueError, match="stages"):
        fr.generator_loss(None, None, {"stages": [torch.zeros(1, 4, 2, 2)]}, None)


# ---------------------------------------------------------------------------------------- attention alpha
def test_attention_scale_is_positive_starts_at_mean_abs_and_trains():
    torch.manual_seed(0)
    conv = BinaryConv2d(16, 32, 3, padding=1, scaling=AttentionScale)
    sc = conv.scaling
    assert isinstance(sc, AttentionScale)
    alpha = conv.weight_scale()
    assert alpha.shape == (32,) and (alpha > 0).all()
    torch.testing.assert_close(alpha, conv.weight.detach().abs().mean(dim=(1, 2, 3)))
    with torch.no_grad():  # move away from the neutral init so every parameter is on the gradient path
        sc.fc2.weight.normal_(0, 1.0)
        sc.fc2.bias.normal_(0, 1.0)
    alpha = conv.weight_scale()
    assert (alpha > 0).all() and not torch.allclose(alpha, conv.weight.detach().abs().mean(dim=(1, 2, 3)))
    conv(torch.randn(2, 16, 6, 6)).square().mean().backward()
    for n, p in list(sc.named_parameters()) + [("weight", conv.weight)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, n
    with pytest.raises(ValueError, match="output channels"):
        sc(torch.zeros(8, 16, 3, 3))
    assert AttentionScale(7).out_channels == 7 and AttentionScale(torch.zeros(5, 2, 1, 1)).out_channels == 5


def test_attention_alpha_in_the_bireid_model_gets_kr_gradients():
    model = tiny_model(alpha_mode="attention")
    convs = find_scaled_binary_convs(model)
    assert convs and all(isinstance(c.scaling, AttentionScale) for _, c in convs)
    kr = build_gal_losses(model, cfg_with(kr_gal=True, fr_gal=False, kr_lambda=1e-2, kr_adv_weight=1e-2))[0]
    x, y = batch()
    terms = kr.generator_loss(model, x, model(x), y)
    (terms["kr_mse"] + terms["kr_adv"]).backward()
    for name, c in convs:
        assert c.scaling.log_base.grad.abs().sum() > 0, name
        assert c.scaling.fc2.weight.grad.abs().sum() > 0, name


# --------------------------------------------------------------------------------------- build + state
@pytest.mark.parametrize("kr,fr,types", [(True, True, [KernelRefinement, FeatureRefinement]),
                                         (True, False, [KernelRefinement]), (False, True, [FeatureRefinement]),
                                         (False, False, [])])
def test_build_gal_losses_respects_flags(kr, fr, types):
    model = tiny_model()
    losses = build_gal_losses(model, cfg_with(kr_gal=kr, fr_gal=fr, fr_stages=[2, 3]))
    assert [type(m) for m in losses] == types
    for m in losses:
        if isinstance(m, FeatureRefinement):
            assert m.stages == [2, 3] and m.stage_channels == list(model.backbone.stage_channels)


def test_bireid_method_builds_gal_losses():
    from bireid.methods import get_method

    model = tiny_model()
    aux = get_method("bireid").build_aux(model, cfg_with(kr_gal=True, fr_gal=True), 4)
    assert sorted(type(m).__name__ for m in aux) == ["FeatureRefinement", "KernelRefinement"]


def _run_steps(losses, model, x, y, n):
    logs = []
    for _ in range(n):
        out = model(x)
        for m in losses:
            logs.append(m.discriminator_step(out))
    return logs


def test_state_dict_round_trip_resumes_exactly(tmp_path):
    from safetensors.torch import load_file, save_file

    model = tiny_model()
    x, y = batch()
    cfg = cfg_with(kr_gal=True, fr_gal=True, kr_adv_weight=1.0, fr_adv_weight=1.0, disc_lr=1e-2)
    torch.manual_seed(5)
    a = build_gal_losses(model, cfg)
    _run_steps(a, model, x, y, 2)
    torch.manual_seed(6)
    b = build_gal_losses(model, cfg)
    for ma, mb in zip(a, b):
        sd = ma.state_dict()
        assert any(k.startswith("disc_optimizer.") for k in sd)
        path = tmp_path / f"{type(ma).__name__}.safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
        mb.load_state_dict(load_file(str(path)), strict=True)
        assert sd.keys() == mb.state_dict().keys()
        for k, v in mb.state_dict().items():
            torch.testing.assert_close(v, sd[k], msg=k)
    # Same RNG from here: one more step on each gives bit-identical discriminators and optimizer states.
    torch.manual_seed(9)
    log_a = _run_steps(a, model, x, y, 1)
    torch.manual_seed(9)
    log_b = _run_steps(b, model, x, y, 1)
    assert log_a == log_b
    for ma, mb in zip(a, b):
        for k, v in ma.state_dict().items():
            torch.testing.assert_close(mb.state_dict()[k], v, rtol=0, atol=0, msg=k)
    # A checkpoint from before any discriminator step has no optimizer entries: Adam restarts empty.
    fresh = copy.deepcopy(b[0])
    fresh.load_state_dict({k: v for k, v in build_gal_losses(model, cfg)[0].state_dict().items()})
    assert len(fresh.d_opt.state) == 0
    with pytest.raises(RuntimeError, match="discriminator optimizer"):
        b[1].load_state_dict({**b[1].state_dict(), "disc_optimizer.999.step": torch.tensor(1.0)})


# ------------------------------------------------------------------------------------------- bireid ablate
def _fake_train(calls):
    def train(cfg):
        calls.append(cfg)
        out = Path(cfg.train.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / "config.yaml")
        score = {"real": 0.9, "bireal": 0.5}.get(cfg.model.method, 0.6) + 0.01 * cfg.train.seed
        res = {"rank1": score, "mAP": score / 2, "step_time": 0.1 if cfg.model.method == "bireal" else 0.15,
               "history": [{"epoch": 1}]}
        (out / "results.json").write_text(json.dumps({k: v for k, v in res.items() if k != "history"}))
        return res
    return train


def test_ablate_runs_each_variant_and_seed_with_its_config_and_formats_the_table(tmp_path):
    from bireid.commands import ablate

    calls = []
    base = Config()
    base.train.epochs = 3
    res = ablate.run_ablation(base, ["bireal", "bireid-kr", "bireid-attn"], [0, 1], tmp_path / "runs",
                              train_fn=_fake_train(calls), log=lambda s: None)
    got = {(c.model.method, c.gal.kr_gal, c.gal.fr_gal, c.gal.alpha_mode, c.train.seed, c.train.epochs)
           for c in calls}
    assert got == {("bireal", False, False, "learned", s, 3) for s in (0, 1)} | \
        {("bireid", True, False, "learned", s, 3) for s in (0, 1)} | \
        {("bireid", True, True, "attention", s, 3) for s in (0, 1)}
    assert len({c.train.output_dir for c in calls}) == 6
    table = ablate.format_table(res)
    row = next(line for line in table.splitlines() if line.startswith("| bireid-kr "))
    assert "60.50 ± 0.71" in row and "30.25 ± 0.35" in row and "1.50×" in row
    # mAP 0.30 / 0.305 against bireal's 0.25 / 0.255 on the same seeds: +5 points on both
    assert "+5.00 ± 0.00 (2/2 seeds ahead)" in row
    assert "| bireal " in table and "1.00×" in table
    # Finished runs with the same config are reused, not retrained.
    again = ablate.run_ablation(base, ["bireal"], [0, 1], tmp_path / "runs", train_fn=_fake_train(calls),
                                log=lambda s: None)
    assert len(calls) == 6 and [r["rank1"] for r in again["bireal"]] == [0.5, 0.51]
    shutil.copytree(tmp_path / "runs", tmp_path / "copied")  # the same runs in another folder
    again = ablate.run_ablation(base, ["bireal"], [0, 1], tmp_path / "copied", train_fn=_fake_train(calls),
                                log=lambda s: None)
    assert len(calls) == 6 and [r["rank1"] for r in again["bireal"]] == [0.5, 0.51]
    # A run saved before a config key existed (the key absent from its config.yaml) is the same run: the key's
    # default is what it ran with.
    saved = tmp_path / "runs" / "bireal" / "seed0" / "config.yaml"
    doc = yaml.safe_load(saved.read_text())
    assert doc["data"].pop("synth_seed") == base.data.synth_seed
    saved.write_text(yaml.safe_dump(doc))
    again = ablate.run_ablation(base, ["bireal"], [0], tmp_path / "runs", train_fn=_fake_train(calls),
                                log=lambda s: None)
    assert len(calls) == 6 and again["bireal"][0]["rank1"] == 0.5
    # A setting of a module a run does not use cannot make it another run: FR-GAL's weight for the KR-only runs,
    # any GAL setting for Bi-Real's. A setting the run does use still can.
    base.gal.fr_mu, base.gal.fr_compare = base.gal.fr_mu * 10, "pooled"
    again = ablate.run_ablation(base, ["bireal", "bireid-kr"], [0, 1], tmp_path / "runs",
                                train_fn=_fake_train(calls), log=lambda s: None)
    assert len(calls) == 6 and [r["rank1"] for r in again["bireid-kr"]] == [0.6, 0.61]
    lam, base.gal.kr_lambda = base.gal.kr_lambda, base.gal.kr_lambda * 10
    assert len(ablate.run_ablation(base, ["bireal"], [0], tmp_path / "runs", train_fn=_fake_train(calls),
                                   log=lambda s: None)["bireal"]) == 1 and len(calls) == 6
    with pytest.raises(Exception, match=r"different configuration \(gal\.kr_lambda: "):
        ablate.run_ablation(base, ["bireid-kr"], [0], tmp_path / "runs", train_fn=_fake_train(calls),
                            log=lambda s: None)
    base.gal.kr_lambda = lam
    base.train.epochs = 4  # a different budget must not silently reuse the old runs
    with pytest.raises(Exception, match=r"different configuration \(train\.epochs: 3 vs 4\)"):
        ablate.run_ablation(base, ["bireal"], [0], tmp_path / "runs", train_fn=_fake_train(calls),
                            log=lambda s: None)
    saved.write_text("data: [not, a, mapping]\n")  # unreadable: reported, never overwritten
    with pytest.raises(Exception, match="cannot be read"):
        ablate.run_ablation(base, ["bireal"], [0], tmp_path / "runs", train_fn=_fake_train(calls),
                            log=lambda s: None)
    assert saved.read_text() == "data: [not, a, mapping]\n"


@pytest.mark.slow
def test_ablate_jobs_2_gives_the_table_of_jobs_1(tmp_path, tiny_synth):
    """Two runs at once, each in its own process, give exactly the results of one after another in-process."""
    from helpers import tiny_config

    from bireid.commands import ablate

    base = tiny_config(tiny_synth, tmp_path / "unused", **{"train.epochs": 1, "train.threads": 1,
                                                           "train.max_steps_per_epoch": 3})
    variants, seeds = ["bireid-none", "bireid-both"], [0]
    serial = ablate.run_ablation(base, variants, seeds, tmp_path / "serial", log=lambda s: None, jobs=1)
    parallel = ablate.run_ablation(base, variants, seeds, tmp_path / "parallel", log=lambda s: None, jobs=2)
    for name in variants:
        for a, b in zip(serial[name], parallel[name]):
            assert {k: a[k] for k in ("rank1", "mAP", "mINP", "final_loss")} == \
                {k: b[k] for k in ("rank1", "mAP", "mINP", "final_loss")}, name
    strip = [line.rsplit("|", 3)[0] for line in ablate.format_table(serial).splitlines()]  # minus step times
    assert strip == [line.rsplit("|", 3)[0] for line in ablate.format_table(parallel).splitlines()]
    assert (tmp_path / "parallel" / "bireid-both" / "seed0" / "train.out").exists()
    with pytest.raises(Exception, match="--jobs"):
        ablate.run_ablation(base, variants, seeds, tmp_path / "x", log=lambda s: None, jobs=0)


def test_ablate_section_is_created_replaced_and_appended(tmp_path):
    from bireid.commands import ablate

    out = tmp_path / "RESULTS.md"
    out.write_text("# Results\n\nother text\n")
    rows = {"bireal": [{"rank1": 0.5, "mAP": 0.25, "step_time": 0.1}]}
    sec = ablate.format_section("Ablation: synthetic", rows, Config(), [0], "bireid ablate")
    ablate.write_section(out, sec, "Ablation: synthetic")
    rows["bireal"][0]["rank1"] = 0.7
    sec2 = ablate.format_section("Ablation: synthetic", rows, Config(), [0], "bireid ablate")
    ablate.write_section(out, sec2, "Ablation: synthetic")
    text = out.read_text()
    assert text.startswith("# Results\n\nother text\n") and text.count("## Ablation: synthetic") == 1
    assert "| 70.00 |" in text and "| 50.00 |" not in text
    ablate.write_section(out, sec, "Other")
    assert out.read_text().count("bireid-ablate begin") == 2


def test_ablate_mars_market_needs_the_data_folders(tmp_path):
    from bireid.cli import UserError, build_parser
    from bireid.commands import ablate

    args = build_parser().parse_args(["ablate", "--dataset", "mars-market", "--data-root", str(tmp_path)])
    with pytest.raises(UserError, match="mars-mini"):
        ablate.base_config(args)
    (tmp_path / "mars-mini").mkdir()
    (tmp_path / "market1501-mini").mkdir()
    cfg = ablate.base_config(args)
    assert (cfg.data.dataset, cfg.data.eval_dataset) == ("mars", "market1501")
    assert cfg.data.eval_root == str(tmp_path / "market1501-mini")


# ------------------------------------------------------------------------------------------- distributed
def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = tiny_model()  # same seed on every rank, as the trainer's broadcast guarantees
        cfg = cfg_with(kr_gal=True, fr_gal=True, kr_adv_weight=1.0, fr_adv_weight=1.0, disc_lr=1e-2)
        losses = build_gal_losses(model, cfg)
        torch.manual_seed(100 + rank)  # different data and filter draws per rank
        x, y = torch.randn(4, 3, 32, 16), torch.arange(4)
        out = model(x)
        sum(sum(m.generator_loss(model, x, out, y).values()) for m in losses).backward()
        for m in losses:
            m.discriminator_step(out)
        state = {f"{i}.{k}": v for i, m in enumerate(losses) for k, v in m.state_dict().items()}
        state.update({f"proj_grad.{n}": p.grad for n, p in losses[1].proj.named_parameters()})
        torch.save(state, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_discriminators_and_projections_stay_in_sync_across_ranks(tmp_path):
    import torch.multiprocessing as mp

    # fork: the children inherit the imported modules (spawn would re-import torch twice, ~10 s here)
    mp.start_processes(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True,
                       start_method="fork")
    s0, s1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert s0.keys() == s1.keys() and any(k.startswith("proj_grad.") for k in s0)
    for k in s0:
        torch.testing.assert_close(s0[k], s1[k], msg=k)
