"""``bireid synth``: write the built-in synthetic re-ID benchmark (a Market-1501-format folder)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "generate the built-in synthetic re-ID benchmark (Market-1501 layout)"
DESCRIPTION = """Generate the deterministic synthetic re-ID benchmark: person-like figures seen by several
cameras (each with its own illumination, colour cast, blur, background and viewpoint habits), with
occlusions, distractors (pid 0000) and junk boxes (pid -1), written as a Market-1501 folder
(bounding_box_train, query, bounding_box_test) plus a synth.json manifest. An existing set with the same
parameters is reused; one with other parameters is replaced by this command; a folder that is not a
synthetic set is never touched. `bireid train --data-root` on a set made here never replaces it: training
with other settings stops with an error naming the differing settings. --preview writes a montage PNG
(rows = identities, columns = cameras)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..config import SYNTH_DIFFICULTY
    from ..data.synth import DEFAULT_ROOT

    p.add_argument("--out", default=DEFAULT_ROOT, help="output folder (default: %(default)s)")
    p.add_argument("--train-ids", type=int, default=120, help="training identities (default: %(default)s)")
    p.add_argument("--test-ids", type=int, default=120,
                   help="test identities, in query and gallery (default: %(default)s)")
    p.add_argument("--cameras", type=int, default=6, help="cameras, 2..9 (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: %(default)s)")
    p.add_argument("--height", type=int, default=128, help="image height in pixels (default: %(default)s)")
    p.add_argument("--width", type=int, default=64, help="image width in pixels (default: %(default)s)")
    p.add_argument("--difficulty", type=float, default=SYNTH_DIFFICULTY,
                   help="0 (easy) .. 1 (hard): sets every knob below that is not given (default: %(default)s)")
    p.add_argument("--camera-strength", type=float, default=None,
                   help="scale of between-camera differences (default: from --difficulty)")
    p.add_argument("--occlusion-prob", type=float, default=None,
                   help="probability of an occluder per image (default: from --difficulty)")
    p.add_argument("--share-prob", type=float, default=None,
                   help="probability an identity copies an attribute from its look-alike family "
                        "(default: from --difficulty)")
    p.add_argument("--distractor-ratio", type=float, default=2.5,
                   help="distractor (pid 0000) gallery images per test identity (default: %(default)s)")
    p.add_argument("--junk-ratio", type=float, default=1.0,
                   help="junk (pid -1) gallery images per test identity (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="regenerate even when a matching set exists")
    p.add_argument("--preview", metavar="PNG", default=None,
                   help="also write a montage PNG: rows = identities, columns = cameras")
    p.add_argument("--preview-ids", type=int, default=12,
                   help="identities (rows) in the preview (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from ..data.synth import FOLDERS, generate_synthetic, is_current, read_manifest, render_preview

    params = dict(num_train_ids=args.train_ids, num_test_ids=args.test_ids, num_cameras=args.cameras,
                  seed=args.seed, height=args.height, width=args.width, difficulty=args.difficulty,
                  camera_strength=args.camera_strength, occlusion_prob=args.occlusion_prob,
                  share_prob=args.share_prob, distractor_ratio=args.distractor_ratio, junk_ratio=args.junk_ratio)
    t = time.perf_counter()
    reuse = not args.force and is_current(args.out, **params)
    root = Path(args.out) if reuse else generate_synthetic(args.out, **params)
    secs = time.perf_counter() - t
    man = read_manifest(root)
    summary = man["summary"]
    how = "reused (same parameters)" if reuse else f"generated in {secs:.1f} s"
    print(f"synthetic set in {root}: {how}; generator v{man['version']}, seed {args.seed}, "
          f"difficulty {man['params']['difficulty']:g}, {args.cameras} cameras, {args.height}x{args.width}")
    rows = [("folder", "ids", "images", "cameras", "distractors", "junk")]
    for folder in FOLDERS:
        s = summary[folder]
        rows.append((folder, str(s["ids"]), str(s["images"]), str(s["cameras"]), str(s["distractors"]),
                     str(s["junk"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  " + "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    if args.preview:
        out = render_preview(args.preview, num_ids=args.preview_ids, num_train_ids=args.train_ids,
                             num_cameras=args.cameras, seed=args.seed, height=args.height, width=args.width,
                             **{k: v for k, v in params.items() if k not in (
                                 "num_train_ids", "num_test_ids", "num_cameras", "seed", "height", "width")})
        print(f"preview: {out}")
    return 0
