"""Image-classification data: the folder-per-class, CSV-list and CIFAR-10 binary parsers (and their errors), the
shuffled batch sampler, the augmentation and the bad-file policy of the labelled loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from task_fixtures import cifar_image, cifar_record, tar_folder, write_cifar_bin, write_image_folders

from bireid.data import CLASSIFICATION_DATASETS, BadImageError, DatasetError
from bireid.data.labelled import build_labelled_test_loader, build_labelled_train_loader
from bireid.data.samplers import ShuffleBatchSampler
from bireid.tasks import get_task, new_config


def image_transform(size: int, train: bool, pad: int = 4):
    """The classification task's own transform at ``size`` x ``size``."""
    cfg = new_config("classification")
    cfg.data.height = cfg.data.width = size
    cfg.data.pad = pad
    return get_task("classification").transform(cfg, train)


def parse(name, root):
    return CLASSIFICATION_DATASETS.get(name).build(root)


# ------------------------------------------------------------------------------------------------ folders
def test_folders_labels_are_sorted_class_folders(tmp_path):
    write_image_folders(tmp_path, classes=("zebra", "ant", "moth"), n_train=2, n_test=1, test_name="val")
    ds = parse("folders", tmp_path)
    assert ds.classes == ["ant", "moth", "zebra"]
    assert len(ds.train) == 6 and len(ds.test) == 3
    for i in range(len(ds.train)):
        assert ds.classes[ds.train.labels[i]] in ds.train.source(i)  # the file sits in its class's folder
    assert ds.train.load(0).size == (16, 16)


@pytest.mark.parametrize("breakage,needles", [
    ("no_test", ["missing folder", "test"]),
    ("extra_test_class", ["has no training counterpart", "whale"]),
    ("empty_class", ["has no images", "moth"]),
])
def test_folders_errors_name_the_folder(tmp_path, breakage, needles):
    write_image_folders(tmp_path, classes=("ant", "moth"), n_train=2, n_test=1)
    if breakage == "no_test":
        import shutil

        shutil.rmtree(tmp_path / "test")
    elif breakage == "extra_test_class":
        (tmp_path / "test" / "whale").mkdir()
    else:
        for f in (tmp_path / "train" / "moth").iterdir():
            f.unlink()
    with pytest.raises(DatasetError) as e:
        parse("folders", tmp_path)
    assert all(n in str(e.value) for n in needles), str(e.value)


# ------------------------------------------------------------------------------------------------ CSV
def test_csv_list_classes_from_training_labels(tmp_path):
    write_image_folders(tmp_path, classes=("a", "b"), n_train=1, n_test=1)
    (tmp_path / "list.csv").write_text("path,label,split\ntrain/b/000.png,bee,train\ntrain/a/000.png,ant,train\n"
                                       f"{tmp_path}/test/a/000.png,ant,val\n\n")
    ds = parse("csv", tmp_path)
    assert ds.classes == ["ant", "bee"] and ds.train.labels == [1, 0] and ds.test.labels == [0]
    assert ds.train.source(0) == str(tmp_path / "train/b/000.png")


@pytest.mark.parametrize("text,needles", [
    ("path,pid,split\n", ["must start with the header", "path,label,split"]),
    ("path,label,split\ntrain/a/000.png,ant\n", ["expected 3 fields", "line 2"]),
    ("path,label,split\nnope.png,ant,train\n", ["does not exist", "nope.png", "line 2"]),
    ("path,label,split\ntrain/a/000.png,ant,dev\n", ["split must be train, test or val", "line 2"]),
    ("path,label,split\ntrain/a/000.png,ant,train\ntest/a/000.png,yak,test\n", ["'yak'", "no training rows"]),
])
def test_csv_list_errors(tmp_path, text, needles):
    write_image_folders(tmp_path, classes=("a",), n_train=1, n_test=1)
    (tmp_path / "l.csv").write_text(text)
    with pytest.raises(DatasetError) as e:
        parse("csv", tmp_path / "l.csv")
    assert all(n in str(e.value) for n in needles), str(e.value)


# ------------------------------------------------------------------------------------------------ CIFAR-10 binary
def test_cifar_binary_records_decode_pixel_for_pixel(tmp_path):
    write_cifar_bin(tmp_path / "cifar-10-batches-bin", per_file=3)
    for root in (tmp_path, tmp_path / "cifar-10-batches-bin",
                 tar_folder(tmp_path / "cifar-10-batches-bin", tmp_path / "cifar-10-binary.tar.gz")):
        ds = parse("cifar10", root)
        assert ds.classes == [f"class{i}" for i in range(10)]
        assert len(ds.train) == 15 and len(ds.test) == 3
        assert ds.train.labels == [k % 10 for k in range(15)] and ds.test.labels == [5, 6, 7]
        img = np.asarray(ds.train.load(4))  # record 4 of the training files: R = 7 row, G = 5 col, B = 4
        assert img.shape == (32, 32, 3)
        assert img[3, 10].tolist() == [21, 50, 4] and img[31, 0].tolist() == [217, 0, 4]
        assert np.array_equal(np.asarray(ds.test.load(2)), cifar_image(17))


