"""Every method's *default* layout exports, and the engine computes what PyTorch computes.

The models are built the way training builds them (``bireid.factory.create_model`` with the method's own
defaults), so each method's layout is what is checked: reactnet's binary 1x1 downsample, RSign thresholds and
RPReLU; xnor's standard blocks, mean|W| scale and no activation; bireal; bireid with the learned alpha and
with the attention alpha; ResNet-18, -34 and -50 (bottleneck, whose Bi-Real shortcut average-pools).

Why the comparison can be tight. A binary layer computes sign(x - t); where x lies within float32 rounding
of t, the engine (float32) and PyTorch may take different signs, and one flip moves the features by ~1e-3 (what
``export --verify`` tripped on). So the reference is PyTorch in float64, and the test input is one for which
every binarized value lies at least ``MARGIN`` times its layer's largest value from its threshold. PyTorch's
float32 computation of those values deviates from float64 by at most 7.3e-7 of the layer's largest value on
these models (measured on 12 images per case), 14x less, so no sign can differ, and the features must agree to
float32 rounding: ``RTOL`` (observed <= 7e-7).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from helpers import randomize_for_export, tie_free_input

from bireid.deploy.export import ExportError, export_bnn
from bireid.factory import create_model
from bireid.nn import is_binary_conv
from bireid.runtime import BNNModel

MARGIN = 1e-5  # relative to the largest value of the layer
RTOL = 1e-5
SIZE = (32, 16)

CASES = [(method, arch, {}) for method in ("real", "xnor", "bireal", "reactnet", "bireid")
         for arch in ("resnet18", "resnet34", "resnet50")]
CASES += [("bireid", arch, {"alpha_mode": "attention"}) for arch in ("resnet18", "resnet50")]


@pytest.mark.parametrize("method,arch,opts", CASES, ids=[f"{m}-{a}{'-attention' if o else ''}" for m, a, o in CASES])
def test_default_layout_exports_and_engine_equals_torch(tmp_path, method, arch, opts):
    torch.manual_seed(0)
    model = randomize_for_export(create_model(arch, 5, method, width=16, **opts), seed=1)
    path = export_bnn(model, tmp_path / "m.bnn", input_size=SIZE)
    rt = BNNModel.load(path)
    # Every conv the model computes in 1 bit (reactnet's and xnor's 1x1 downsamples included) is a binary conv
    # in the file: nothing fell back to a real-valued conv.
    assert rt.meta["binary_convs"] == sum(is_binary_conv(m, fully=True) for m in model.modules())
    x, ref = tie_free_input(model.double(), SIZE, MARGIN)
    got = rt.forward(x.float().numpy())
    assert got.shape == ref.shape == (1, rt.feat_dim)
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err <= RTOL, f"{method} {arch} {opts}: relative difference {err:.2e} from the float64 reference"


def test_unsupported_function_is_an_export_error(tmp_path):
    """A function node the exporter does not map is refused with ExportError naming it (it used to escape as an
    AttributeError: the pooling check named ``torch.avg_pool2d``, which torch does not have)."""

    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            return self.pool(torch.sigmoid(self.conv(x))).flatten(1)

    with pytest.raises(ExportError, match="sigmoid"):
        export_bnn(Gated(), tmp_path / "g.bnn", input_size=(8, 8))
    assert not (tmp_path / "g.bnn").exists()


def test_functional_avg_pool_exports(tmp_path):
    """``F.avg_pool2d`` in a forward (the Bi-Real bottleneck's strided shortcut) becomes the runtime's average
    pooling: ceil mode and excluded padding included, on an odd-sized map."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            y = self.conv(x)
            y = torch.nn.functional.avg_pool2d(y, 2, 2, ceil_mode=True, count_include_pad=False)
            return self.pool(y).flatten(1)

    torch.manual_seed(0)
    net = Net().eval()
    path = export_bnn(net, tmp_path / "p.bnn", input_size=(7, 5))
    x = torch.randn(2, 3, 7, 5)
    with torch.no_grad():
        ref = net(x).numpy()
    np.testing.assert_allclose(BNNModel.load(path).forward(x.numpy()), ref, rtol=1e-5, atol=1e-6)
