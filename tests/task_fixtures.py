"""Tiny data sets for the classification tasks, written by the tests themselves (importable: pytest puts tests/ on
sys.path): image folders, CSV lists, CIFAR-10 binary batch files, PCD / OFF / .npy point clouds, ModelNet layouts.
Every writer follows the format's specification independently of bireid's readers."""

from __future__ import annotations

import struct
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)]


def class_image(label: int, rng: np.random.Generator, size: int = 16) -> Image.Image:
    """A noisy image in the class's colour (classes are easy to tell apart)."""
    base = np.array(COLOURS[label % len(COLOURS)], dtype=np.float64)
    arr = np.clip(base + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def write_image_folders(root: Path, classes=("cat", "dog", "eel"), n_train: int = 6, n_test: int = 3,
                        size: int = 16, test_name: str = "test") -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), (test_name, n_test)):
        for i, c in enumerate(classes):
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                class_image(i, rng, size).save(d / f"{k:03d}.png")
    return root


def cifar_record(label: int, image: np.ndarray) -> bytes:
    """One record of the CIFAR-10 binary format: the label byte, then the R, G and B planes, row-major."""
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    return bytes([label]) + b"".join(image[:, :, ch].tobytes(order="C") for ch in range(3))


def cifar_image(k: int) -> np.ndarray:
    """A deterministic test image: R = row, G = column, B = k (so every pixel's origin is checkable)."""
    r, c = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    return np.stack([r * 7 % 256, c * 5 % 256, np.full_like(r, k % 256)], axis=-1).astype(np.uint8)


def write_cifar_bin(folder: Path, per_file: int = 2, meta: bool = True) -> Path:
    """The binary release's six batch files with ``per_file`` records each (labels k % 10 in order)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    k = 0
    for name in names:
        raw = b""
        for _ in range(per_file):
            raw += cifar_record(k % 10, cifar_image(k))
            k += 1
        (folder / name).write_bytes(raw)
    if meta:
        (folder / "batches.meta.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n\n")
    return folder


def tar_folder(folder: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return out


def write_pcd(path: Path, points: np.ndarray, binary: bool = True, intensity: bool = False) -> Path:
    """A PCD v0.7 file by the format's spec; ``intensity`` adds a 1-byte unsigned field after x y z."""
    n = len(points)
    fields, sizes, types = "x y z", "4 4 4", "F F F"
    if intensity:
        fields, sizes, types = fields + " intensity", sizes + " 1", types + " U"
    head = (f"# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS {fields}\nSIZE {sizes}\nTYPE {types}\n"
            f"COUNT {' '.join('1' for _ in fields.split())}\nWIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\n"
            f"POINTS {n}\nDATA {'binary' if binary else 'ascii'}\n")
    if binary:
        body = b"".join(struct.pack("<fff", *p) + (struct.pack("<B", i % 256) if intensity else b"")
                        for i, p in enumerate(points))
    else:
        body = "".join(" ".join(repr(float(v)) for v in p) + (f" {i % 256}" if intensity else "") + "\n"
                       for i, p in enumerate(points)).encode()
    path.write_bytes(head.encode() + body)
    return path


def write_off(path: Path, vertices, faces, glued: bool = False) -> Path:
    """An OFF mesh; ``glued`` writes ModelNet40's "OFF<counts>" first line."""
    counts = f"{len(vertices)} {len(faces)} 0"
    lines = [f"OFF{counts}"] if glued else ["OFF", counts]
    lines += [" ".join(str(float(v)) for v in p) for p in vertices]
    lines += [f"{len(f)} " + " ".join(str(i) for i in f) for f in faces]
    path.write_text("\n".join(lines) + "\n")
    return path


def shape_points(label: int, rng: np.random.Generator, n: int = 64) -> np.ndarray:
    """Points of an easy class: 0 a sphere, 1 a flat square, 2 a line segment (scaled and shifted at random)."""
    if label == 0:
        p = rng.normal(size=(n, 3))
        p /= np.linalg.norm(p, axis=1, keepdims=True)
    elif label == 1:
        p = np.concatenate([rng.uniform(-1, 1, (n, 2)), np.zeros((n, 1))], axis=1)
    else:
        p = np.outer(rng.uniform(-1, 1, n), [1.0, 0.5, 0.2])
    return (p * rng.uniform(2, 5) + rng.normal(0, 3, 3)).astype(np.float32)


def write_modelnet(root: Path, classes=("ball", "plate", "stick"), n_train: int = 6, n_test: int = 3,
                   n_points: int = 64, mixed: bool = False) -> Path:
    """A ModelNet layout of PCD files (``mixed``: every third shape as .npy, one as an OFF tetrahedron)."""
    rng = np.random.default_rng(1)
    for i, c in enumerate(classes):
        for split, n in (("train", n_train), ("test", n_test)):
            d = root / c / split
            d.mkdir(parents=True, exist_ok=True)
            for k in range(n):
                pts = shape_points(i, rng, n_points)
                if mixed and k % 3 == 1:
                    np.save(d / f"{c}_{k:04d}.npy", pts)
                elif mixed and k % 3 == 2:
                    write_off(d / f"{c}_{k:04d}.off", [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]],
                              [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]])
                else:
                    write_pcd(d / f"{c}_{k:04d}.pcd", pts)
    return root


def tiny_task_config(task: str, root: Path, out: Path, **over):
    """A config of ``task`` that trains a tiny model on a tiny set in seconds."""
    from bireid.config import set_key
    from bireid.tasks import new_config

    cfg = new_config(task)
    base = {"data.root": str(root), "data.workers": 0, "data.batch_size": 6, "data.test_batch_size": 16,
            "train.epochs": 2, "train.output_dir": str(out), "train.progress": False, "optim.warmup_epochs": 0,
            "model.width": 16}
    if task == "classification":
        base.update({"data.dataset": "folders", "data.height": 16, "data.width": 16, "data.pad": 2})
    else:
        base.update({"data.dataset": "modelnet", "data.num_points": 32, "model.dropout": 0.0})
    for k, v in {**base, **over}.items():
        set_key(cfg, k, v)
    return cfg
