"""MSMT17 (V1 layout): ``root/train/``, ``root/test/`` and the lists ``list_train.txt``, ``list_val.txt``,
``list_query.txt``, ``list_gallery.txt``.

Each list line is ``relative/path.jpg pid``; train and val paths are relative to ``train/``, query and gallery
paths to ``test/``. The camera is field 3 of the file name (``0000_000_01_0303morning_0015_0.jpg`` -> camera
1 of 1..15, stored 0-based). Train and val are merged for training (the common practice) and relabelled.
``root`` is the data set folder itself or a parent holding ``MSMT17_V1``.
"""

from __future__ import annotations

from pathlib import Path

from .base import DatasetError, ReIDDataset, Sample, check_camera, find_layout_root, register_dataset, relabel

NUM_CAMERAS = 15
LISTS = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")


def _parse_list(list_file: Path, image_dir: Path) -> list[Sample]:
    out: list[Sample] = []
    for lineno, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        where = f"line {lineno} of {list_file.resolve()}"
        if len(parts) != 2:
            raise DatasetError(f"msmt17: expected 'relative/path.jpg pid' at {where}, got {line.strip()!r}")
        rel, pid_text = parts
        try:
            pid = int(pid_text)
        except ValueError:
            raise DatasetError(f"msmt17: pid {pid_text!r} is not an integer at {where}") from None
        path = image_dir / rel
        fields = Path(rel).name.split("_")
        if len(fields) < 3 or not fields[2].isdigit():
            raise DatasetError(f"msmt17: cannot parse the camera from file name '{Path(rel).name}' ({path.resolve()}, "
                               f"{where}); expected names like 0000_000_01_0303morning_0015_0.jpg")
        camid = check_camera(int(fields[2]), NUM_CAMERAS, path.resolve(), "msmt17")
        if pid < 0:
            raise DatasetError(f"msmt17: negative pid {pid} at {where}")
        if not path.is_file():
            raise DatasetError(f"msmt17: image {path.resolve()} listed at {where} does not exist")
        out.append(Sample(str(path), pid, camid))
    if not out:
        raise DatasetError(f"msmt17: list {list_file.resolve()} has no images")
    return out


@register_dataset("msmt17")
def msmt17(root: str | Path, eval_only: bool = False) -> ReIDDataset:
    """Parse MSMT17 at ``root`` (``eval_only``: ``test/`` and the query/gallery lists only)."""
    folder = find_layout_root(root, "msmt17", ("test",) if eval_only else ("train", "test"), subfolders=("MSMT17_V1",))
    for name in LISTS[2:] if eval_only else LISTS:
        f = folder / name
        if not f.is_file():
            raise DatasetError(f"msmt17: missing list file {f.resolve()}")
    train: list[Sample] = []
    if not eval_only:
        train = _parse_list(folder / "list_train.txt", folder / "train")
        train += _parse_list(folder / "list_val.txt", folder / "train")
    query = _parse_list(folder / "list_query.txt", folder / "test")
    gallery = _parse_list(folder / "list_gallery.txt", folder / "test")
    return ReIDDataset("msmt17", relabel(train), query, gallery)