def test_cifar_binary_without_meta_uses_the_official_names(tmp_path):
    write_cifar_bin(tmp_path, per_file=1, meta=False)
    assert parse("cifar10", tmp_path).classes[:3] == ["airplane", "automobile", "bird"]


@pytest.mark.parametrize("breakage,needles", [
    ("truncated", ["test_batch.bin", "not a whole number of 3,073-byte records"]),
    ("label", ["label 23", "0..9", "data_batch_1.bin"]),
    ("missing", ["missing", "data_batch_3.bin"]),
    ("pickled", ["python (pickled) release", "never unpickles"]),
])
def test_cifar_binary_errors(tmp_path, breakage, needles):
    write_cifar_bin(tmp_path, per_file=1)
    if breakage == "truncated":
        raw = (tmp_path / "test_batch.bin").read_bytes()
        (tmp_path / "test_batch.bin").write_bytes(raw[:-5])
    elif breakage == "label":
        (tmp_path / "data_batch_1.bin").write_bytes(cifar_record(23, cifar_image(0)))
    elif breakage == "missing":
        (tmp_path / "data_batch_3.bin").unlink()
    else:
        for f in tmp_path.glob("*.bin"):
            f.rename(f.with_suffix(""))
    with pytest.raises(DatasetError) as e:
        parse("cifar10", tmp_path)
    assert all(n in str(e.value) for n in needles), str(e.value)


def test_unknown_classification_data_set_names_close_matches():
    with pytest.raises(DatasetError, match="did you mean 'cifar10'"):
        CLASSIFICATION_DATASETS.get("cifar-10")


# ------------------------------------------------------------------------------------------------ sampler, loaders
def test_shuffle_sampler_shards_the_single_process_batches():
    single = ShuffleBatchSampler(23, 6, seed=3)
    single.set_epoch(2)
    batches = list(single)
    assert len(batches) == 3 and all(len(b) == 6 for b in batches)  # the incomplete last batch is dropped
    assert len({i for b in batches for i in b}) == 18
    shards = []
    for r in range(3):
        s = ShuffleBatchSampler(23, 6, seed=3, rank=r, world_size=3)
        s.set_epoch(2)
        shards.append(list(s))
    assert [sum((sh[b] for sh in shards), []) for b in range(3)] == batches
    single.set_epoch(3)
    assert list(single) != batches
    with pytest.raises(ValueError, match="divisible"):
        ShuffleBatchSampler(23, 6, world_size=4)
    with pytest.raises(DatasetError, match="fewer than one batch"):
        ShuffleBatchSampler(5, 6)


def test_train_augmentation_is_pad_crop_flip(tmp_path):
    import random

    from PIL import Image

    img = Image.fromarray(np.full((8, 8, 3), 255, np.uint8))
    tf = image_transform(8, True, pad=2)
    random.seed(0)
    crops = [tf(img) for _ in range(40)]
    assert all(c.shape == (3, 8, 8) for c in crops)
    for c in crops:  # a window of the 2-pixel padded image: the white part is one (8-|dy|) x (8-|dx|) rectangle
        white = (c[0] > 0).numpy()
        rows, cols = white.any(1).sum(), white.any(0).sum()
        assert rows >= 6 and cols >= 6 and white.sum() == rows * cols
    shifts = {(int((c[0] > 0).any(1).sum()), int((c[0] > 0).any(0).sum())) for c in crops}
    assert len(shifts) > 3  # the offset is random
    test = image_transform(8, False)(img)
    assert (test[0] > 0).all()


def test_labelled_loaders_skip_or_stop_on_a_corrupt_image(tmp_path):
    write_image_folders(tmp_path, classes=("a", "b"), n_train=4, n_test=2)
    bad = tmp_path / "test" / "b" / "001.png"
    bad.write_bytes(b"not a png")
    ds = parse("folders", tmp_path)
    tf = image_transform(16, False)
    loader = build_labelled_test_loader(ds.test, tf, 8, 0, "skip")
    with pytest.warns(RuntimeWarning, match="skipped 1"):
        batches = list(loader)
    assert sum(len(b[1]) for b in batches) == 3 and loader.bad_paths == [str(bad)]
    with pytest.raises(BadImageError, match="001.png"):
        list(build_labelled_test_loader(ds.test, tf, 8, 0, "error"))
    train = build_labelled_train_loader(ds.train, image_transform(16, True), 4, 0, "error", 0)
    x, y, _, idx = next(iter(train))
    assert x.shape == (4, 3, 16, 16) and torch.equal(y, torch.tensor([ds.train.labels[i] for i in idx]))
