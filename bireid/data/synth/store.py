"""Synthetic set: writing a set to disk atomically, its manifest, and reusing a set that is already there."""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from pathlib import Path
from typing import Any

from ..datasets.base import DatasetError
from .knobs import SynthError, _params
from .plan import _Item, _plan
from .render import _Renderer

GENERATOR = "bireid.synth"
GENERATOR_VERSION = 1
MANIFEST_NAME = "synth.json"
DEFAULT_ROOT = "runs/_data/synthetic"
FOLDERS = ("bounding_box_train", "query", "bounding_box_test")
_PARTIAL_MARKER = ".bireid-synth-partial"
# Who made a set (the manifest's "origin"): training on first use ("auto": bireid's own cache, which training
# may replace by a set of other settings) or a request (`bireid synth`, generate_synthetic: the user's set,
# which only an explicit request replaces). Manifests from before this field count as the user's.
AUTO = "auto"
REQUESTED = "requested"


def _read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of a synthetic set, None when the folder has none; raises on a foreign/broken one."""
    path = root / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        man = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SynthError(f"{path} is not a readable synthetic-set manifest ({e}); refusing to touch "
                         f"{root}: remove it yourself or choose another folder") from e
    if not isinstance(man, dict) or man.get("generator") != GENERATOR:
        raise SynthError(f"{path} was not written by {GENERATOR}; refusing to touch {root}")
    return man


def _folder_stats(root: Path) -> dict[str, dict[str, int]]:
    out = {}
    for f in FOLDERS:
        files = [e for e in os.scandir(root / f) if e.name.endswith(".jpg")] if (root / f).is_dir() else []
        out[f] = {"images": len(files), "bytes": sum(e.stat().st_size for e in files)}
    return out


def _is_complete(root: Path, man: dict[str, Any]) -> bool:
    try:
        return _folder_stats(root) == man.get("files")
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_partials(root: Path) -> None:
    """Remove hidden half-written sets of ``root`` left by killed runs on this host (marker-checked)."""
    for cand in root.parent.glob(f".{root.name}.partial-*"):
        marker = cand / _PARTIAL_MARKER
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue  # not ours (or unreadable): leave it alone
        if info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", -1))):
            shutil.rmtree(cand, ignore_errors=True)
    for cand in root.parent.glob(f".{root.name}.old-*"):  # a replaced set whose removal was cut short
        try:
            ours = _read_manifest(cand) is not None
        except DatasetError:
            ours = False
        if ours:
            shutil.rmtree(cand, ignore_errors=True)


def _check_replaceable(root: Path) -> None:
    """Raise unless ``root`` is absent, empty, or a synthetic set (with our manifest)."""
    if not root.exists():
        return
    if not root.is_dir():
        raise SynthError(f"{root} exists and is not a folder; cannot write the synthetic set there")
    if _read_manifest(root) is None and any(root.iterdir()):
        raise SynthError(f"{root} is not empty and has no {MANIFEST_NAME} (it is not a synthetic set "
                         "written by bireid); refusing to delete it: remove it yourself or choose another folder")


def generate_synthetic(out_dir: str | os.PathLike, num_train_ids: int = 120, num_test_ids: int = 120,
                       num_cameras: int = 6, seed: int = 0, height: int = 128, width: int = 64,
                       origin: str = REQUESTED, progress: bool = True, **knobs: Any) -> Path:
    """Write the synthetic set to ``out_dir`` (replacing a previous synthetic set there) and return it.

    ``knobs`` are the difficulty options of :func:`resolve_knobs` (``difficulty`` defaults to the config's
    ``SYNTH_DIFFICULTY``). The set is written into a hidden sibling folder and renamed into place at the end.
    A folder that exists, is not empty and has no ``synth.json`` is never deleted: that raises ``DatasetError``
    naming it. ``origin`` is recorded in the manifest (:data:`REQUESTED` or :data:`AUTO`); ``progress`` shows
    a progress bar on a terminal.
    """
    from tqdm import tqdm

    prm = _params(num_train_ids, num_test_ids, num_cameras, seed, height, width, **knobs)
    root = Path(out_dir)
    _check_replaceable(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_partials(root)
    tmp = root.parent / f".{root.name}.partial-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        (tmp / _PARTIAL_MARKER).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
        for f in FOLDERS:
            (tmp / f).mkdir()
        rend = _Renderer(prm)
        items = _plan(prm, rend.cams)
        q = prm["jpeg_quality"]
        for it in tqdm(items, desc=f"generating the synthetic set in {root}", unit="img", leave=False,
                       disable=None if progress else True):
            rend.image(it.split, it.idx, it.cam, it.k).save(tmp / it.folder / it.name, "JPEG", quality=q)
        manifest = {"generator": GENERATOR, "version": GENERATOR_VERSION, "origin": origin, "params": prm,
                    "files": _folder_stats(tmp), "summary": _summary_of(items)}
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        (tmp / _PARTIAL_MARKER).unlink()
        _swap_in(tmp, root, prm)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _swap_in(tmp: Path, root: Path, prm: dict[str, Any]) -> None:
    """Rename the finished set into place, moving an old synthetic set aside first. If another process
    put the same set there meanwhile (e.g. several ranks generating at once), keep that one."""
    old = None
    if root.exists():
        _check_replaceable(root)  # re-check: someone may have written there meanwhile
        old = root.parent / f".{root.name}.old-{uuid.uuid4().hex[:12]}"
        os.replace(root, old)
    try:
        os.replace(tmp, root)
    except OSError:
        if old is not None and not root.exists():
            os.replace(old, root)
        if not _matches(root, prm):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _matches(root: Path, prm: dict[str, Any]) -> bool:
    """Whether ``root`` holds the complete set of parameters ``prm`` (from this generator version)."""
    man = _read_manifest(root) if root.is_dir() else None
    return (man is not None and man.get("version") == GENERATOR_VERSION and _json_eq(man.get("params"), prm)
            and _is_complete(root, man))


def _summary_of(items: list[_Item]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for folder in FOLDERS:
        sel = [it for it in items if it.folder == folder]
        real = [it for it in sel if it.pid > 0]
        out[folder] = {"images": len(sel), "ids": len({it.pid for it in real}),
                       "cameras": len({it.cam for it in sel}),
                       "distractors": sum(it.pid == 0 for it in sel), "junk": sum(it.pid < 0 for it in sel)}
    return out


def requested_set(root: str | os.PathLike) -> Path | None:
    """``root`` when it holds a complete set made by ``bireid synth`` (whatever its settings), else None."""
    root = Path(root)
    man = _read_manifest(root) if root.is_dir() else None
    if man is None or man.get("origin") == AUTO or man.get("version") != GENERATOR_VERSION:
        return None
    return root if _is_complete(root, man) else None


def ensure_synthetic(root: str | os.PathLike = DEFAULT_ROOT, **params: Any) -> Path:
    """Return ``root`` holding the synthetic set for ``params`` (the arguments of
    :func:`generate_synthetic`): reused when its manifest matches and every file is there, generated when
    absent, regenerated when damaged (the same set again) or when it is a set training generated (origin
    :data:`AUTO`) with other settings. A set made on request (``bireid synth``) with other settings is never
    replaced: that raises ``SynthError`` naming the differing settings. Never deletes a non-empty folder
    without a ``synth.json`` (raises ``DatasetError``)."""
    root = Path(root)
    if is_current(root, **params):
        return root
    full = {**_DEFAULT_SIZES, **params}
    man = _read_manifest(root) if root.is_dir() else None
    if man is not None and man.get("origin") != AUTO:
        # The user's set: what the caller asks for must match; its other settings (image size, cameras, knobs
        # set one by one) are the set's own, since training cannot ask for them.
        diffs = _differences(man, _params(**full), only=set(params))
        if not diffs and man.get("version") == GENERATOR_VERSION and _is_complete(root, man):
            return root
        if diffs:
            raise SynthError(f"{root} holds a synthetic set made by `bireid synth` with other settings ("
                             + "; ".join(diffs) + "); it is left as it is. To use it, ask for its settings "
                             "(data.synth_train_ids, data.synth_test_ids, data.synth_seed, data.synth_difficulty); "
                             "for other settings choose another --data-root, or replace it on purpose with "
                             f"`bireid synth --out {root} --force ...`")
    return generate_synthetic(root, origin=AUTO, **full)


def _differences(man: dict[str, Any], prm: dict[str, Any], only: set[str] | None = None) -> list[str]:
    """How the set of manifest ``man`` differs from parameters ``prm`` ('name: in the set vs asked'), on the
    parameters named in ``only`` (all when None)."""
    out = []
    if man.get("version") != GENERATOR_VERSION:
        out.append(f"generator version: {man.get('version')} in the set vs {GENERATOR_VERSION} here")
    old = json.loads(json.dumps(man.get("params") or {}))
    new = json.loads(json.dumps(prm))
    for key in sorted((set(old) | set(new)) if only is None else only):
        if old.get(key) != new.get(key):
            out.append(f"{key}: {old.get(key)!r} in the set vs {new.get(key)!r} asked")
    return out


_DEFAULT_SIZES = {"num_train_ids": 120, "num_test_ids": 120, "num_cameras": 6, "seed": 0, "height": 128,
                  "width": 64}


def is_current(root: str | os.PathLike, **params: Any) -> bool:
    """Whether ``root`` already holds the complete synthetic set for ``params`` (so it would be reused)."""
    return _matches(Path(root), _params(**{**_DEFAULT_SIZES, **params}))


def _json_eq(a: Any, b: Any) -> bool:
    return json.loads(json.dumps(a, sort_keys=True)) == json.loads(json.dumps(b, sort_keys=True))


def read_manifest(root: str | os.PathLike) -> dict[str, Any]:
    """The manifest of the synthetic set in ``root`` (DatasetError when there is none)."""
    man = _read_manifest(Path(root))
    if man is None:
        raise SynthError(f"{Path(root) / MANIFEST_NAME} not found: {root} is not a synthetic set")
    return man
