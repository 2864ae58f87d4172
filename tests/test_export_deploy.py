"""Deployment tools: FeatureExtractor inputs, ranking picture, ONNX export (gallery search and its cache, extract
and search commands: tests/test_gallery.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from helpers import write_gallery
from PIL import Image

from bireid.deploy import FeatureExtractor, ImageError, draw_ranking, market_pid
from bireid.deploy.export import export_bnn
from bireid.modeling.backbones.binary_resnet import binary_resnet18
from bireid.modeling.backbones.resnet import resnet18
from bireid.modeling.reid_model import ReIDModel

SIZE = (32, 16)


@pytest.fixture(scope="module")
def bnn_model(tmp_path_factory):
    torch.manual_seed(0)
    model = ReIDModel(binary_resnet18(width=16), num_classes=5).eval()
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.running_mean.uniform_(-0.3, 0.3)
    path = tmp_path_factory.mktemp("m") / "m.bnn"
    export_bnn(model, path, input_size=SIZE, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    return model, path


@pytest.fixture()
def images(tmp_path):
    return write_gallery(tmp_path / "gallery")


def test_extractor_matches_torch_preprocessing(bnn_model, images):
    model, path = bnn_model
    fx = FeatureExtractor(path, batch_size=4)
    _, paths = images
    feats = fx(paths)
    assert feats.shape == (len(paths), fx.feat_dim)
    # Reference: PIL bilinear resize + normalize, then the torch model.
    mean, std = np.array([0.5, 0.4, 0.3], np.float32), np.array([0.2, 0.25, 0.3], np.float32)
    batch = []
    for p in paths:
        a = np.asarray(Image.open(p).convert("RGB").resize((SIZE[1], SIZE[0]), Image.Resampling.BILINEAR),
                       np.float32) / 255.0
        batch.append(((a - mean) / std).transpose(2, 0, 1))
    with torch.no_grad():
        ref = model(torch.from_numpy(np.stack(batch))).numpy()
    np.testing.assert_allclose(feats, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    # Same image as path, PIL image, uint8 array and float array -> same features.
    img = Image.open(paths[0]).convert("RGB")
    u8 = np.asarray(img)
    for x in (img, u8, u8.astype(np.float32) / 255.0, u8[None]):
        np.testing.assert_allclose(fx(x)[0], feats[0], rtol=1e-5, atol=1e-5)


def test_extractor_errors(bnn_model, tmp_path):
    fx = FeatureExtractor(bnn_model[1])
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageError, match="bad.jpg"):
        fx(bad)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        fx(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="shape"):
        fx(np.zeros((4, 4), np.uint8))


def test_ranking_picture(images, tmp_path):
    _, paths = images
    assert market_pid(paths[0]) == 1 and market_pid("foo.jpg") is None
    out = draw_ranking(paths[0], paths[1:4], tmp_path / "r.png", distances=[0.1, 0.2, 0.3])
    img = np.asarray(Image.open(out).convert("RGB"))
    # Result 1 shares the query's pid (green border), result 2 does not (red border).
    pad, tw, gap = 6, 64, 16
    x1, x2 = pad + gap + (tw + pad), pad + gap + 2 * (tw + pad)
    assert tuple(img[pad + 1, x1 + 1]) == (0, 170, 0)
    assert tuple(img[pad + 1, x2 + 1]) == (220, 0, 0)


def test_onnx_export_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from bireid.deploy.onnx_export import export_onnx

    torch.manual_seed(0)
    model = ReIDModel(resnet18(width=8), num_classes=4).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.weight.data.uniform_(0.5, 1.5)
    path = export_onnx(model, tmp_path / "m.onnx", SIZE)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 3, *SIZE)
    with torch.no_grad():
        ref = model(x).numpy()
    got = sess.run(None, {"images": x.numpy()})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_export_command_from_checkpoint(tmp_path, capsys):
    from bireid.checkpoint import save_checkpoint
    from bireid.cli import main
    from bireid.config import Config, set_key
    from bireid.factory import create_model, model_kwargs

    cfg = Config()
    set_key(cfg, "model.method", "bireal")
    set_key(cfg, "model.width", 16)
    set_key(cfg, "data.height", 64)
    set_key(cfg, "data.width", 32)
    model = create_model(**model_kwargs(cfg, 7))
    ck = tmp_path / "model.safetensors"
    save_checkpoint(ck, model.state_dict(), {"config": cfg.to_dict(), "num_classes": 7})
    out = tmp_path / "m.bnn"
    onnx_out = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(ck), "--out", str(out), "--verify", "--onnx", str(onnx_out)]) == 0
    text = capsys.readouterr().out
    assert "verify: max relative difference" in text and out.is_file() and onnx_out.is_file()
    assert FeatureExtractor(out).model.input_size == (64, 32)


def test_onnx_export_of_binary_model(tmp_path):
    """Float simulation of the binary network in ONNX Runtime. BN statistics are randomized: with the
    default ones, exact-zero dot products stay exactly 0 in PyTorch but not after the exporter folds BN into
    the conv weights, and sign(0) ties would flip."""
    ort = pytest.importorskip("onnxruntime")
    from bireid.deploy.onnx_export import export_onnx

    torch.manual_seed(3)
    model = ReIDModel(binary_resnet18(width=16, pad_value=1.0, act_binarizer="rsign", activation="rprelu"),
                      num_classes=4).eval()
    g = torch.Generator().manual_seed(4)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=g) * 0.6 - 0.3)
    path = export_onnx(model, tmp_path / "b.onnx", SIZE)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 3, *SIZE, generator=g)
    with torch.no_grad():
        ref = model(x).numpy()
    got = sess.run(None, {"images": x.numpy()})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
