"""Files bireid writes (checkpoints, .bnn models, logs, curves, gallery caches, features) get the permissions
the umask gives, as ``open()`` would: 0644 under umask 022, not the 0600 of a ``tempfile.mkstemp`` file."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from bireid.checkpoint import save_checkpoint
from bireid.config import Config
from bireid.deploy import FeatureExtractor, GalleryIndex
from bireid.deploy.export import export_bnn
from bireid.engine.run_folder import plot_curves, write_log
from bireid.modeling.backbones.binary_resnet import binary_resnet18
from bireid.modeling.reid_model import ReIDModel


@pytest.fixture()
def umask():
    """Set a umask for the test and restore the previous one."""
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_written_files_honour_the_umask(tmp_path, umask, monkeypatch, mask):
    umask(mask)
    expected = 0o666 & ~mask
    torch.manual_seed(0)
    model = ReIDModel(binary_resnet18(width=8), num_classes=3).eval()
    save_checkpoint(tmp_path / "model.safetensors", model.state_dict(), {"x": 1})
    bnn = export_bnn(model, tmp_path / "m.bnn", input_size=(32, 16))
    history = [{"epoch": 1, "loss": 1.0, "acc": 0.5}, {"epoch": 2, "loss": 0.5, "acc": 0.7}]
    write_log(tmp_path, history, "jsonl")
    write_log(tmp_path, history, "csv")
    plot_curves(tmp_path, history)
    Config().save(tmp_path / "config.yaml")
    gallery = tmp_path / "g"
    gallery.mkdir()
    Image.fromarray(np.zeros((32, 16, 3), np.uint8)).save(gallery / "a.png")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    GalleryIndex.build(FeatureExtractor(bnn), gallery)
    (cache,) = (tmp_path / "cache").rglob("*.npz")
    from bireid.cli import main

    assert main(["extract", "--model", str(bnn), "--images", str(gallery), "--out", str(tmp_path / "f.npy")]) == 0
    files = ["model.safetensors", "m.bnn", "log.jsonl", "log.csv", "curves.png", "config.yaml", "f.npy", "f.txt"]
    modes = {name: oct(_mode(tmp_path / name)) for name in files} | {"gallery cache": oct(_mode(cache))}
    assert modes == {name: oct(expected) for name in modes}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "no temporary files left behind"
