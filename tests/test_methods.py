"""bireid.methods: registry, what each method builds, AuxLoss contract of the distillation loss, training."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bireid.config import Config
from bireid.factory import create_model
from bireid.gal import AttentionScale, FeatureRefinement, KernelRefinement
from bireid.methods import DistillationLoss, get_method, list_methods
from bireid.nn import BinaryConv2d, LearnedScale, MeanAbsScale, NoScale, RPReLU, RSign, SignSTE

torch.set_num_threads(1)


def test_registry():
    assert list_methods() == ["bireal", "bireid", "reactnet", "real", "xnor"]
    for name in list_methods():
        m = get_method(name)
        assert m.name == name and m.paper and m.summary
    with pytest.raises(KeyError, match="unknown method 'dorefa'"):
        get_method("dorefa")


def _convs(model):
    return [m for m in model.modules() if isinstance(m, BinaryConv2d)]


def test_each_method_builds_its_layout():
    real = get_method("real").build_backbone("resnet18", width=8, downsample="binary", scaling="learned")
    assert not _convs(real)  # binary-only options are ignored by the real method
    xnor = get_method("xnor").build_backbone("resnet18", width=8)
    c = _convs(xnor)[0]
    assert isinstance(c.act_binarizer, SignSTE) and isinstance(c.scaling, MeanAbsScale)
    assert xnor.options["block_style"] == "standard"
    bireal = get_method("bireal").build_backbone("resnet18", width=8)
    assert isinstance(_convs(bireal)[0].scaling, NoScale) and bireal.options["downsample"] == "real"
    assert isinstance(bireal.stages[0][0].act1, nn.PReLU)
    react = get_method("reactnet").build_backbone("resnet18", width=8)
    assert isinstance(_convs(react)[0].act_binarizer, RSign) and isinstance(react.stages[0][0].act1, RPReLU)
    bireid_bb = get_method("bireid").build_backbone("resnet18", width=8, downsample="real")
    assert all(isinstance(c.scaling, LearnedScale) for c in _convs(bireid_bb))
    assert bireid_bb.options["downsample"] == "real"  # call options override the method's defaults
    # None keeps the default; alpha_mode='learned' is harmless elsewhere, 'attention' is bireid's only
    assert get_method("xnor").build_backbone("resnet18", width=8, downsample=None, alpha_mode="learned"
                                             ).options["downsample"] == "binary"
    with pytest.raises(ValueError, match="only supported by --method bireid"):
        get_method("bireal").build_backbone("resnet18", width=8, alpha_mode="attention")


@pytest.mark.parametrize("method", ["real", "xnor", "bireal", "reactnet", "bireid"])
def test_every_method_trains(method):
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=4, method=method, width=16)
    images = torch.randn(8, 3, 32, 16)
    targets = torch.arange(8) % 4
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    losses = []
    for _ in range(12):
        out = model(images)
        loss = F.cross_entropy(out["logits"], targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert min(losses[-3:]) < losses[0] - 0.1, losses


def _teacher(num_classes=4, images=None):
    torch.manual_seed(1)
    t = create_model("resnet18", num_classes=num_classes, method="real", width=8)
    nn.init.normal_(t.classifier.weight, std=0.5)  # a confident teacher
    if images is not None:
        # BN statistics of these images, so the eval-mode teacher tells them apart (like a trained one)
        for m in t.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = None
        with torch.no_grad():
            t.train()(images)
    return t


def test_distillation_loss_contract():
    teacher = _teacher()
    aux = DistillationLoss(teacher, num_classes=4, weight=2.0)
    assert not any(k.startswith("teacher") for k in aux.state_dict())  # the teacher is not checkpointed
    aux.train()
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    images = torch.randn(6, 3, 32, 16)
    with torch.no_grad():
        t_logits = teacher.classifier(teacher(images))
    s_logits = torch.randn(6, 4, requires_grad=True)
    out = aux.generator_loss(None, images, {"logits": s_logits}, torch.zeros(6, dtype=torch.long))
    p = t_logits.softmax(1)
    expected = 2.0 * (p * (p.log() - s_logits.log_softmax(1))).sum(1).mean()
    torch.testing.assert_close(out["distill"], expected)
    out["distill"].backward()
    assert s_logits.grad is not None
    zero = aux.generator_loss(None, images, {"logits": t_logits}, None)["distill"]
    assert zero.abs() < 1e-5
    assert aux.discriminator_step({}) == {} and aux.param_groups() == []
    with pytest.raises(ValueError, match="teacher classifies 4 identities but the student 5"):
        DistillationLoss(teacher, num_classes=5)


def test_reactnet_build_aux_and_distilled_training():
    images = torch.randn(8, 3, 32, 16)
    teacher = _teacher(images=images)
    cfg = Config()
    cfg.model.method = "reactnet"
    react = get_method("reactnet")
    assert react.uses_teacher and not get_method("bireal").uses_teacher
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=4, method="reactnet", width=16)
    assert react.build_aux(model, cfg, 4) == []  # no teacher, no distillation
    cfg.loss.distill_weight = 1.0
    aux = react.build_aux(model, cfg, 4, teacher=teacher)  # the trainer loads the teacher and hands it over
    assert len(aux) == 1 and isinstance(aux[0], DistillationLoss) and aux[0].teacher is teacher
    with pytest.raises(ValueError, match="only used by --method reactnet"):
        get_method("bireal").build_aux(model, cfg, 4, teacher=teacher)
    # The distribution loss alone pulls a student towards the teacher (a real student: binary ones are too
    # noisy for a dozen steps; the loss is the same for any ReIDModel).
    torch.manual_seed(0)
    student = create_model("resnet18", num_classes=4, method="real", width=16)
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        out = student(images)
        loss = sum(aux[0].generator_loss(student, images, out, None).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-3:]) < 0.5 * losses[0], losses


def test_bireid_aux_losses_follow_the_gal_switches():
    model = create_model("resnet18", num_classes=4, method="bireid", width=8)
    cfg = Config()
    kinds = [type(a) for a in get_method("bireid").build_aux(model, cfg, 4)]
    assert kinds == [KernelRefinement, FeatureRefinement]
    cfg.gal.kr_gal = False
    assert [type(a) for a in get_method("bireid").build_aux(model, cfg, 4)] == [FeatureRefinement]
    cfg.gal.fr_gal = False
    assert get_method("bireid").build_aux(model, cfg, 4) == []


def test_bireid_attention_alpha_mode():
    bb = get_method("bireid").build_backbone("resnet18", width=8, alpha_mode="attention")
    assert _convs(bb) and all(isinstance(c.scaling, AttentionScale) for c in _convs(bb))
    with pytest.raises(ValueError, match="alpha_mode"):
        get_method("bireid").build_backbone("resnet18", width=8, alpha_mode="magic")


def test_the_method_record_says_what_it_needs():
    """Binary or not, which config keys reach the backbone: asked of the record, never by comparing names."""
    cfg = Config()
    cfg.model.downsample, cfg.model.branch_gamma, cfg.gal.alpha_mode = "binary", 0.5, "attention"
    assert not get_method("real").binary and get_method("real").options_from_config(cfg) == {}
    assert get_method("xnor").options_from_config(cfg) == {"downsample": "binary", "branch_gamma": 0.5}
    assert get_method("bireid").options_from_config(cfg) == {"downsample": "binary", "branch_gamma": 0.5,
                                                              "alpha_mode": "attention"}
    cfg.model.downsample = "auto"  # the method's own default: not passed
    assert get_method("bireal").options_from_config(cfg) == {"branch_gamma": 0.5}
    assert all(get_method(n).binary for n in ("xnor", "bireal", "reactnet", "bireid"))
