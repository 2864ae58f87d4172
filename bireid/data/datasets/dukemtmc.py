"""DukeMTMC-reID: the Market-1501 layout and naming (``0001_c2_f0046182.jpg``) with 8 cameras.

``root`` is the data set folder itself or a parent holding the release folder ``DukeMTMC-reID``.
"""

from __future__ import annotations

from pathlib import Path

from .base import MARKET_LAYOUT, ReIDDataset, find_layout_root, market_style_dataset, register_dataset

NUM_CAMERAS = 8


@register_dataset("dukemtmc")
def dukemtmc(root: str | Path) -> ReIDDataset:
    """Parse DukeMTMC-reID at ``root``."""
    folder = find_layout_root(root, "dukemtmc", MARKET_LAYOUT, subfolders=("DukeMTMC-reID",))
    return market_style_dataset(folder, "dukemtmc", NUM_CAMERAS)
