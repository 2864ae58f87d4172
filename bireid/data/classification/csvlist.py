"""An image-classification data set described by a CSV list.

``root`` is the CSV file itself or a folder holding ``list.csv``, with the header ``path,label,split`` and one row
per image: ``path`` (relative paths are resolved against the CSV file's folder; the file must exist), ``label``
(the class name; classes are the training labels in sorted order), ``split`` (``train``, or ``test`` / ``val``).
A test label that no training row has is an error. ``eval_only`` reads the test rows only (training rows give the
class names; their files need not exist).
"""

from __future__ import annotations

from pathlib import Path

from ..datasets.base import DatasetError, find_list_file, listed_path, read_list_rows
from ..labelled import FileSplit, LabelledData
from ..transforms import load_image
from .base import register_classification_dataset

HEADER = ("path", "label", "split")
DEFAULT_NAME = "list.csv"


@register_classification_dataset("csv")
def csv_list(root: str | Path, eval_only: bool = False) -> LabelledData:
    """Read the CSV list at ``root`` (a file, or a folder holding list.csv)."""
    csv_path = find_list_file(root, "csv", DEFAULT_NAME)
    rows: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for where, (rel, label, split) in read_list_rows(csv_path, "csv", HEADER):
        split = {"val": "test"}.get(split.lower(), split.lower())
        if split not in rows:
            raise DatasetError(f"csv: split must be train, test or val at {where}, got {split!r}")
        if not label:
            raise DatasetError(f"csv: empty label at {where}")
        path = listed_path(rel, csv_path)
        if not path.is_file() and not (eval_only and split == "train"):
            raise DatasetError(f"csv: image {path.resolve()} listed at {where} does not exist")
        rows[split].append((str(path), label))
    if not rows["train"]:
        raise DatasetError(f"csv: CSV list {csv_path.resolve()} has no training rows")
    classes = sorted({label for _, label in rows["train"]})
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({label for _, label in rows["test"]} - set(classes))
    if unknown:
        raise DatasetError(f"csv: test label(s) {', '.join(map(repr, unknown[:5]))} of {csv_path.resolve()} have no "
                           "training rows")
    if eval_only:
        rows["train"] = []
    splits = [FileSplit([p for p, _ in rows[s]], [index[lb] for _, lb in rows[s]], load_image) for s in rows]
    return LabelledData("csv", classes, splits[0], splits[1])
