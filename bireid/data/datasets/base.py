"""The data-set contract (``Sample``, ``ReIDDataset``), its errors, the parser registry ``DATASETS`` and shared
helpers. The registry is filled when ``bireid.data`` is imported (it imports every parser and the synthetic set).

Every parser returns a :class:`ReIDDataset` whose lists hold :class:`Sample` tuples with 0-based camera
ids; training identities are relabelled ``0..N-1`` (in sorted order of the original ids) so they can index
a classifier, while query and gallery keep the original ids (only equality matters at evaluation).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ... import images
from ...images import IMAGE_EXTENSIONS, ImageError
from ...registry import Registry


class DatasetError(ValueError):
    """A data set cannot be read as asked (missing folder, unparsable name, bad value); names the path."""


class BadImageError(DatasetError, ImageError):
    """An image file of a data set cannot be decoded (missing, unreadable, corrupt, truncated or too large);
    ``path`` and ``reason``, picklable (it travels back from loader workers)."""


class Sample(NamedTuple):
    """One image: its file, identity and 0-based camera."""

    path: str
    pid: int
    camid: int


@dataclass
class ReIDDataset:
    """A re-ID data set: training images (pids ``0..N-1``) plus query and gallery for evaluation."""

    name: str
    train: list[Sample] = field(default_factory=list)
    query: list[Sample] = field(default_factory=list)
    gallery: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def num_train_pids(self) -> int:
        return len({s.pid for s in self.train})

    @property
    def num_train_cams(self) -> int:
        return len({s.camid for s in self.train})

    def validate(self) -> None:
        """Check the contract: training pids are exactly ``0..N-1``; every camera id and pid is >= 0."""
        pids = sorted({s.pid for s in self.train})
        if pids != list(range(len(pids))):
            bad = next(p for i, p in enumerate(pids) if p != i)
            raise DatasetError(f"data set '{self.name}': training pids must be relabelled 0..{len(pids) - 1}, "
                               f"found pid {bad}")
        for split, samples in (("train", self.train), ("query", self.query), ("gallery", self.gallery)):
            for s in samples:
                if s.camid < 0:
                    raise DatasetError(f"data set '{self.name}' {split}: negative camera id {s.camid} for {s.path}")
                if s.pid < 0:
                    raise DatasetError(f"data set '{self.name}' {split}: negative pid {s.pid} (junk images must "
                                       f"be dropped) for {s.path}")

    def summary(self) -> str:
        """A small table: identities, images and cameras per split."""
        rows = [("split", "ids", "images", "cameras")]
        for split, samples in (("train", self.train), ("query", self.query), ("gallery", self.gallery)):
            rows.append((split, str(len({s.pid for s in samples})), str(len(samples)),
                         str(len({s.camid for s in samples}))))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [f"data set '{self.name}'"]
        for j, r in enumerate(rows):
            lines.append("  " + "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                                          for i, c in enumerate(r)))
            if j == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- registry
DatasetFactory = Callable[..., ReIDDataset]


def _no_options(data_cfg: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class DatasetSpec:
    """A registered data set: its parser ``build(root, **kw)``, the parser keywords it takes from the config's
    data section (``config_options(cfg.data)``) and the folder used when ``data.root`` is empty."""

    build: DatasetFactory
    config_options: Callable[[Any], dict[str, Any]] = _no_options
    default_root: str = ""


# Names are case-insensitive; an unknown name is a DatasetError (the CLI prints it as a user error).
DATASETS: Registry[DatasetSpec] = Registry("data set", error=DatasetError, fold_case=True)


def register_dataset(name: str, config_options: Callable[[Any], dict[str, Any]] | None = None,
                     default_root: str = "") -> Callable[[DatasetFactory], DatasetFactory]:
    """Decorator: register ``factory(root, **kw) -> ReIDDataset`` under ``name`` (case-insensitive).

    ``config_options(cfg.data)`` gives the keywords the factory takes from the config (e.g. a split); a name
    registered twice is an error.
    """

    def deco(factory: DatasetFactory) -> DatasetFactory:
        DATASETS.add(name, DatasetSpec(factory, config_options or _no_options, default_root))
        return factory

    return deco


def list_datasets() -> list[str]:
    """Names accepted by :func:`build_dataset`, sorted."""
    return DATASETS.names()


def build_dataset(name: str, root: str | Path, **kw) -> ReIDDataset:
    """Parse the data set ``name`` found at ``root``; extra keywords go to its parser."""
    return DATASETS.get(name).build(root, **kw)


# -------------------------------------------------------------------------------------------- shared helpers
def check_root_dir(root: str | Path, dataset: str) -> Path:
    """``root`` as a Path; it must be an existing folder."""
    if root is None or str(root) == "":
        raise DatasetError(f"{dataset}: no data set folder given (set data.root)")
    p = Path(root).expanduser()
    if not p.exists():
        raise DatasetError(f"{dataset}: data set folder {p.resolve()} does not exist")
    if not p.is_dir():
        raise DatasetError(f"{dataset}: data set root {p.resolve()} is a file, expected a folder")
    return p


def find_layout_root(root: str | Path, dataset: str, required: Iterable[str], subfolders: Iterable[str] = ()) -> Path:
    """The folder holding the ``required`` children: ``root`` itself or one of its ``subfolders`` (release names).

    A missing child raises a :class:`DatasetError` naming its full path.
    """
    base = check_root_dir(root, dataset)
    required, subfolders = list(required), list(subfolders)
    candidates = [base] + [base / s for s in subfolders if (base / s).is_dir()]
    for c in candidates:
        if all((c / r).exists() for r in required):
            break
    else:
        # Report against the candidate holding most of the layout (the release subfolder when present).
        c = max(reversed(candidates), key=lambda d: sum((d / r).exists() for r in required))
    for r in required:
        child = c / r
        if not child.exists():
            hint = ""
            if subfolders:
                hint = f" (the root may also be a folder holding {' or '.join(repr(s) for s in subfolders)})"
            raise DatasetError(f"{dataset}: missing folder {child.resolve()}{hint}")
        if not child.is_dir():
            raise DatasetError(f"{dataset}: {child.resolve()} is a file, expected a folder")
    return c


def list_images(folder: Path, dataset: str, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (:func:`bireid.images.list_images`), sorted; an empty folder is an error."""
    if not folder.is_dir():
        raise DatasetError(f"{dataset}: missing folder {folder.resolve()}")
    files = images.list_images(folder, recursive=recursive)
    if not files:
        raise DatasetError(f"{dataset}: folder {folder.resolve()} has no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def find_list_file(root: str | Path, dataset: str, default_name: str = "list.csv") -> Path:
    """The CSV list a data set is described by: ``root`` itself, or ``default_name`` in the folder ``root``."""
    if root is None or str(root) == "":
        raise DatasetError(f"{dataset}: no CSV list given (set data.root to the CSV file or its folder)")
    p = Path(root).expanduser()
    if p.is_dir():
        p = p / default_name
        if not p.is_file():
            raise DatasetError(f"{dataset}: missing list file {p.resolve()} (data.root may also be the CSV file)")
    elif not p.is_file():
        raise DatasetError(f"{dataset}: CSV list {p.resolve()} does not exist")
    return p


def read_list_rows(csv_path: Path, dataset: str, header: tuple[str, ...]) -> Iterator[tuple[str, list[str]]]:
    """The rows of the CSV list ``csv_path`` below its header, which must be ``header`` (any case): ``(where,
    fields)`` for each non-blank row, its fields stripped and as many as the header's; ``where`` names the line and
    the file for the caller's own errors."""
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        first = next(reader, None)
        if first is None:
            raise DatasetError(f"{dataset}: CSV list {csv_path.resolve()} is empty")
        if tuple(h.strip().lower() for h in first) != header:
            raise DatasetError(f"{dataset}: CSV list {csv_path.resolve()} must start with the header "
                               f"'{','.join(header)}', got '{','.join(first)}'")
        for row in reader:
            where = f"line {reader.line_num} of {csv_path.resolve()}"
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise DatasetError(f"{dataset}: expected {len(header)} fields ({','.join(header)}) at {where}, got "
                                   f"{len(row)}")
            yield where, [c.strip() for c in row]


def listed_path(rel: str, csv_path: Path) -> Path:
    """A path given in a CSV list: relative ones are relative to the list's folder."""
    path = Path(rel).expanduser()
    return path if path.is_absolute() else csv_path.parent / path


def check_camera(cam: int, num_cams: int, path: Path | str, dataset: str) -> int:
    """Convert a 1-based camera number to 0-based, checking it lies in ``1..num_cams``."""
    if not 1 <= cam <= num_cams:
        raise DatasetError(f"{dataset}: camera {cam} out of range 1..{num_cams} in {path}")
    return cam - 1


def relabel(samples: list[Sample]) -> list[Sample]:
    """Map training pids to ``0..N-1`` in sorted order of the original pids."""
    mapping = {pid: i for i, pid in enumerate(sorted({s.pid for s in samples}))}
    return [Sample(s.path, mapping[s.pid], s.camid) for s in samples]


_MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)")


