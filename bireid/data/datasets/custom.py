"""A custom data set described by a CSV list.

``root`` is the CSV file itself or a folder holding ``list.csv``. The file has the header
``path,pid,camid,split`` and one row per image:

- ``path``: the image file; relative paths are resolved against the CSV file's folder;
- ``pid``: integer identity; ``-1`` marks junk rows, which are dropped (other negative values are errors).
  Unlike Market-1501, pid 0 is an ordinary identity here;
- ``camid``: integer camera, **0-based** (``>= 0``);
- ``split``: ``train``, ``query`` or ``gallery``.

Training pids are relabelled ``0..N-1`` in sorted order; query and gallery keep the pids given. Every listed
file must exist. Any split may be empty (e.g. an evaluation-only list), but not all of them.
"""

from __future__ import annotations

from pathlib import Path

from .base import (
    DatasetError,
    ReIDDataset,
    Sample,
    find_list_file,
    listed_path,
    read_list_rows,
    register_dataset,
    relabel,
)

HEADER = ("path", "pid", "camid", "split")
SPLITS = ("train", "query", "gallery")
DEFAULT_NAME = "list.csv"


def _int(text: str, what: str, where: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise DatasetError(f"custom: {what} {text!r} is not an integer at {where}") from None


@register_dataset("custom")
def custom(root: str | Path, eval_only: bool = False) -> ReIDDataset:
    """Read the CSV list at ``root`` (a file, or a folder holding list.csv); ``eval_only`` skips the train rows
    (their files need not exist)."""
    csv_path = find_list_file(root, "custom", DEFAULT_NAME)
    splits: dict[str, list[Sample]] = {s: [] for s in SPLITS}
    for where, (rel, pid_text, cam_text, split) in read_list_rows(csv_path, "custom", HEADER):
        pid = _int(pid_text, "pid", where)
        camid = _int(cam_text, "camid", where)
        split = split.lower()
        if split not in SPLITS:
            raise DatasetError(f"custom: split must be train, query or gallery at {where}, got {split!r}")
        if eval_only and split == "train":
            continue
        if camid < 0:
            raise DatasetError(f"custom: camid must be >= 0 (0-based) at {where}, got {camid}")
        if pid == -1:
            continue  # junk
        if pid < 0:
            raise DatasetError(f"custom: pid must be >= 0 (or -1 for junk) at {where}, got {pid}")
        path = listed_path(rel, csv_path)
        if not path.is_file():
            raise DatasetError(f"custom: image {path.resolve()} listed at {where} does not exist")
        splits[split].append(Sample(str(path), pid, camid))
    if not any(splits.values()):
        raise DatasetError(f"custom: CSV list {csv_path.resolve()} has no images")
    return ReIDDataset("custom", relabel(splits["train"]), splits["query"], splits["gallery"])
