"""torch -> .bnn export: the runtime's features equal the PyTorch model's eval-mode features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from helpers import randomize_for_export as _randomize
from helpers import tie_free_input

from bireid.deploy.export import ExportError, export_bnn
from bireid.modeling.backbones.binary_resnet import binary_resnet18
from bireid.modeling.backbones.resnet import resnet18
from bireid.modeling.reid_model import ReIDModel
from bireid.runtime import BNNModel, FormatError


def _check(model: nn.Module, path, size=(64, 32), n=3, seed=0, rtol=1e-4):
    export_bnn(model, path, input_size=size)
    rt = BNNModel.load(path)
    x = torch.randn(n, 3, *size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = model(x).numpy()
    got = rt.forward(x.numpy())
    assert got.shape == ref.shape == (n, rt.feat_dim)
    err = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-6)
    assert err <= rtol, f"relative error {err}"
    return rt


@pytest.mark.parametrize("kw", [
    dict(pad_value=0.0, downsample="binary", activation="prelu"),
    dict(pad_value=1.0, downsample="binary", activation="prelu", scaling="learned"),
    dict(pad_value=0.0, downsample="real", activation="rprelu", act_binarizer="rsign", scaling="xnor"),
    dict(pad_value=1.0, downsample="real", activation="none", block_style="standard"),
])
def test_binary_resnet_export_matches_torch(tmp_path, kw):
    torch.manual_seed(0)
    model = _randomize(ReIDModel(binary_resnet18(width=16, **kw), num_classes=10), 1)
    rt = _check(model, tmp_path / "m.bnn")
    assert rt.meta["binary_convs"] >= 16
    assert rt.meta["input_size"] == [64, 32]


def test_fc2_head_and_odd_input_size(tmp_path):
    torch.manual_seed(1)
    model = _randomize(ReIDModel(binary_resnet18(width=16, last_stride=2), num_classes=5, head="fc2",
                                 embed_dim=32), 2)
    _check(model, tmp_path / "m.bnn", size=(61, 37))


def test_real_model_export(tmp_path):
    torch.manual_seed(2)
    model = _randomize(ReIDModel(resnet18(width=8), num_classes=4), 3)
    rt = _check(model, tmp_path / "real.bnn")
    assert rt.meta["binary_convs"] == 0


def test_unsupported_op_is_named(tmp_path):
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.up = nn.Upsample(scale_factor=2)

        def forward(self, x):
            return self.up(self.conv(x)).mean(dim=(2, 3))

    with pytest.raises(ExportError, match="Upsample"):
        export_bnn(Odd(), tmp_path / "odd.bnn")
    assert not (tmp_path / "odd.bnn").exists()


def test_pooled_conv_is_recognised_by_type_not_by_attribute(tmp_path):
    """A conv subclass that merely carries a ``pool_stride`` attribute computes something else (here: no pooling
    at all) and must be refused, not exported as a pooled conv."""
    class Lookalike(nn.Conv2d):
        def __init__(self):
            super().__init__(3, 4, 1, bias=False)
            self.pool_stride = 2  # an attribute only: forward() does not pool

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = Lookalike()
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x):
            return self.pool(self.conv(x)).flatten(1)

    with pytest.raises(ExportError, match="conv subclass Lookalike is not supported"):
        export_bnn(Net(), tmp_path / "look.bnn", input_size=(8, 8))


def test_input_shape_checked(tmp_path):
    model = _randomize(ReIDModel(binary_resnet18(width=16), num_classes=3), 4)
    export_bnn(model, tmp_path / "m.bnn", input_size=(32, 16))
    rt = BNNModel.load(tmp_path / "m.bnn")
    with pytest.raises(ValueError, match="expected images"):
        rt.forward(np.zeros((1, 3, 16, 16), np.float32))
    assert issubclass(FormatError, ValueError)


def test_image_parallel_forward_matches_serial(tmp_path):
    from bireid.runtime import get_num_threads, set_num_threads

    model = _randomize(ReIDModel(binary_resnet18(width=16), num_classes=3), 5)
    export_bnn(model, tmp_path / "m.bnn", input_size=(32, 16))
    rt = BNNModel.load(tmp_path / "m.bnn")
    x = np.random.default_rng(0).standard_normal((7, 3, 32, 16)).astype(np.float32)
    before = get_num_threads()
    try:
        set_num_threads(1)
        serial = rt.forward(x)
        set_num_threads(3)
        parallel = rt.forward(x)
    finally:
        set_num_threads(before)
    # Each image's features do not depend on the batching or the threads (the engine's same-bits claim).
    np.testing.assert_array_equal(parallel, serial)
    np.testing.assert_array_equal(rt.forward(x[2:3]), serial[2:3])


def test_export_command_writes_an_onnx_file_that_computes_the_model(tmp_path, capsys):
    """``bireid export --onnx``: the file the CLI writes is run with ONNX Runtime and gives the checkpoint's model's
    features (a float simulation of the binary layers: on a tie-free input, to float32 rounding)."""
    import onnxruntime as ort  # a dev dependency: this test must not skip

    from bireid.checkpoint import save_checkpoint
    from bireid.cli import main
    from bireid.config import Config, set_key
    from bireid.factory import create_model, model_kwargs

    cfg = Config()
    for key, value in (("model.method", "bireid"), ("model.width", 16), ("data.height", 64), ("data.width", 32)):
        set_key(cfg, key, value)
    model = _randomize(create_model(**model_kwargs(cfg, 7)), 6)
    ck = tmp_path / "model.safetensors"
    save_checkpoint(ck, model.state_dict(), {"config": cfg.to_dict(), "num_classes": 7})
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(ck), "--out", str(tmp_path / "m.bnn"), "--onnx", str(onnx_path)]) == 0
    assert str(onnx_path) in capsys.readouterr().out
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x, ref = tie_free_input(model.double(), (64, 32), 1e-5, n=2)  # batch 2: the batch axis is dynamic
    got = sess.run(None, {"images": x.float().numpy()})[0]
    assert got.shape == ref.shape == (2, 16 * 8)
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err <= 1e-5, f"ONNX Runtime differs from the float64 model by {err:.2e} (relative)"
