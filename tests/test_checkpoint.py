import json
import os

import pytest
import torch
from safetensors.torch import save_file

from bireid.checkpoint import CheckpointError, check_state_compatible, read_checkpoint, save_checkpoint
from bireid.config import Config
from bireid.factory import create_model, init_from_checkpoint, load_model


def small_model(arch="resnet18", classes=5):
    return create_model(arch, num_classes=classes, width=8)


def test_round_trip_nested_states(tmp_path):
    m = small_model()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m(torch.randn(2, 3, 64, 32))["logits"].sum().backward()
    opt.step()
    states = {"optimizer": opt.state_dict(), "rng": {"torch": torch.get_rng_state(), "py": (3, (1, 2), None)}}
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, m.state_dict(), {"epoch": 3}, states)
    model_state, meta, back = read_checkpoint(path)
    assert meta == {"epoch": 3}
    assert all(torch.equal(model_state[k], v) for k, v in m.state_dict().items())
    opt2 = torch.optim.Adam(m.parameters(), lr=1e-3)
    opt2.load_state_dict(back["optimizer"])
    for k, st in opt.state_dict()["state"].items():
        assert torch.equal(opt2.state_dict()["state"][k]["exp_avg"], st["exp_avg"])
    assert back["rng"]["py"] == (3, (1, 2), None)
    assert torch.equal(back["rng"]["torch"], states["rng"]["torch"])


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, {"w": torch.ones(3)}, {"v": 1})
    before = path.read_bytes()
    with pytest.raises(TypeError):
        save_checkpoint(path, {"w": torch.zeros(3)}, {"v": 2}, {"bad": object()})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.safetensors"]  # no temp file left behind


def test_load_model_and_mismatch_messages(tmp_path):
    cfg = Config()
    cfg.model.width = 8
    m = small_model()
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, m.state_dict(), {"config": cfg.to_dict(), "num_classes": 5})
    loaded, cfg2 = load_model(path)
    assert cfg2 == cfg and not loaded.training
    x = torch.randn(2, 3, 64, 32)
    m.eval()
    assert torch.equal(loaded(x), m(x))  # the same weights, bit for bit
    other = small_model("resnet34")
    with pytest.raises(CheckpointError, match="missing in checkpoint: backbone.stages.0.2"):
        check_state_compatible(other, m.state_dict(), "ck")
    with pytest.raises(CheckpointError, match="shape mismatch: classifier.weight"):
        check_state_compatible(small_model(classes=9), m.state_dict(), "ck")


@pytest.mark.parametrize("kind", ["missing", "folder", "garbage", "truncated", "foreign", "newer"])
def test_bad_checkpoint_files(tmp_path, kind):
    path = tmp_path / "ck.safetensors"
    if kind == "folder":
        path.mkdir()
    elif kind == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    elif kind == "truncated":
        save_checkpoint(path, {"w": torch.ones(1000)}, {})
        path.write_bytes(path.read_bytes()[:-100])
    elif kind == "foreign":
        save_file({"w": torch.ones(2)}, str(path))
    elif kind == "newer":
        save_file({"w": torch.ones(2)}, str(path),
                  metadata={"bireid": json.dumps({"format": "bireid-checkpoint", "version": 99})})
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(path)
    assert str(tmp_path) in str(e.value) or kind == "missing"
    if kind == "newer":
        assert "newer" in str(e.value)


def test_init_from_copies_matching_tensors(tmp_path):
    src = small_model(classes=7)
    path = tmp_path / "real.safetensors"
    save_checkpoint(path, src.state_dict(), {})
    dst = small_model(classes=3)
    rep = init_from_checkpoint(dst, path)
    assert "classifier.weight" in rep["mismatched"]
    assert torch.equal(dst.state_dict()["backbone.stem.0.weight"], src.state_dict()["backbone.stem.0.weight"])
    empty = tmp_path / "empty.safetensors"
    save_checkpoint(empty, {"nothing": torch.zeros(1)}, {})
    with pytest.raises(CheckpointError, match="no tensor matches"):
        init_from_checkpoint(dst, empty)
    assert os.path.exists(path)
