"""Detection data: the data-set record (images with person boxes, train and test splits) and the registry of
detection data sets (names for ``data.dataset`` under ``--task detection``).

Boxes are float (x1, y1, x2, y2) in pixels of the original image, continuous coordinates (a box covering pixel
columns 0..9 is x1=0, x2=10). ``ignore`` marks boxes that count neither as a miss nor as a false positive
(VOC ``difficult``, COCO ``iscrowd``): evaluation passes them on as such, training leaves them out of the targets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...registry import Registry
from ..datasets.base import DatasetError, DatasetSpec

PERSON = "person"


@dataclass
class DetSample:
    """One image: its file, size and person boxes (``boxes`` float32 (n, 4) xyxy, ``ignore`` bool (n,))."""

    path: str
    width: int
    height: int
    boxes: np.ndarray
    ignore: np.ndarray = field(default=None)  # type: ignore[assignment]
    image_id: int = 0

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.ignore = (np.zeros(len(self.boxes), bool) if self.ignore is None
                       else np.asarray(self.ignore, bool).reshape(-1))
        if len(self.ignore) != len(self.boxes):
            raise ValueError(f"{self.path}: {len(self.boxes)} boxes but {len(self.ignore)} ignore flags")


@dataclass
class DetectionData:
    """A detection data set: ``train`` and ``test`` lists of :class:`DetSample` (one class, person)."""

    name: str
    train: list[DetSample]
    test: list[DetSample]
    classes: tuple[str, ...] = (PERSON,)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def summary(self) -> str:
        lines = [f"data set '{self.name}': person detection"]
        for split, s in (("train", self.train), ("test", self.test)):
            boxes = sum(int((~x.ignore).sum()) for x in s)
            ign = sum(int(x.ignore.sum()) for x in s)
            lines.append(f"  {split:<5} {len(s):>6} images, {boxes:>7} boxes ({ign} ignored)")
        return "\n".join(lines)


# Case-insensitive; an unknown name is a DatasetError naming the close matches.
DETECTION_DATASETS: Registry[DatasetSpec] = Registry("detection data set", error=DatasetError, fold_case=True)


def register_detection_dataset(name: str, config_options: Callable[[Any], dict[str, Any]] | None = None,
                               default_root: str = "") -> Callable[[Callable[..., DetectionData]],
                                                                   Callable[..., DetectionData]]:
    """Decorator: register ``parser(root, eval_only=False, **kw) -> DetectionData`` under ``name``."""

    def deco(parser: Callable[..., Any]) -> Callable[..., Any]:
        if config_options is None:
            DETECTION_DATASETS.add(name, DatasetSpec(parser, default_root=default_root))
        else:
            DETECTION_DATASETS.add(name, DatasetSpec(parser, config_options, default_root))
        return parser

    return deco
