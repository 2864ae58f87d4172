"""The official CIFAR-10 *binary* release (``cifar-10-binary.tar.gz``), read as raw bytes.

Each of ``data_batch_1.bin`` .. ``data_batch_5.bin`` (training) and ``test_batch.bin`` holds 10,000 records of
3,073 bytes: one label byte (0..9), then the 32x32 image as 1,024 red, 1,024 green and 1,024 blue bytes, each
plane row-major; ``batches.meta.txt`` lists the class names, one per line. ``root`` may be the folder holding
the .bin files, a folder holding ``cifar-10-batches-bin/``, or the .tar.gz archive itself (members are read
without extracting); ``eval_only`` reads the test batch only. The "python version" of the release is pickled
and is refused: unpickling runs code.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from ..datasets.base import DatasetError
from ..labelled import ArraySplit, LabelledData
from .base import register_classification_dataset

RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILES = ("test_batch.bin",)
META = "batches.meta.txt"
SUBFOLDER = "cifar-10-batches-bin"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def decode_records(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 32, 32, 3), labels int64 (N,)) from the bytes of one binary batch file."""
    if len(raw) == 0 or len(raw) % RECORD:
        raise DatasetError(f"cifar10: {where} has {len(raw):,} bytes, not a whole number of {RECORD:,}-byte records "
                           "(truncated or not a CIFAR-10 binary batch)")
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)
    labels = rec[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise DatasetError(f"cifar10: record {int(bad[0])} of {where} has label {int(labels[bad[0]])}; CIFAR-10 labels "
                           "are 0..9 (the CIFAR-100 binary release has two label bytes and is not read here)")
    images = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _class_names(text: str | None, where: str) -> list[str]:
    if text is None:
        return list(CLASSES)
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if len(names) != 10:
        raise DatasetError(f"cifar10: {where} lists {len(names)} class names, expected 10")
    return names


def _read_folder(folder: Path, names: tuple[str, ...]) -> tuple[dict[str, bytes], str | None]:
    missing = [f for f in names if not (folder / f).is_file()]
    if missing:
        if (folder / "data_batch_1").is_file():
            raise DatasetError(f"cifar10: {folder.resolve()} holds the python (pickled) release; bireid reads only "
                               "the binary release (cifar-10-binary.tar.gz) and never unpickles")
        raise DatasetError(f"cifar10: missing {(folder / missing[0]).resolve()} (expected the binary release's "
                           f"{', '.join(TRAIN_FILES + TEST_FILES)})")
    files = {f: (folder / f).read_bytes() for f in names}
    meta = folder / META
    return files, meta.read_text(encoding="utf-8") if meta.is_file() else None


def _read_archive(path: Path, names: tuple[str, ...]) -> tuple[dict[str, bytes], str | None]:
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            missing = [f for f in names if f not in members]
            if missing:
                raise DatasetError(f"cifar10: archive {path.resolve()} has no {missing[0]} (is it "
                                   "cifar-10-binary.tar.gz?)")
            files = {f: tar.extractfile(members[f]).read() for f in names}  # type: ignore[union-attr]
            meta = tar.extractfile(members[META]).read().decode("utf-8") if META in members else None  # type: ignore[union-attr]
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DatasetError(f"cifar10: cannot read archive {path.resolve()}: {e}") from None
    return files, meta


@register_classification_dataset("cifar10")
def cifar10(root: str | Path, eval_only: bool = False) -> LabelledData:
    """Read the CIFAR-10 binary release at ``root`` (folder or .tar.gz): 50,000 training and 10,000 test images."""
    if root is None or str(root) == "":
        raise DatasetError("cifar10: no data set folder given (set data.root to the binary release's folder or "
                           "its .tar.gz)")
    p = Path(root).expanduser()
    if not p.exists():
        raise DatasetError(f"cifar10: {p.resolve()} does not exist")
    names = TEST_FILES if eval_only else TRAIN_FILES + TEST_FILES
    if p.is_file():
        files, meta = _read_archive(p, names)
    else:
        files, meta = _read_folder(p / SUBFOLDER if (p / SUBFOLDER).is_dir() else p, names)
    classes = _class_names(meta, f"{META} of {p.resolve()}")
    splits = []
    for batch_files, split in ((TRAIN_FILES, "train"), (TEST_FILES, "test")):
        parts = [decode_records(files[f], f"{f} of {p.resolve()}") for f in batch_files if f in files]
        images = np.concatenate([a for a, _ in parts]) if parts else np.zeros((0, 32, 32, 3), np.uint8)
        labels = np.concatenate([b for _, b in parts]) if parts else np.zeros(0, np.int64)
        splits.append(ArraySplit(images, labels.tolist(), f"{p.name}:{split}"))
    return LabelledData("cifar10", classes, splits[0], splits[1])
