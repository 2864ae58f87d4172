"""The 1-bit ResNets: output contract, options, name alignment with the real ResNet, init from real."""

import pytest
import torch
import torch.nn as nn

from bireid.factory import create_model
from bireid.methods import init_from_state
from bireid.modeling import create_backbone, list_backbones
from bireid.nn import BinaryConv2d, LearnedScale, PooledConv2d, RPReLU, RSign

torch.set_num_threads(1)


def test_binary_family_registered():
    assert {"resnet18", "resnet34", "resnet50"} <= set(list_backbones("binary"))


@pytest.mark.parametrize("arch, width, expansion", [("resnet18", 16, 1), ("resnet34", 8, 1), ("resnet50", 8, 4)])
@pytest.mark.parametrize("last_stride", [1, 2])
def test_output_shapes(arch, width, expansion, last_stride):
    m = create_backbone(arch, "binary", last_stride=last_stride, width=width)
    outs = m(torch.randn(2, 3, 128, 64))
    chans = [width * 2**i * expansion for i in range(4)]
    sizes = [(32, 16), (16, 8), (8, 4), (8, 4) if last_stride == 1 else (4, 2)]
    assert [tuple(o.shape) for o in outs] == [(2, c, h, w) for c, (h, w) in zip(chans, sizes)]
    assert m.stage_channels == chans and m.out_channels == chans[-1]
    # every conv but the stem is binary
    convs = [(n, c) for n, c in m.named_modules() if isinstance(c, nn.Conv2d)]
    assert [n for n, c in convs if not isinstance(c, BinaryConv2d)] == ["stem.0"]


@pytest.mark.parametrize("opts", [
    dict(downsample="real", activation="rprelu", act_binarizer="rsign", pad_value=1.0),
    dict(downsample="binary", activation="none", act_binarizer="ste", block_style="standard", scaling="xnor"),
    dict(scaling="learned", weight_binarizer="ste"),
])
def test_options_build_what_they_say(opts):
    m = create_backbone("resnet18", "binary", width=8, **opts)
    outs = m(torch.randn(1, 3, 64, 32))
    assert outs[-1].shape == (1, 64, 4, 2)
    ds = m.stages[1][0].downsample
    if opts.get("downsample") == "real":
        assert isinstance(ds[0], PooledConv2d) and not isinstance(ds[0], BinaryConv2d) and ds[0].pool_stride == 2
    else:
        assert isinstance(ds[0], BinaryConv2d) and ds[0].stride == (2, 2)
    conv = m.stages[2][1].conv2
    assert conv.pad_value == opts.get("pad_value", 0.0)
    if opts.get("act_binarizer") == "rsign":
        assert isinstance(conv.act_binarizer, RSign) and isinstance(m.stages[0][0].act1, RPReLU)
    if opts.get("scaling") == "learned":
        assert isinstance(conv.scaling, LearnedScale)
    with pytest.raises(ValueError, match="downsample"):
        create_backbone("resnet18", "binary", downsample="pool")


