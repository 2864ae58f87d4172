"""CUHK03-NP (the new 767/700 protocol release): ``root/{detected,labeled}/{bounding_box_train,query,
bounding_box_test}`` with Market-style names (``0001_c1_1.png``) and 2 cameras.

``split`` picks the ``detected`` (default) or ``labeled`` boxes. ``root`` is the release folder itself or a
parent holding ``cuhk03-np``.
"""

from __future__ import annotations

from pathlib import Path

from .base import (
    DatasetError,
    ReIDDataset,
    check_root_dir,
    find_layout_root,
    market_layout,
    market_style_dataset,
    register_dataset,
)

NUM_CAMERAS = 2
SPLITS = ("detected", "labeled")


@register_dataset("cuhk03", config_options=lambda d: {"split": d.cuhk03_split})
def cuhk03(root: str | Path, split: str = "detected", eval_only: bool = False) -> ReIDDataset:
    """Parse the ``split`` ('detected' or 'labeled') boxes of CUHK03-NP at ``root`` (``eval_only``: query and
    gallery only)."""
    if split not in SPLITS:
        raise DatasetError(f"cuhk03: split must be one of {', '.join(SPLITS)}, got {split!r}")
    base = check_root_dir(root, "cuhk03")
    if not (base / split).exists() and (base / "cuhk03-np" / split).exists():
        base = base / "cuhk03-np"
    folder = find_layout_root(base, "cuhk03", [f"{split}/{d}" for d in market_layout(eval_only)]) / split
    return market_style_dataset(folder, "cuhk03", NUM_CAMERAS, eval_only)
