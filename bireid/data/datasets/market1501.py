"""Market-1501: ``bounding_box_train``, ``query``, ``bounding_box_test``; names like ``0002_c1s1_000451_03.jpg``.

``root`` is the data set folder itself or a parent holding the release folder ``Market-1501-v15.09.15``.
pid -1 (junk) is dropped everywhere; pid 0 (distractors) is kept in the gallery only; cameras 1..6 become 0..5.
"""

from __future__ import annotations

from pathlib import Path

from .base import ReIDDataset, find_layout_root, market_layout, market_style_dataset, register_dataset

NUM_CAMERAS = 6


@register_dataset("market1501")
def market1501(root: str | Path, eval_only: bool = False) -> ReIDDataset:
    """Parse Market-1501 at ``root`` (``eval_only``: query and gallery only; no training folder needed)."""
    folder = find_layout_root(root, "market1501", market_layout(eval_only), subfolders=("Market-1501-v15.09.15",))
    return market_style_dataset(folder, "market1501", NUM_CAMERAS, eval_only)
