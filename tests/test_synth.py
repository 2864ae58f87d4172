"""The synthetic benchmark: determinism, Market layout, protocol properties, manifest handling, the command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bireid.cli import main as cli_main
from bireid.data import DatasetError, build_dataset, synth
from bireid.data.synth import MANIFEST_NAME, ensure_synthetic, generate_synthetic, read_manifest

MARKET = re.compile(r"([-\d]+)_c(\d)")
NAME = re.compile(r"^(-1|\d{4})_c\ds\d_\d{6}_\d{2}\.jpg$")
TINY = dict(num_train_ids=4, num_test_ids=4, num_cameras=4, seed=0)
# Even smaller (a few dozen images) for tests of the folder handling, not of the protocol.
SMALL = dict(num_train_ids=2, num_test_ids=2, num_cameras=3, seed=0, train_images_min=2, train_images_max=3,
             distractor_ratio=1.0, junk_ratio=0.5)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _parse(folder: Path) -> list[tuple[int, int, Path]]:
    out = []
    for p in sorted(folder.glob("*.jpg")):
        m = MARKET.search(p.name)
        assert m is not None and NAME.match(p.name), p.name
        out.append((int(m.group(1)), int(m.group(2)), p))
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("synth") / "set", **TINY)


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    params = {**SMALL, "occlusion_prob": 0.7}  # exercise the occluders too
    a = _files(generate_synthetic(tmp_path / "one", **params))
    b = _files(generate_synthetic(tmp_path / "again", **params))
    assert len(a) > 15 and a.keys() == b.keys()
    assert all(a[k] == b[k] for k in a), "same seed must give byte-identical files"
    other = _files(generate_synthetic(tmp_path / "other", **{**params, "seed": 1}))
    jpgs = {v for k, v in a.items() if k.endswith(".jpg")}
    assert len(jpgs) == len(a) - 1, "every image is distinct"
    assert not jpgs & {v for k, v in other.items() if k.endswith(".jpg")}, "another seed gives other images"
    assert a[MANIFEST_NAME] != other[MANIFEST_NAME]


def test_layout_names_and_protocol(tiny: Path) -> None:
    train = _parse(tiny / "bounding_box_train")
    query = _parse(tiny / "query")
    gallery = _parse(tiny / "bounding_box_test")
    with Image.open(train[0][2]) as im:
        assert im.format == "JPEG" and im.size == (64, 128)
    train_ids = {p for p, _, _ in train}
    assert len(train_ids) >= 4 and min(train_ids) > 0
    cams_of: dict[int, set[int]] = defaultdict(set)
    for pid, cam, _ in train:
        cams_of[pid].add(cam)
    assert all(len(c) >= 2 for c in cams_of.values()), "every training identity is seen by >= 2 cameras"
    per_id = [sum(1 for p, _, _ in train if p == pid) for pid in train_ids]
    assert min(per_id) >= 10 and max(per_id) <= 16
    assert {c for _, c, _ in train + query + gallery} == {1, 2, 3, 4}
    query_ids = {p for p, _, _ in query}
    assert len(query_ids) >= 4 and min(query_ids) > 0 and not query_ids & train_ids
    seen = set()
    for pid, cam, _ in query:
        assert (pid, cam) not in seen, "at most one query per identity and camera"
        seen.add((pid, cam))
        assert any(g == pid and gc != cam for g, gc, _ in gallery), f"query {pid} c{cam}: no cross-camera match"
    assert any(g == pid and gc == cam for pid, cam, _ in query for g, gc, _ in gallery), \
        "same-camera gallery images exist (the protocol must remove them)"
    assert sum(p == 0 for p, _, _ in gallery) == 10 and sum(p == -1 for p, _, _ in gallery) == 4
    assert not any(p <= 0 for p, _, _ in train + query)


def test_build_dataset_parses_with_market_rules(tiny: Path) -> None:
    ds = build_dataset("synthetic", tiny, **TINY)
    assert ds.name == "synthetic"
    assert sorted({s.pid for s in ds.train}) == [0, 1, 2, 3]
    assert {s.camid for s in ds.train + ds.query + ds.gallery} == {0, 1, 2, 3}
    assert 0 in {s.pid for s in ds.gallery}, "distractors stay in the gallery"
    assert all(s.pid != -1 for s in ds.gallery), "junk is dropped by the parser"
    n_gal = len(list((tiny / "bounding_box_test").glob("*.jpg")))
    assert len(ds.gallery) == n_gal - 4


def test_same_identity_looks_more_alike_than_different(tmp_path: Path) -> None:
    """A colour-histogram sanity check: identity is carried by appearance (not noise or file names)."""
    root = generate_synthetic(tmp_path / "s", num_train_ids=6, num_test_ids=1, num_cameras=4, seed=3,
                              train_images_min=6, train_images_max=8, distractor_ratio=0, junk_ratio=0)

    def feat(path: Path) -> np.ndarray:
        a = np.asarray(Image.open(path).convert("RGB"), np.float32)[16:120, 20:44]  # the figure's middle
        a = a / (a.reshape(-1, 3).mean(0) + 1.0)  # grey-world: cancels the camera's cast and brightness
        q = np.clip(a * 2, 0, 3.999).astype(int)
        h = np.concatenate([np.bincount((b[..., 0] * 16 + b[..., 1] * 4 + b[..., 2]).ravel(), minlength=64)
                            for b in np.array_split(q, 4)]).astype(np.float32)
        return np.sqrt(h / h.sum())

    items = _parse(root / "bounding_box_train")
    f = np.stack([feat(p) for _, _, p in items])
    pids = np.array([p for p, _, _ in items])
    cams = np.array([c for _, c, _ in items])
    d = ((f[:, None] - f[None]) ** 2).sum(-1)
    same = (pids[:, None] == pids[None]) & (cams[:, None] != cams[None])  # same person, other camera
    diff = pids[:, None] != pids[None]
    # Were identity not carried by appearance, both numbers would sit at chance (ratio ~1, wins ~0.5).
    assert d[same].mean() < 0.9 * d[diff].mean(), (d[same].mean(), d[diff].mean())
    wins = np.mean([d[i][same[i]].mean() < d[i][diff[i]].mean() for i in range(len(f))])
    assert wins >= 0.65, f"only {wins:.0%} of images are closer to their own identity than to others"


def test_manifest_reuse_and_regeneration(tmp_path: Path) -> None:
    root = tmp_path / "set"
    ensure_synthetic(root, **SMALL)
    man = read_manifest(root)
    assert man["params"]["num_train_ids"] == 2 and man["version"] == synth.GENERATOR_VERSION
    probe = root / "query" / "keep.txt"  # survives only if the folder is reused, not regenerated
    probe.write_text("x")
    ensure_synthetic(root, **SMALL)
    assert probe.exists(), "a matching set must be reused"
    ensure_synthetic(root, **{**SMALL, "seed": 5})
    assert not probe.exists() and read_manifest(root)["params"]["seed"] == 5
    victim = next((root / "bounding_box_train").glob("*.jpg"))
    victim.unlink()  # a damaged set (files missing) is regenerated
    probe.write_text("x")
    ensure_synthetic(root, **{**SMALL, "seed": 5})
    assert victim.exists() and not probe.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary folders left behind"


def test_refuses_to_delete_a_folder_without_manifest(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    root.mkdir()
    (root / "precious.txt").write_text("do not delete")
    with pytest.raises(DatasetError, match=re.escape(str(root))):
        ensure_synthetic(root, **SMALL)
    with pytest.raises(DatasetError, match="not a synthetic set"):
        generate_synthetic(root, **SMALL)
    assert (root / "precious.txt").read_text() == "do not delete"
    (root / MANIFEST_NAME).write_text("{broken")
    with pytest.raises(DatasetError, match="synth.json"):
        ensure_synthetic(root, **SMALL)
    assert (root / "precious.txt").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (ensure_synthetic(empty, **SMALL) / MANIFEST_NAME).is_file(), "an empty folder may be used"


def test_interrupted_run_leaves_no_half_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "set"
    ensure_synthetic(root, **SMALL)
    before = _files(root)
    calls = {"n": 0}
    real = synth.render._Renderer.image

    def flaky(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] > 8:
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    monkeypatch.setattr(synth.render._Renderer, "image", flaky)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic(root, **{**SMALL, "seed": 9})
    assert _files(root) == before, "the previous complete set is left as it was"
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic(tmp_path / "fresh", **SMALL)
    assert not (tmp_path / "fresh").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_stale_partial_folders_of_dead_runs_are_removed(tmp_path: Path) -> None:
    root = tmp_path / "set"
    stale = tmp_path / ".set.partial-dead"
    (stale / "query").mkdir(parents=True)
    dead = os.fork()
    if dead == 0:  # a child that exits at once: its pid is no longer alive afterwards
        os._exit(0)
    os.waitpid(dead, 0)
    (stale / synth.store._PARTIAL_MARKER).write_text(json.dumps({"host": os.uname().nodename, "pid": dead}))
    foreign = tmp_path / ".set.partial-foreign"  # no marker: not ours, never touched
    foreign.mkdir()
    old = tmp_path / ".set.old-cut"  # a replaced set whose removal was cut short
    old.mkdir()
    (old / MANIFEST_NAME).write_text(json.dumps({"generator": synth.GENERATOR}))
    generate_synthetic(root, **SMALL)
    assert not stale.exists() and not old.exists() and foreign.exists()


def test_bad_parameters_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="num_cameras"):
        generate_synthetic(tmp_path / "a", num_cameras=10)
    with pytest.raises(DatasetError, match="unknown synthetic-set option"):
        generate_synthetic(tmp_path / "a", colour=3)
    with pytest.raises(DatasetError, match="difficulty"):
        generate_synthetic(tmp_path / "a", difficulty=1.5)
    with pytest.raises(DatasetError, match="occlusion_prob"):
        generate_synthetic(tmp_path / "a", occlusion_prob=-0.1)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="not a folder"):
        generate_synthetic(tmp_path / "file", **SMALL)
    assert not (tmp_path / "a").exists()


def test_difficulty_knobs_are_recorded_and_change_the_set(tmp_path: Path) -> None:
    easy = generate_synthetic(tmp_path / "easy", **{**SMALL, "difficulty": 0.0})
    p = read_manifest(easy)["params"]
    assert p["difficulty"] == 0.0 and p["occlusion_prob"] == pytest.approx(0.1)
    hard = generate_synthetic(tmp_path / "hard", **{**SMALL, "difficulty": 1.0, "occlusion_prob": 0.9})
    assert read_manifest(hard)["params"]["occlusion_prob"] == 0.9
    a, b = _files(easy), _files(hard)
    assert any(a[k] != b.get(k) for k in a)


def test_command_writes_a_set_and_a_preview(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, png = tmp_path / "cmd", tmp_path / "prev" / "montage.png"
    rc = cli_main(["synth", "--out", str(out), "--train-ids", "2", "--test-ids", "2", "--cameras", "4",
                   "--seed", "1", "--distractor-ratio", "1", "--preview", str(png), "--preview-ids", "3"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "bounding_box_train" in text and "query" in text and str(png) in text and "generated in" in text
    summary = read_manifest(out)["summary"]
    assert summary["bounding_box_train"]["ids"] == 2 and summary["query"]["ids"] == 2
    with Image.open(png) as im:
        w, h = im.size
    # rows = identities (3 asked, the set has 2), columns = 4 cameras, cells at 2x zoom
    assert 4 * 128 <= w < 5 * 128 and 2 * 256 <= h < 3 * 256, (w, h)
    assert cli_main(["synth", "--out", str(out), "--train-ids", "2", "--test-ids", "2", "--cameras", "4",
                     "--seed", "1", "--distractor-ratio", "1"]) == 0
    assert "reused" in capsys.readouterr().out
    rc = cli_main(["synth", "--out", str(tmp_path / "bad"), "--cameras", "12"])
    assert rc == 2 and "num_cameras" in capsys.readouterr().err
    # another process (other hash seed) writes byte-identical files
    env = {**os.environ, "PYTHONHASHSEED": "12345", "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "bireid", "synth", "--out", str(tmp_path / "sub"), "--train-ids", "2",
                    "--test-ids", "2", "--cameras", "4", "--seed", "1", "--distractor-ratio", "1"], env=env,
                   check=True, capture_output=True)
    assert _files(tmp_path / "sub") == _files(out)
