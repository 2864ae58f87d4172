"""The folder-per-class layout (torchvision's ImageFolder, ImageNet's train/val release, the CIFAR-10 JPEG set)::

    root/train/<class>/*.jpg|png     training images, one folder per class
    root/test/<class>/...            test images (or root/val/<class>/...)

Classes are the training class folders in sorted order (label = position); a test class folder must also be a
training class. Every class folder must hold at least one image (.jpg/.jpeg/.png, any case). ``eval_only`` reads
the test images only (the classes still come from ``train/`` when it exists, else from the test folder).
"""

from __future__ import annotations

from pathlib import Path

from ..datasets.base import DatasetError, check_root_dir, list_images
from ..labelled import FileSplit, LabelledData
from ..transforms import load_image
from .base import register_classification_dataset

TEST_FOLDERS = ("test", "val")


def _class_folders(folder: Path, dataset: str) -> list[Path]:
    dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        raise DatasetError(f"{dataset}: {folder.resolve()} has no class folders (expected {folder.name}/<class>/*.jpg)")
    return dirs


@register_classification_dataset("folders")
def image_folders(root: str | Path, eval_only: bool = False) -> LabelledData:
    """Parse ``root/train/<class>/`` and ``root/test/<class>/`` (or ``val``)."""
    name = "folders"
    base = check_root_dir(root, name)
    train_dir = base / "train"
    if not train_dir.is_dir() and not eval_only:
        raise DatasetError(f"{name}: missing folder {train_dir.resolve()} (expected root/train/<class>/ and "
                           "root/test/<class>/)")
    test_dir = next((base / t for t in TEST_FOLDERS if (base / t).is_dir()), None)
    if test_dir is None:
        raise DatasetError(f"{name}: missing folder {(base / 'test').resolve()} (or {(base / 'val').resolve()})")
    classes = [d.name for d in _class_folders(train_dir if train_dir.is_dir() else test_dir, name)]
    index = {c: i for i, c in enumerate(classes)}
    splits = []
    for folder in (train_dir, test_dir):
        paths, labels = [], []
        if eval_only and folder == train_dir:
            splits.append(FileSplit(paths, labels, load_image))
            continue
        for d in _class_folders(folder, name):
            if d.name not in index:
                raise DatasetError(f"{name}: class folder {d.resolve()} has no training counterpart in "
                                   f"{train_dir.resolve()}")
            files = list_images(d, name)
            paths += [str(f) for f in files]
            labels += [index[d.name]] * len(files)
        splits.append(FileSplit(paths, labels, load_image))
    return LabelledData(name, classes, splits[0], splits[1])
