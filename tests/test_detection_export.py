"""The detector deployed: export to .bnn (nearest upsampling, real 3x3 head conv, binary neck convs), the engine's
head maps and detections equal PyTorch's on synthetic test scenes, and ``bireid detect`` (boxes JSON, drawn
pictures, and ranking the detected people against a gallery with a re-ID model).

As in test_export_methods: the reference is PyTorch in float64 on inputs whose binarized values all lie at least
``MARGIN`` (relative) from their thresholds, so float32 runtimes take the same signs."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch
from helpers import binarization_margin, randomize_for_export

from bireid.boxes import decode
from bireid.cli import main
from bireid.data.detection import render_scene
from bireid.data.synth import resolve_knobs
from bireid.deploy.detector import EngineDetector
from bireid.deploy.export import export_bnn
from bireid.factory import create_model
from bireid.images import preprocess
from bireid.nn import is_binary_conv
from bireid.runtime import BNNModel

SIZE = (64, 96)
MARGIN = 1e-5


def detector(method: str, seed: int = 1):
    torch.manual_seed(0)
    m = create_model("resnet18-det", 1, method, task="detection", width=8, last_stride=2)
    with torch.no_grad():  # a head whose heatmap varies, so that decoding has peaks to disagree on
        m.head[2].weight.normal_(0, 0.3, generator=torch.Generator().manual_seed(seed))
        m.head[2].bias.zero_()
    return randomize_for_export(m, seed)


@functools.cache
def scenes(n: int = 48):
    k = resolve_knobs(difficulty=0.5)
    return [render_scene(7, 1, i, SIZE[1], SIZE[0], 5, k)[0] for i in range(n)]


def tie_free_scenes(model64, want: int = 2) -> np.ndarray:
    """The first ``want`` scenes whose binarized values all keep the margin (about one scene in ten does)."""
    kept = []
    for img in scenes():
        x = preprocess(img, SIZE)[None]
        if binarization_margin(model64, torch.from_numpy(x).double())[0] >= MARGIN:
            kept.append(x[0])
        if len(kept) == want:
            return np.stack(kept)
    pytest.fail(f"fewer than {want} tie-free scenes")


@pytest.mark.parametrize("method", ["real", "bireid"])
def test_engine_detections_equal_pytorch(tmp_path, method):
    model = detector(method)
    rt = BNNModel.load(export_bnn(model, tmp_path / "det.bnn", input_size=SIZE))
    assert rt.meta["binary_convs"] == sum(is_binary_conv(m, fully=True) for m in model.modules())
    assert any(n["op"] == "upsample" for n in rt_nodes(tmp_path / "det.bnn"))
    x = tie_free_scenes(model.double())
    with torch.no_grad():
        ref = model(torch.from_numpy(x).double()).numpy()
    got = rt.forward(x.astype(np.float32))
    assert got.shape == ref.shape == (len(x), 5, 16, 24)
    assert np.abs(got - ref).max() / np.abs(ref).max() <= 1e-5
    total = 0
    for r, g in zip(ref, got):
        (rb, rs), (gb, gs) = decode(r, 4, 100, 0.3, 0.6), decode(g, 4, 100, 0.3, 0.6)
        assert len(rb) == len(gb)  # the same count after NMS
        np.testing.assert_allclose(gb, rb, rtol=1e-3, atol=1e-3 * SIZE[1])  # atol: boxes at the image's edge
        np.testing.assert_allclose(gs, rs, rtol=1e-4)
        total += len(rb)
    assert total > 0


def rt_nodes(path):
    from bireid.runtime.format import read_bnn

    return read_bnn(path)[0]["nodes"]


def test_detect_command_writes_boxes_pictures_and_gallery_ranks(tmp_path):
    export_bnn(detector("bireid"), tmp_path / "det.bnn", input_size=SIZE)
    torch.manual_seed(0)
    reid = randomize_for_export(create_model("resnet18", 5, "bireid", width=8), 2)
    export_bnn(reid, tmp_path / "reid.bnn", input_size=(64, 32))
    imgs, gallery = tmp_path / "imgs", tmp_path / "gallery"
    (imgs / "sub").mkdir(parents=True)
    gallery.mkdir()
    for i, img in enumerate(scenes()[:3]):
        img.save(imgs / ("sub" if i == 2 else "") / f"s{i}.jpg")
    rng = np.random.default_rng(0)
    for i in range(4):
        from PIL import Image

        Image.fromarray(rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)).save(gallery / f"g{i}.png")
    out = tmp_path / "out"
    assert main(["detect", "--model", str(tmp_path / "det.bnn"), "--images", str(imgs), "--out", str(out),
                 "--score", "0.2", "--reid", str(tmp_path / "reid.bnn"), "--gallery", str(gallery),
                 "--topk", "2"]) == 0
    rep = json.loads((out / "detections.json").read_text())
    assert sorted(rep) == ["s0.jpg", "s1.jpg", "sub/s2.jpg"]
    assert sorted(p.name for p in out.glob("*.png")) == ["s0.png", "s1.png", "sub__s2.png"]
    people = [p for v in rep.values() for p in v]
    assert people and all(len(p["box"]) == 4 and p["score"] >= 0.2 for p in people)
    assert all(len(p["matches"]) == 2 and p["matches"][0]["distance"] <= p["matches"][1]["distance"]
               for p in people)
    # The command's boxes are the engine detector's.
    boxes, _ = EngineDetector(tmp_path / "det.bnn", 0.2).detect(__import__("PIL.Image").Image.open(imgs / "s0.jpg")
                                                                .convert("RGB"))
    np.testing.assert_allclose([p["box"] for p in rep["s0.jpg"]], boxes.reshape(-1, 4), atol=0.01)


def test_detect_command_errors(tmp_path, capsys):
    export_bnn(detector("real"), tmp_path / "det.bnn", input_size=SIZE)
    reid = create_model("resnet18", 5, "real", width=8).eval()
    export_bnn(reid, tmp_path / "reid.bnn", input_size=(64, 32))
    scenes()[0].save(tmp_path / "s.jpg")
    base = ["detect", "--images", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main(base + ["--model", str(tmp_path / "det.bnn"), "--reid", str(tmp_path / "reid.bnn")]) != 0
    assert "--reid and --gallery go together" in capsys.readouterr().err
    assert main(["detect", "--model", str(tmp_path / "reid.bnn"), "--images", str(tmp_path), "--out",
                 str(tmp_path / "o")]) != 0
    assert "not a detector" in capsys.readouterr().err
    assert main(base + ["--model", str(tmp_path / "det.bnn"), "--score", "2"]) != 0
    assert "--score must lie in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written before the arguments are checked
