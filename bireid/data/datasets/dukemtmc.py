"""DukeMTMC-reID: the Market-1501 layout and naming (``0001_c2_f0046182.jpg``) with 8 cameras.

``root`` is the data set folder itself or a parent holding the release folder ``DukeMTMC-reID``.
"""

from __future__ import annotations

from pathlib import Path

from .base import ReIDDataset, find_layout_root, market_layout, market_style_dataset, register_dataset

NUM_CAMERAS = 8


@register_dataset("dukemtmc")
def dukemtmc(root: str | Path, eval_only: bool = False) -> ReIDDataset:
    """Parse DukeMTMC-reID at ``root`` (``eval_only``: query and gallery only; no training folder needed)."""
    folder = find_layout_root(root, "dukemtmc", market_layout(eval_only), subfolders=("DukeMTMC-reID",))
    return market_style_dataset(folder, "dukemtmc", NUM_CAMERAS, eval_only)