def parse_market_folder(folder: Path, split: str, num_cams: int, dataset: str) -> list[Sample]:
    """Parse a Market-1501-style folder (``PPPP_cC...``): junk (-1) dropped; distractors (0) kept in gallery only.

    ``split`` is 'train', 'query' or 'gallery'. Cameras become 0-based; pids are kept (relabel separately).
    """
    out: list[Sample] = []
    for p in list_images(folder, dataset):
        m = _MARKET_NAME.match(p.name)
        if m is None:
            raise DatasetError(f"{dataset}: cannot parse pid and camera from file name '{p.name}' ({p.resolve()}); "
                               "expected names like 0002_c1s1_000451_03.jpg")
        pid, cam = int(m.group(1)), int(m.group(2))
        if pid == -1:
            continue  # junk
        if pid < -1:
            raise DatasetError(f"{dataset}: invalid pid {pid} in file name {p.resolve()}")
        camid = check_camera(cam, num_cams, p.resolve(), dataset)
        if pid == 0 and split != "gallery":
            continue  # distractors are only gallery negatives
        out.append(Sample(str(p), pid, camid))
    return out


def market_style_dataset(root: Path, name: str, num_cams: int, eval_only: bool = False) -> ReIDDataset:
    """Build a data set from a folder with bounding_box_train, query and bounding_box_test (``eval_only``: query
    and bounding_box_test only, no training split)."""
    query = parse_market_folder(root / "query", "query", num_cams, name)
    gallery = parse_market_folder(root / "bounding_box_test", "gallery", num_cams, name)
    if eval_only:
        return ReIDDataset(name, [], query, gallery)
    train = parse_market_folder(root / "bounding_box_train", "train", num_cams, name)
    if not train:
        raise DatasetError(f"{name}: no usable training images in {(root / 'bounding_box_train').resolve()} "
                           "(all junk or distractors)")
    return ReIDDataset(name, relabel(train), query, gallery)


MARKET_LAYOUT: tuple[str, ...] = ("bounding_box_train", "query", "bounding_box_test")
MARKET_EVAL_LAYOUT: tuple[str, ...] = ("query", "bounding_box_test")


def market_layout(eval_only: bool) -> tuple[str, ...]:
    """The Market-1501 folders a parser needs: all three, or only query and gallery when only evaluating."""
    return MARKET_EVAL_LAYOUT if eval_only else MARKET_LAYOUT
