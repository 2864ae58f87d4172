"""bireid.nn: binarizers (forward and surrogate gradients), scales, BinaryConv2d's exact contract, RPReLU."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bireid.nn import (
    ApproxSign,
    BinaryConv2d,
    LearnedScale,
    MeanAbsScale,
    NoScale,
    RPReLU,
    RSign,
    SignSTE,
    approx_sign,
    set_binarization,
    sign_ste,
)

torch.set_num_threads(1)

POINTS = [-2.0, -1.0, -0.5, 0.0, 0.3, 1.0, 1.5]
SIGNS = [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]  # sign(0) = +1
STE_GRAD = [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]  # 1 on |x| <= 1 (boundaries included)
APPROX_GRAD = [0.0, 0.0, 1.0, 2.0, 1.4, 0.0, 0.0]  # 2 - 2|x| on [-1, 1]


def ref_sign(x):
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


@pytest.mark.parametrize("fn, grad", [(sign_ste, STE_GRAD), (approx_sign, APPROX_GRAD),
                                      (SignSTE(), STE_GRAD), (ApproxSign(), APPROX_GRAD)])
def test_binarizer_forward_and_gradient(fn, grad):
    x = torch.tensor(POINTS, dtype=torch.float64, requires_grad=True)
    y = fn(x)
    assert y.tolist() == SIGNS
    up = torch.arange(1.0, 8.0, dtype=torch.float64)  # a non-uniform upstream gradient
    (y * up).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor(grad, dtype=torch.float64) * up)


def test_plain_binarizers_have_no_threshold():
    assert SignSTE().threshold is None and ApproxSign().threshold is None


@pytest.mark.parametrize("grad, table", [("approx", dict(zip(POINTS, APPROX_GRAD))),
                                         ("ste", dict(zip(POINTS, STE_GRAD)))])
def test_rsign_threshold_forward_and_gradients(grad, table):
    rs = RSign(3, grad=grad)
    assert isinstance(rs.threshold, nn.Parameter) and rs.threshold.shape == (3,)
    with torch.no_grad():
        rs.threshold.copy_(torch.tensor([0.5, -0.25, 0.0]))
    # x - b hits the chosen points exactly (including 0 and ±1), per channel.
    d = torch.tensor(POINTS).view(1, 1, 7, 1).repeat(2, 3, 1, 2)
    x = (d + rs.threshold.detach().view(1, 3, 1, 1)).requires_grad_(True)
    y = rs(x)
    assert torch.equal(y, ref_sign(d))
    up = torch.randn_like(y)
    (y * up).sum().backward()
    sur = torch.tensor([table[p] for p in POINTS]).view(1, 1, 7, 1).expand_as(d)
    torch.testing.assert_close(x.grad, up * sur)
    torch.testing.assert_close(rs.threshold.grad, -(up * sur).sum(dim=(0, 2, 3)))


def test_rsign_rejects_wrong_channels():
    with pytest.raises(ValueError, match="RSign expects"):
        RSign(4)(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="unknown binarizer gradient"):
        RSign(4, grad="tanh")


def _reference(conv, x, pad_value):
    t = conv.act_binarizer.threshold
    xb = ref_sign(x - (t.detach().view(1, -1, 1, 1) if t is not None else 0))
    p = conv.padding[0]
    xb = F.pad(xb, [p] * 4, value=pad_value)
    w = ref_sign(conv.weight.detach())
    s = conv.weight_scale()
    if s is not None:
        w = s.detach().view(-1, 1, 1, 1) * w
    return F.conv2d(xb, w, stride=conv.stride)


@pytest.mark.parametrize("pad_value", [0.0, 1.0])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("act, scaling", [("approx", "none"), ("ste", "xnor"), ("rsign", "learned"),
                                          ("rsign-ste", "xnor")])
def test_binary_conv_forward_matches_float_conv_of_signs(pad_value, stride, act, scaling):
    torch.manual_seed(0)
    conv = BinaryConv2d(4, 5, 3, stride, 1, act_binarizer=act, scaling=scaling, pad_value=pad_value)
    if conv.act_binarizer.threshold is not None:
        with torch.no_grad():
            conv.act_binarizer.threshold.uniform_(-0.5, 0.5)
    with torch.no_grad():
        conv.weight[0, 0, 0, 0] = 0.0  # sign(0) = +1 on the weight side too
    x = torch.randn(2, 4, 7, 6)
    x[0, :, 3, 3] = 0.0 if conv.act_binarizer.threshold is None else conv.act_binarizer.threshold.detach()
    y = conv(x)
    ref = _reference(conv, x, pad_value)
    assert y.shape == ref.shape == (2, 5, (7 - 1) // stride + 1, (6 - 1) // stride + 1)
    torch.testing.assert_close(y, ref)
    assert set(conv.binary_weight().unique().tolist()) <= {-1.0, 1.0}


def test_pad_value_changes_only_the_border():
    torch.manual_seed(1)
    c0 = BinaryConv2d(3, 4, 3, 1, 1, pad_value=0.0)
    c1 = BinaryConv2d(3, 4, 3, 1, 1, pad_value=1.0)
    c1.load_state_dict(c0.state_dict())
    x = torch.randn(1, 3, 6, 6)
    y0, y1 = c0(x), c1(x)
    torch.testing.assert_close(y0[..., 1:-1, 1:-1], y1[..., 1:-1, 1:-1])
    assert not torch.allclose(y0[..., 0, :], y1[..., 0, :])
    # one-padding: every border output is the zero-padded one plus the padded taps' weight sums
    w = ref_sign(c0.weight.detach())
    assert torch.allclose(y1[0, :, 0, 0] - y0[0, :, 0, 0], w[:, :, 0, :].sum((1, 2)) + w[:, :, 1:, 0].sum((1, 2)))


def test_scales_and_factory_protocol():
    conv = BinaryConv2d(3, 4, 3, padding=1, scaling="learned")
    assert isinstance(conv.scaling, LearnedScale)
    assert "scaling.alpha" in dict(conv.named_parameters())
    torch.testing.assert_close(conv.weight_scale().detach(), conv.weight.detach().abs().mean((1, 2, 3)))
    assert isinstance(BinaryConv2d(3, 4, 1, scaling="none").scaling, NoScale)
    assert BinaryConv2d(3, 4, 1, scaling="none").weight_scale() is None
    assert isinstance(BinaryConv2d(3, 4, 1, scaling="xnor").scaling, MeanAbsScale)

    class Doubled(nn.Module):  # the KR-GAL attention scale's protocol: module(weight) -> (Cout,)
        def __init__(self, conv):
            super().__init__()
            self.cout = conv.out_channels

        def forward(self, weight):
            return 2 * weight.abs().amax(dim=(1, 2, 3))

    c = BinaryConv2d(3, 4, 3, padding=1, scaling=Doubled)
    assert isinstance(c.scaling, Doubled) and c.scaling.cout == 4
    torch.testing.assert_close(c.weight_scale(), 2 * c.weight.abs().amax(dim=(1, 2, 3)))
    x = torch.randn(1, 3, 5, 5)
    torch.testing.assert_close(c(x), _reference(c, x, 0.0))
    with pytest.raises(ValueError, match="unknown scaling"):
        BinaryConv2d(3, 4, 1, scaling="attention")
    with pytest.raises(ValueError, match="pad_value"):
        BinaryConv2d(3, 4, 1, pad_value=0.5)


def test_weight_gradients_approx_learned_and_xnor():
    torch.manual_seed(2)
    # ApproxSign on the weights, learned alpha: d/dw = G * alpha * (2 - 2|w|)+, d/dalpha = sum G * sign(w)
    conv = BinaryConv2d(2, 3, 3, scaling="learned")
    with torch.no_grad():
        conv.weight.uniform_(-1.2, 1.2)
    g = torch.randn(3, 2, 3, 3)
    (conv.effective_weight() * g).sum().backward()
    a = conv.scaling.alpha.detach().view(-1, 1, 1, 1)
    w = conv.weight.detach()
    torch.testing.assert_close(conv.weight.grad, g * a * (2 - 2 * w.abs()).clamp_min(0))
    torch.testing.assert_close(conv.scaling.alpha.grad, (g * ref_sign(w)).sum((1, 2, 3)))
    # XNOR-Net: alpha = mean|W| with the gradient through it, STE on the weights
    conv = BinaryConv2d(2, 3, 3, weight_binarizer="ste", scaling="xnor")
    with torch.no_grad():
        conv.weight.uniform_(-1.2, 1.2)
    (conv.effective_weight() * g).sum().backward()
    w = conv.weight.detach()
    n = w[0].numel()
    alpha = w.abs().mean((1, 2, 3), keepdim=True)
    expected = g * alpha * (w.abs() <= 1) + ref_sign(w) / n * (g * ref_sign(w)).sum((1, 2, 3), keepdim=True)
    torch.testing.assert_close(conv.weight.grad, expected)


def test_set_binarization_toggles_each_side():
    torch.manual_seed(3)
    model = nn.Sequential(BinaryConv2d(3, 4, 3, padding=1, scaling="xnor", pad_value=1.0), nn.ReLU(),
                          BinaryConv2d(4, 2, 1), nn.Conv2d(2, 2, 1))
    x = torch.randn(2, 3, 5, 5)
    conv = model[0]
    assert set_binarization(model, acts=False) == 2
    assert not conv.binarize_acts and conv.binarize_weights and not model[2].binarize_acts
    w = conv.weight_scale().view(-1, 1, 1, 1) * ref_sign(conv.weight)
    torch.testing.assert_close(conv(x), F.conv2d(x, w, padding=1))  # real acts: zero padding, real input
    set_binarization(model, acts=True, weights=False)
    torch.testing.assert_close(conv(x), F.conv2d(F.pad(ref_sign(x), [1] * 4, value=1.0), conv.weight))
    set_binarization(model, weights=True)
    assert conv.binarize_acts and conv.binarize_weights
    torch.testing.assert_close(conv(x), _reference(conv, x, 1.0))
    assert set_binarization(nn.Sequential(nn.Conv2d(1, 1, 1)), acts=False) == 0


def test_binary_conv_is_a_conv2d_without_bias():
    c = BinaryConv2d(8, 16, 3, 2, 1, act_binarizer="rsign")
    assert isinstance(c, nn.Conv2d) and c.bias is None and c.groups == 1 and c.dilation == (1, 1)
    assert c.act_binarizer.threshold.shape == (8,)
    with pytest.raises(ValueError, match="square"):
        BinaryConv2d(3, 4, (3, 1))


def test_rprelu():
    torch.manual_seed(4)
    act = RPReLU(3)
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(act(x), F.prelu(x, torch.full((3,), 0.25)))  # zero shifts: a PReLU
    with torch.no_grad():
        act.shift_in.copy_(torch.tensor([0.1, -0.2, 0.3]))
        act.shift_out.copy_(torch.tensor([1.0, 2.0, 3.0]))
        act.slope.copy_(torch.tensor([0.5, 0.1, 0.0]))
    y = act(x)
    v = x - act.shift_in.detach().view(1, 3, 1, 1)
    ref = torch.where(v > 0, v, act.slope.detach().view(1, 3, 1, 1) * v) + act.shift_out.detach().view(1, 3, 1, 1)
    torch.testing.assert_close(y, ref)
    y.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in act.parameters())
