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


def detection_checkpoint(tmp_path, scenes_root):
    """A detector checkpoint as training writes one (config + weights), its data the synthetic scenes at
    ``scenes_root``; built directly, no training. Real-valued: float32 PyTorch and engine then agree to rounding."""
    from bireid.checkpoint import save_checkpoint
    from bireid.config import new_config
    from bireid.tasks import task_defaults

    cfg = new_config("detection", task_defaults)
    cfg.data.root, cfg.data.synth_scenes = str(scenes_root), [2, 6]
    cfg.data.height, cfg.data.width, cfg.model.width, cfg.model.method = 64, 64, 8, "real"
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, detector("real").state_dict(), {"config": cfg.to_dict(), "num_classes": 1})
    return path


def test_export_verify_compares_detections_on_the_test_scenes(tmp_path, capsys, monkeypatch):
    """--verify on a detector, without --verify-images: its test scenes (generated into a temporary folder when
    they are not there), and the deployed detections compared, not only the raw maps."""
    from bireid.factory import load_model
    from bireid.images import load_image
    from bireid.tasks import get_task

    root = tmp_path / "scenes"
    ck = detection_checkpoint(tmp_path, root)
    args = ["export", "--checkpoint", str(ck), "--out", str(tmp_path / "d.bnn"), "--verify"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert f"compared on 6 test samples of synthetic (generated: '{root}' is not here)" in out
    assert "the same detections" in out and "on 6/6 inputs" in out
    assert not root.exists()  # generated aside, not into the checkpoint's data folder
    # The scenes generated where the checkpoint says (the same ones: generation is deterministic) are read, and
    # the boxes reported are PyTorch's on all six of them.
    model, cfg = load_model(ck)
    test = get_task("detection").build_datasets(cfg)[1].test
    x = np.stack([preprocess(load_image(s.path), (64, 64)) for s in test])
    with torch.no_grad():
        boxes = sum(len(decode(h, 4, 100, 0.3, 0.6)[0]) for h in model(torch.from_numpy(x)).numpy())
    assert len(test) == 6 and boxes > 0
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("compared on 6 test samples of synthetic\n") == 1 and f"{boxes} boxes from PyTorch" in out
    # An engine whose boxes sit 0.2 pixels to the right (offset channel + 0.05 cells): the maps still look alike
    # (cosine), the detections do not.
    forward = BNNModel.forward

    def shifted(self, x):
        y = forward(self, x)
        y[:, 3] += 0.05
        return y

    monkeypatch.setattr(BNNModel, "forward", shifted)
    assert main(args) == 3
    cap = capsys.readouterr()
    assert "the same detections" in cap.err and "on only" in cap.err and "cosine <" not in cap.err


def test_detections_agree_rule():
    """One person at cell (3, 2) of a 8x8 map (stride 4): box centre (4 * 3.5, 4 * 2.5) = (14, 10), size 4 * (2, 4)
    = 8 x 16 -> (10, 2, 18, 18). Its size 1e-4 larger it is the same; 1e-2 larger (y2 moves 0.08 px, over the
    1e-3 * 18 + 1e-3 * 32 (the map's 32 px) = 0.05 allowed) it is not; a second person (score 0.5 > 0.3) changes the
    count."""
    from bireid.tasks.detection import detections_agree

    ref = np.zeros((1, 5, 8, 8), np.float32)
    ref[0, 0] = -5.0
    ref[0, :, 2, 3] = [2.0, 2.0, 4.0, 0.5, 0.5]
    (boxes, _), = [decode(ref[0], 4, 100, 0.3, 0.6)]
    np.testing.assert_allclose(boxes, [[10, 2, 18, 18]])
    near, far, more = ref.copy(), ref.copy(), ref.copy()
    near[0, 1:3, 2, 3] *= 1 + 1e-4
    far[0, 1:3, 2, 3] *= 1 + 1e-2
    more[0, :, 6, 6] = [0.0, 1.0, 1.0, 0.5, 0.5]
    same, rule = detections_agree(np.concatenate([ref, ref, ref]), np.concatenate([near, far, more]))
    assert same.tolist() == [True, False, False]
    assert "3 boxes from PyTorch" in rule
