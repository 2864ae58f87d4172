"""The built-in synthetic re-ID benchmark: a deterministic generator of a Market-1501-format folder.

Every identity is a person-like figure drawn with PIL (head and hair, skin tone, upper-body clothing with a
pattern, lower-body clothing of a type, shoes, body shape, bags and hats) and seen by several cameras, each
with its own illumination, colour cast, gamma, blur, resolution, background scheme and viewpoint habits.
Identity is carried by appearance only; look-alike "families" (identities that copy some attributes from a
shared base outfit) and a skewed colour palette (most people wear the common colours) keep identities
confusable, so the benchmark separates methods.

Layout written (the standard Market-1501 one, parsed by ``bireid.data.datasets.market1501``)::

    out_dir/bounding_box_train/PPPP_cCsS_FFFFFF_BB.jpg   training identities (pids 1..T)
    out_dir/query/...                                    test identities (pids T+1..T+N), 1 image per camera
    out_dir/bounding_box_test/...                        test identities + distractors (pid 0000) + junk (-1)
    out_dir/synth.json                                   manifest: generator, version, parameters, counts

Determinism: every image has its own ``numpy.random.Generator`` seeded from (seed, stream, split, identity,
camera, index), so the same parameters give byte-identical files regardless of order, and no global RNG is
touched. Sets are written into a hidden sibling folder and renamed into place, so an interrupted run never
leaves a half-written set under the requested name.

Parts, in dependency order: ``knobs`` (parameters and shared constants), ``people`` (identities, palettes,
cameras), ``figure`` (drawing a background and a person), ``render`` (one image from its seed), ``plan`` (which
images exist), ``store`` (writing and reusing a set on disk), ``preview`` (a montage); this module registers
the data set ``synthetic``.
"""

from __future__ import annotations

import os
from typing import Any

from ..datasets.base import ReIDDataset, market_style_dataset, register_dataset
from .knobs import SynthError, resolve_knobs
from .preview import render_preview
from .store import (
    DEFAULT_ROOT,
    FOLDERS,
    GENERATOR,
    GENERATOR_VERSION,
    MANIFEST_NAME,
    ensure_synthetic,
    generate_synthetic,
    is_current,
    read_manifest,
    requested_set,
)

__all__ = ["DEFAULT_ROOT", "FOLDERS", "GENERATOR", "GENERATOR_VERSION", "MANIFEST_NAME", "SynthError", "build",
           "ensure_synthetic", "generate_synthetic", "is_current", "read_manifest", "render_preview",
           "requested_set", "resolve_knobs"]


def _config_options(d: Any) -> dict[str, Any]:
    """What the synthetic set takes from the config's data section."""
    return dict(num_train_ids=d.synth_train_ids, num_test_ids=d.synth_test_ids, seed=d.synth_seed,
                difficulty=d.synth_difficulty)


@register_dataset("synthetic", config_options=_config_options, default_root=DEFAULT_ROOT)
def build(root: str | os.PathLike | None = DEFAULT_ROOT, num_train_ids: int = 120, num_test_ids: int = 120,
          seed: int = 0, eval_only: bool = False, **knobs: Any) -> ReIDDataset:
    """The 'synthetic' data set: generated into ``root`` on first use (reused after), parsed as Market-1501
    (``eval_only``: query and gallery only). A set the user made with `bireid synth` is used as it is when it
    has the identities, seed and knobs asked for here, whatever its image size and cameras; for evaluation alone
    (``eval_only``: e.g. `bireid eval --data-root` on a larger test split) such a set is used whatever its
    settings, since a model meets unseen identities there anyway."""
    root = root or DEFAULT_ROOT
    folder = (eval_only and requested_set(root)) or ensure_synthetic(
        root, num_train_ids=num_train_ids, num_test_ids=num_test_ids, seed=seed, **knobs)
    cameras = read_manifest(folder)["params"]["num_cameras"]
    return market_style_dataset(folder, "synthetic", cameras, eval_only)
