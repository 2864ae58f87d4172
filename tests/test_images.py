"""Train = deploy: every image mode gives the same normalised input to the training/eval transform and to the
deployed extractor; the decompression-bomb limit is a one-line error naming the file; constants live once."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bireid.data import BadImageError, build_transforms, load_image
from bireid.deploy import FeatureExtractor, ImageError
from bireid.deploy.export import export_bnn
from bireid.modeling.backbones.binary_resnet import binary_resnet18
from bireid.modeling.reid_model import ReIDModel

SIZE = (32, 16)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
    torch.manual_seed(0)
    model = ReIDModel(binary_resnet18(width=8), num_classes=3).eval()
    path = export_bnn(model, tmp_path_factory.mktemp("m") / "m.bnn", input_size=SIZE)  # ImageNet mean/std
    return FeatureExtractor(path)


def _mode_files(folder: Path) -> dict[str, Path]:
    """One file per PIL mode a user may hand us, each with content where the decoding rules matter."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (24, 12, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (24, 12), dtype=np.uint8)
    files: dict[str, tuple[Image.Image, str, dict]] = {
        "RGB": (Image.fromarray(rgb), "png", {}),
        "L": (Image.fromarray(gray, "L"), "png", {}),
        "1": (Image.fromarray(gray > 128), "png", {}),
        "RGBA": (Image.fromarray(np.dstack([rgb, rng.integers(0, 256, (24, 12), dtype=np.uint8)]), "RGBA"), "png", {}),
        "LA": (Image.fromarray(np.dstack([gray, gray[::-1]]), "LA"), "png", {}),
        "CMYK": (Image.fromarray(np.dstack([rgb, gray]), "CMYK"), "jpg", {"quality": 95}),
        # 16-bit gray with values off the /257 grid: rounding and truncation differ
        "I;16": (Image.fromarray((rng.integers(0, 65536, (24, 12))).astype(np.uint16)), "png", {}),
        # 32-bit ints holding 8-bit values, and holding 16-bit values
        "I (8-bit values)": (Image.fromarray(gray.astype(np.int32)), "tif", {}),
        "I (16-bit values)": (Image.fromarray(rng.integers(0, 65536, (24, 12)).astype(np.int32)), "tif", {}),
        # floats: 0..1 data and 0..255 data
        "F (0..1)": (Image.fromarray(rng.random((24, 12)).astype(np.float32)), "tif", {}),
        "F (0..255)": (Image.fromarray((rng.random((24, 12)) * 255).astype(np.float32)), "tif", {}),
        "JPEG with EXIF orientation 6": (Image.fromarray(rgb), "jpg", {"quality": 95, "exif": _exif_rotated()}),
    }
    p = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    files["P"] = (p, "png", {})
    files["P with a transparent colour"] = (p, "png", {"transparency": int(np.asarray(p)[0, 0])})
    out = {}
    for i, (name, (img, ext, kw)) in enumerate(files.items()):
        path = folder / f"{i:02d}.{ext}"
        img.save(path, **kw)
        out[name] = path
    return out


def _exif_rotated() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    return exif


def test_every_mode_gives_the_same_input_to_training_and_deployment(extractor, tmp_path):
    """The training/eval transform and the extractor's preprocessing share the decoder and the resize +
    normalisation, so the normalised inputs are bit for bit equal (assert_array_equal, no tolerance)."""
    test_tf = build_transforms(*SIZE, is_train=False)
    files = _mode_files(tmp_path)
    with Image.open(files["P with a transparent colour"]) as im:
        assert im.mode == "P" and "transparency" in im.info
    with Image.open(files["I;16"]) as im:
        assert im.mode.startswith("I;16")
    differing = []
    for name, path in files.items():
        train_input = test_tf(load_image(path)).numpy()
        deploy_input = extractor.preprocess(path)
        assert train_input.shape == deploy_input.shape == (3, *SIZE), name
        if not np.array_equal(train_input, deploy_input):
            differing.append(f"{name}: max |diff| {np.abs(train_input - deploy_input).max():.3f}")
    assert not differing, "training and deployment inputs differ for " + "; ".join(differing)