def test_block_layouts():
    """Bi-Real: a shortcut around every conv, so with the first branch silenced (bn1 = 0) the block is
    x + bn2(conv2(x)). Standard: one shortcut per block, so conv2 then sees sign(0) = +1 everywhere."""
    torch.manual_seed(0)
    x = torch.randn(1, 8, 6, 6)
    for style in ("bireal", "standard"):
        m = create_backbone("resnet18", "binary", width=8, activation="none", block_style=style)
        block = m.stages[0][0].eval()
        nn.init.zeros_(block.bn1.weight)
        nn.init.zeros_(block.bn1.bias)
        with torch.no_grad():
            inner = x if style == "bireal" else torch.zeros_like(x)
            torch.testing.assert_close(block(x), x + block.bn2(block.conv2(inner)))


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_names_align_with_real_resnet_and_init_from_state(arch):
    torch.manual_seed(0)
    real = create_model(arch, num_classes=10, method="real", width=8)
    binary = create_model(arch, num_classes=10, method="bireid", width=8)
    real_convs = {n + ".weight" for n, m in real.named_modules() if isinstance(m, nn.Conv2d)}
    rep = init_from_state(binary, real.state_dict())
    # every real conv weight (stem, 3x3, 1x1 downsample) lands in the binary model
    assert real_convs <= set(rep.loaded)
    assert not rep.mismatched
    for k in real_convs:
        assert torch.equal(binary.state_dict()[k], real.state_dict()[k])
    # BN statistics and the head come along; PReLU slopes and alphas are the binary model's own
    assert "backbone.stages.0.0.bn1.running_var" in rep.loaded and "classifier.weight" in rep.loaded
    assert any(k.endswith("scaling.alpha") for k in rep.missing)
    # alphas follow the loaded latent weights
    conv = binary.backbone.stages[1][0].conv1
    torch.testing.assert_close(conv.scaling.alpha.detach(), conv.weight.detach().abs().mean((1, 2, 3)))
    assert "backbone.stages.1.0.conv1.scaling.alpha" in rep.rescaled


def test_init_from_state_reports_shape_mismatch_and_prefixes():
    real = create_model("resnet18", num_classes=10, method="real", width=8)
    binary = create_model("resnet18", num_classes=7, method="bireal", width=8)
    sd = {"module." + k: v for k, v in real.state_dict().items()}
    rep = init_from_state(binary, sd)
    assert "classifier.weight" in rep.mismatched and "backbone.stem.0.weight" in rep.loaded
    # a backbone-only state dict is matched under model.backbone
    rep2 = init_from_state(binary, real.backbone.state_dict())
    assert "backbone.stages.3.1.conv2.weight" in rep2.loaded
    assert "loaded" in rep2.summary()
    with pytest.raises(TypeError, match="mapping"):
        init_from_state(binary, [1, 2])


def test_branch_gamma_initialises_the_block_batchnorms():
    m = create_backbone("resnet50", "binary", width=8, branch_gamma=0.25)
    blk = m.stages[1][0]
    for bn in (blk.bn1, blk.bn2, blk.bn3):
        assert torch.all(bn.weight == 0.25)
    assert torch.all(blk.downsample[1].weight == 1.0)  # the shortcut's own BN is left at 1
    with pytest.raises(ValueError, match="branch_gamma"):
        create_backbone("resnet18", "binary", width=8, branch_gamma=1.5)


def _feature_stability(branch_gamma: float, downsample: str) -> float:
    """Cosine similarity of a random backbone's pooled features for an image and a slightly noisy copy."""
    torch.manual_seed(0)
    m = create_backbone("resnet18", "binary", width=16, downsample=downsample, branch_gamma=branch_gamma).train()
    x = torch.rand(8, 3, 64, 32)
    with torch.no_grad():
        a = m(x)[-1].mean((2, 3))
        b = m(x + 0.05 * torch.randn_like(x))[-1].mean((2, 3))
        a, b = a - a.mean(0), b - b.mean(0)  # compare what distinguishes images, not the shared mean
    return float(nn.functional.cosine_similarity(a, b, dim=1).mean())


def test_small_branch_gamma_keeps_a_random_binary_network_stable():
    """Why branch_gamma exists: a random 1-bit network with unit BN gammas is chaotic (a little input noise
    flips many signs, so the features of an image and of its noisy copy are almost unrelated), while small
    gammas with the real downsample let the real shortcuts carry the stem's features through. A binary
    downsample puts a sign on the shortcut itself, so small gammas do not rescue it."""
    chaotic = _feature_stability(1.0, "real")
    stable = _feature_stability(0.1, "real")
    binary_shortcut = _feature_stability(0.1, "binary")
    assert stable > 0.7 and chaotic < 0.3 and binary_shortcut < 0.3, (stable, chaotic, binary_shortcut)
