"""bireid.complexity: the paper's accounting figures, per-layer rows, and the `bireid complexity` command."""

import json

import pytest
import torch
import torch.nn as nn

from bireid.cli import main
from bireid.complexity import build_for_accounting, count_complexity
from bireid.nn import BinaryConv2d, set_binarization

torch.set_num_threads(1)


def sig(x, digits):
    return float(f"{x:.{digits - 1}e}")


def test_hand_counted_layers():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.PReLU(8),
                          BinaryConv2d(8, 16, 3, 1, 1, scaling="learned"), nn.BatchNorm2d(16),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    rep = count_complexity(model, (16, 12))
    assert [r.kind for r in rep.layers] == ["real", "binary", "real"]
    assert [r.macs for r in rep.layers] == [3 * 8 * 9 * 8 * 6, 8 * 16 * 9 * 8 * 6, 16 * 10]
    assert rep.layers[1].out_shape == (16, 8, 6) and rep.layers[1].kernel == (3, 3)
    assert rep.flops == 3 * 8 * 9 * 48 + 160 and rep.bops == 8 * 16 * 9 * 48
    assert rep.ops == rep.flops + rep.bops / 64
    assert rep.binary_bits == 32 * (3 * 8 * 9) + 8 * 16 * 9 + 32 * (16 * 10 + 10)
    assert rep.float_bits == 32 * (3 * 8 * 9 + 8 * 16 * 9 + 170)
    # BN (2x8 + 2x16), PReLU (8) and alpha (16) only with include_bn, at 32 bits on both sides
    assert rep.other_params == 16 + 8 + 16 + 32
    bn = count_complexity(model, (16, 12), include_bn=True)
    assert bn.binary_bits == rep.binary_bits + 32 * 72 and bn.float_bits == rep.float_bits + 32 * 72
    # a conv is binary only when both sides are
    set_binarization(model, acts=False)
    assert count_complexity(model, (16, 12)).bops == 0
    assert model.training  # the mode is restored


def test_resnet18_bireid_imagenet_figures():
    """ResNet-18 224x224, real stem + FC-1000, all other convs (1x1 downsamples included) binary."""
    rep = count_complexity(build_for_accounting("resnet18", "bireid", "fc1000", 1000, 2, "binary"), (224, 224))
    assert sig(rep.float_flops, 4) == 1.814e9
    assert sig(rep.bops, 4) == 1.696e9
    assert sig(rep.flops, 4) == 1.185e8
    assert sig(rep.ops, 4) == 1.450e8
    assert round(rep.speedup, 2) == 12.51
    assert sum(r.kind == "real" for r in rep.layers) == 2  # stem and FC


def test_resnet18_storage_with_two_layer_head():
    """The paper's re-ID head 512 -> 512 -> 751 (BN excluded): 11.75x storage saving."""
    rep = count_complexity(build_for_accounting("resnet18", "bireid", "fc2", 751, 2, "binary"), (224, 224))
    assert 11.75 <= rep.storage_saving <= 11.76
    assert rep.storage_saving > count_complexity(
        build_for_accounting("resnet18", "bireid", "fc2", 751, 2, "binary"), (224, 224),
        include_bn=True).storage_saving


@pytest.mark.parametrize("arch, ops, speedup", [("resnet18", 1.64e8, 11.06), ("resnet34", 1.93e8, 18.99)])
def test_bireal_figures(arch, ops, speedup):
    """Bi-Real's accounting: the avg-pool + real 1x1 downsample convs count as FLOPs."""
    rep = count_complexity(build_for_accounting(arch, "bireal", "fc1000", 1000, 2, "real"), (224, 224))
    assert sig(rep.ops, 3) == ops
    assert round(rep.speedup, 2) == speedup
    assert sum(r.kind == "real" for r in rep.layers) == 5  # stem, 3 downsamples, FC


def test_real_model_and_reid_head():
    rep = count_complexity(build_for_accounting("resnet18", "real", "bnneck", 751, 1, width=16), (64, 32))
    assert rep.bops == 0 and rep.speedup == pytest.approx(1.0) and rep.storage_saving == pytest.approx(1.0)
    # the classifier does not run in eval mode but is counted from its shape
    clf = [r for r in rep.layers if r.name == "classifier"]
    assert clf and clf[0].macs == 128 * 751 and "not run" in clf[0].note
    d = rep.to_dict()
    assert d["totals"]["ops"] == rep.ops and len(d["layers"]) == len(rep.layers)
    assert d["totals"]["storage_bits"] == rep.binary_bits  # the model's own storage (bireid eval prints it)
    assert "speedup" in rep.format_table()
    with pytest.raises(ValueError, match="unknown head"):
        build_for_accounting("resnet18", "real", "fc3")


def test_command_json(capsys):
    assert main(["complexity", "--arch", "resnet18", "--input", "224x224", "--method", "bireid", "--head", "fc1000",
                 "--num-classes", "1000", "--downsample", "binary", "--last-stride", "2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert round(d["totals"]["speedup"], 2) == 12.51 and d["model"]["method"] == "bireid"
    assert d["layers"][0]["name"] == "backbone.stem.0" and d["layers"][0]["kind"] == "real"


def test_command_table_defaults_and_errors(capsys):
    assert main(["complexity", "--width", "16", "--include-bn"]) == 0
    out = capsys.readouterr().out
    assert "resnet18 / bireid / head bnneck (751 classes)" in out and "OPs" in out and "included" in out
    with pytest.raises(SystemExit):
        main(["complexity", "--input", "256by128"])
    assert main(["complexity", "--num-classes", "0"]) == 2
    assert "num-classes" in capsys.readouterr().err