def test_decoding_rules(tmp_path):
    """The documented rules, on hand-worked pixels (independent of either pipeline)."""
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(tmp_path / "f01.tif")
    assert np.asarray(load_image(tmp_path / "f01.tif"))[0, :, 0].tolist() == [0, 128, 255]
    Image.fromarray(np.array([[0.0, 100.4, 300.0]], np.float32)).save(tmp_path / "f255.tif")
    assert np.asarray(load_image(tmp_path / "f255.tif"))[0, :, 0].tolist() == [0, 100, 255]
    Image.fromarray(np.array([[0, 7, 200]], np.int32)).save(tmp_path / "i8.tif")
    assert np.asarray(load_image(tmp_path / "i8.tif"))[0, :, 0].tolist() == [0, 7, 200]
    # 16-bit: 385/257 = 1.498 -> 1, 386/257 = 1.502 -> 2 (truncation would give 1), 65535 -> 255
    Image.fromarray(np.array([[0, 385, 386, 65535]], np.uint16)).save(tmp_path / "g16.png")
    assert np.asarray(load_image(tmp_path / "g16.png"))[0, :, 0].tolist() == [0, 1, 2, 255]
    # a transparent palette colour is black, whatever colour the palette holds there
    p = Image.new("P", (2, 1))
    p.putpalette([200, 100, 50, 10, 20, 30] + [0] * 762)
    p.putpixel((1, 0), 1)
    p.save(tmp_path / "pt.png", transparency=0)
    assert np.asarray(load_image(tmp_path / "pt.png")).tolist() == [[[0, 0, 0], [10, 20, 30]]]
    # EXIF orientation 6: a 2x1 (w x h) image shows as 1x2
    Image.new("RGB", (2, 1)).save(tmp_path / "rot.jpg", exif=_exif_rotated())
    assert load_image(tmp_path / "rot.jpg").size == (1, 2)


def test_arrays_follow_the_file_rules(extractor):
    """Arrays handed to the extractor decode by the same rules: uint8, 0..1 floats and 0..255 floats."""
    u8 = np.random.default_rng(1).integers(0, 256, (20, 10, 3), dtype=np.uint8)
    ref = extractor.preprocess(u8)
    np.testing.assert_array_equal(extractor.preprocess(u8.astype(np.float32) / 255.0), ref)
    np.testing.assert_array_equal(extractor.preprocess(u8.astype(np.float64)), ref)
    np.testing.assert_array_equal(extractor.preprocess(Image.fromarray(u8)), ref)


def test_decompression_bomb_is_a_one_line_error_naming_the_file(extractor, tmp_path, monkeypatch, capsys):
    path = tmp_path / "huge.png"
    Image.new("RGB", (40, 40)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 pixels > 2 x the limit: PIL refuses to decode
    with pytest.raises(BadImageError, match="too large"):
        load_image(path)
    with pytest.raises(ImageError, match=re.escape(str(path))) as e:
        extractor.preprocess(path)
    assert "\n" not in str(e.value)
    from bireid.cli import main

    assert main(["extract", "--model", str(extractor.model_path), "--images", str(tmp_path),
                 "--out", str(tmp_path / "f.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(path) in err and "too large" in err and "Traceback" not in err


def test_constants_are_defined_once():
    """The ImageNet mean/std and the image extensions are written in one source file only."""
    sources = {p: p.read_text() for p in (ROOT / "bireid").rglob("*.py")}
    for pattern in (r"0\.485,\s*0\.456,\s*0\.406", r"0\.229,\s*0\.224,\s*0\.225", r"\"\.jpeg\""):
        where = sorted(str(p.relative_to(ROOT)) for p, text in sources.items() if re.search(pattern, text))
        assert len(where) == 1, f"{pattern} is defined in {where}"
