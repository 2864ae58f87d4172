"""load_image (every mode, corrupt and truncated files) and the augmentation transforms."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from bireid.data import IMAGENET_MEAN, IMAGENET_STD, BadImageError, DatasetError, build_transforms, load_image
from bireid.data.transforms import (
    Compose,
    PadCrop,
    Preprocess,
    RandomErasing,
    RandomHorizontalFlip,
    Resize,
    ToNormalizedTensor,
)


def rgb_array(h: int = 16, w: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ load_image
def test_rgb_roundtrip(tmp_path):
    arr = rgb_array()
    Image.fromarray(arr).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.mode == "RGB" and img.size == (8, 16)
    assert np.array_equal(np.asarray(img), arr)


def test_gray_modes(tmp_path):
    g = np.arange(128, dtype=np.uint8).reshape(16, 8) * 2
    Image.fromarray(g, "L").save(tmp_path / "l.png")
    out = np.asarray(load_image(tmp_path / "l.png"))
    assert out.shape == (16, 8, 3) and np.array_equal(out[..., 0], g) and np.array_equal(out[..., 2], g)
    Image.fromarray(g > 100).save(tmp_path / "bw.png")  # mode "1"
    out = np.asarray(load_image(tmp_path / "bw.png"))
    assert set(np.unique(out)) == {0, 255}


def test_16bit_gray_is_scaled(tmp_path):
    vals = np.array([[0, 257, 32896, 65535]] * 2, dtype=np.uint16)
    Image.fromarray(vals).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode in ("I;16", "I")  # both decoders' spellings of 16-bit gray go through the scaling
    out = np.asarray(load_image(tmp_path / "g16.png"))
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]
    # a 32-bit integer image holding 16-bit data is scaled the same way; small values are taken as 8-bit
    Image.fromarray(vals.astype(np.int32)).save(tmp_path / "i32.tif")
    assert np.asarray(load_image(tmp_path / "i32.tif"))[0, :, 1].tolist() == [0, 1, 128, 255]
    Image.fromarray(np.array([[0, 7, 200]], dtype=np.int32)).save(tmp_path / "i8.tif")
    assert np.asarray(load_image(tmp_path / "i8.tif"))[0, :, 0].tolist() == [0, 7, 200]


def test_float_mode(tmp_path):
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(tmp_path / "f01.tif")
    assert np.asarray(load_image(tmp_path / "f01.tif"))[0, :, 0].tolist() == [0, 128, 255]
    Image.fromarray(np.array([[0.0, 100.0, 300.0]], dtype=np.float32)).save(tmp_path / "f255.tif")
    assert np.asarray(load_image(tmp_path / "f255.tif"))[0, :, 0].tolist() == [0, 100, 255]


def test_alpha_composited_on_black(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = [[255, 0], [128, 255]]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = np.asarray(load_image(tmp_path / "rgba.png")).astype(int)
    assert out[0, 0].tolist() == [200, 100, 50]
    assert out[0, 1].tolist() == [0, 0, 0]
    assert np.allclose(out[1, 0], [100, 50, 25], atol=1)
    la = Image.fromarray(np.dstack([np.full((2, 2), 180, np.uint8), np.array([[255, 0], [0, 255]], np.uint8)]), "LA")
    la.save(tmp_path / "la.png")
    out = np.asarray(load_image(tmp_path / "la.png"))
    assert out[0, 0].tolist() == [180] * 3 and out[0, 1].tolist() == [0] * 3


def test_palette_modes(tmp_path):
    arr = rgb_array(4, 4)
    p = Image.fromarray(arr).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    p.save(tmp_path / "p.png")
    assert np.array_equal(np.asarray(load_image(tmp_path / "p.png")), np.asarray(p.convert("RGB")))
    p.info["transparency"] = int(np.asarray(p)[0, 0])
    p.save(tmp_path / "pt.png", transparency=p.info["transparency"])
    out = np.asarray(load_image(tmp_path / "pt.png"))
    assert out[0, 0].tolist() == [0, 0, 0]  # the transparent palette entry becomes black
    assert out.shape == (4, 4, 3)


def test_cmyk(tmp_path):
    Image.new("CMYK", (8, 16), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # pure red in CMYK
    img = load_image(tmp_path / "c.jpg")
    assert img.mode == "RGB"
    r, g, b = np.asarray(img).reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60


def test_bad_files(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"this is not an image at all" * 10)
    big = Image.fromarray(rgb_array(64, 64))
    big.save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    big.save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "adir.jpg").mkdir()
    cases = {"junk.jpg": "not a recognised image format", "trunc.jpg": "truncated", "trunc.png": "truncated",
             "empty.png": "not a recognised", "missing.jpg": "file not found", "adir.jpg": "not a file"}
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    for name, reason in cases.items():
        with pytest.raises(BadImageError, match=reason) as e:
            load_image(tmp_path / name)
        assert e.value.path == str(tmp_path / name)
        assert str(tmp_path / name) in str(e.value)
        assert isinstance(e.value, DatasetError)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert load_image(tmp_path / "full.jpg").size == (64, 64)


def test_bad_image_error_pickles():
    e = pickle.loads(pickle.dumps(BadImageError("/x/y.jpg", "truncated")))
    assert isinstance(e, BadImageError) and e.path == "/x/y.jpg" and e.reason == "truncated"
    assert str(e) == "bad image /x/y.jpg: truncated"


# ------------------------------------------------------------------------------------------------ transforms
def test_resize_totensor_normalize():
    img = Image.fromarray(rgb_array(16, 8))
    r = Resize((32, 16))(img)
    assert r.size == (16, 32)
    n = ToNormalizedTensor()(img)
    assert n.shape == (3, 16, 8) and n.dtype == torch.float32
    arr = rgb_array(16, 8)
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    assert torch.allclose(n[:, 3, 5], (torch.tensor(arr[3, 5], dtype=torch.float32) / 255 - mean) / std)
    # the test pipeline is resize + normalise in one step
    assert torch.equal(Preprocess((32, 16))(img), ToNormalizedTensor()(r))
    # bilinear resize of a constant image stays constant
    c = Resize((7, 5))(Image.new("RGB", (8, 16), (10, 20, 30)))
    assert np.asarray(c).reshape(-1, 3).tolist() == [[10, 20, 30]] * 35


def test_flip():
    img = Image.fromarray(rgb_array(16, 8))
    assert np.array_equal(np.asarray(RandomHorizontalFlip(1.0)(img)), np.asarray(img)[:, ::-1])
    assert RandomHorizontalFlip(0.0)(img) is img
    with pytest.raises(ValueError):
        RandomHorizontalFlip(1.5)


def test_pad_crop_is_a_shift_of_the_zero_padded_image():
    arr = rgb_array(16, 8)
    padded = np.zeros((20, 12, 3), np.uint8)
    padded[2:18, 2:10] = arr
    random.seed(3)
    for _ in range(10):
        out = np.asarray(PadCrop(2, (16, 8))(Image.fromarray(arr)))
        assert out.shape == (16, 8, 3)
        assert any(np.array_equal(out, padded[t:t + 16, l:l + 8]) for t in range(5) for l in range(5))
    with pytest.raises(ValueError, match="smaller than the crop"):
        PadCrop(0, (32, 8))(Image.fromarray(arr))


def test_random_erasing():
    x = torch.ones(3, 32, 16)
    assert RandomErasing(p=0.0)(x) is x
    random.seed(0)
    for _ in range(20):
        y = RandomErasing(p=1.0)(x)
        zero = (y == 0).all(0)
        frac = zero.float().mean().item()
        assert 0 < frac <= 0.45  # one rectangle of 2 %..40 % of the area (rounding allowed)
        rows, cols = zero.any(1).nonzero(), zero.any(0).nonzero()
        assert zero.sum() == len(rows) * len(cols)  # it is a rectangle
        assert torch.equal(x, torch.ones(3, 32, 16))  # the input is not modified in place


def test_build_transforms_shapes_and_determinism():
    img = Image.fromarray(rgb_array(40, 20))
    train = build_transforms(64, 32, True)
    test = build_transforms(64, 32, False)
    assert [type(t).__name__ for t in train.transforms] == ["Resize", "RandomHorizontalFlip", "PadCrop",
                                                            "ToNormalizedTensor", "RandomErasing"]
    assert [type(t).__name__ for t in build_transforms(64, 32, True, flip_prob=0, pad=0, erasing_prob=0).transforms] \
        == ["Resize", "ToNormalizedTensor"]
    assert [type(t).__name__ for t in test.transforms] == ["Preprocess"]
    assert isinstance(train, Compose) and train(img).shape == (3, 64, 32)
    assert torch.equal(test(img), test(img))
    outs = []
    for seed in (1, 1, 2, 3, 4):
        random.seed(seed)
        outs.append(torch.stack([train(img) for _ in range(4)]))
    assert torch.equal(outs[0], outs[1])
    assert any(not torch.equal(outs[0], o) for o in outs[2:])
