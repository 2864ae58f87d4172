"""Gallery search and extraction with a .bnn model: the feature cache (where it lives, when it is read, when
it is invalid), bad images, argument checks before work, result shapes, and the extract/search commands."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from helpers import FakeTerminal, write_gallery
from PIL import Image

from bireid.cli import main
from bireid.deploy import FeatureExtractor, GalleryIndex
from bireid.deploy.export import export_bnn
from bireid.modeling.backbones.binary_resnet import binary_resnet18
from bireid.modeling.reid_model import ReIDModel

SIZE = (32, 16)


def _export(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = ReIDModel(binary_resnet18(width=16), num_classes=5).eval()
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            m.running_mean.uniform_(-0.3, 0.3)
    return export_bnn(model, path, input_size=SIZE, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))


@pytest.fixture(scope="module")
def bnn(tmp_path_factory) -> Path:
    return _export(tmp_path_factory.mktemp("m") / "m.bnn", 0)


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own user cache folder (the default cache location)."""
    home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


@pytest.fixture()
def gallery(tmp_path) -> tuple[Path, list[Path]]:
    return write_gallery(tmp_path / "gallery")


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


class Counter:
    """Counts the images the engine computes features for (wraps the model's forward)."""

    def __init__(self, fx: FeatureExtractor, monkeypatch):
        self.images = 0
        real = fx.model.forward

        def forward(batch, *a, **kw):
            self.images += len(batch)
            return real(batch, *a, **kw)

        monkeypatch.setattr(fx.model, "forward", forward)


# ------------------------------------------------------------------------------------------------ search results
def test_single_query_gives_1d_results_and_batches_2d(bnn, gallery):
    folder, paths = gallery
    fx = FeatureExtractor(bnn)
    index = GalleryIndex.build(fx, folder, cache=False)
    q = fx(paths[2])  # (1, D)
    ids, dists = index.search(q[0], topk=3)
    assert ids.shape == dists.shape == (3,)
    names = [index.paths[i] for i in ids]  # the README's use
    assert names[0] == paths[2]
    ids2, dists2 = index.search(np.concatenate([q, fx(paths[4])]), topk=3)
    assert ids2.shape == dists2.shape == (2, 3)
    np.testing.assert_array_equal(ids2[0], ids)
    assert index.search(q, topk=3)[0].shape == (1, 3)  # a batch of one stays a batch


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_search_puts_the_query_first_at_distance_zero(bnn, gallery, tmp_path, capsys, metric):
    folder, paths = gallery
    for query in (paths[0], paths[3]):
        assert main(["search", "--model", str(bnn), "--gallery", str(folder), "--query", str(query), "--topk", "3",
                     "--metric", metric, "--out", str(tmp_path / "r.png")]) == 0
        rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
        assert [r[0] for r in rows] == ["1", "2", "3"]
        assert rows[0][2] == str(query), rows
        scale = 1.0 if metric == "cosine" else float(np.square(FeatureExtractor(bnn)(query)).sum())
        assert abs(float(rows[0][1])) <= 1e-4 * scale
        assert all(float(r[1]) > 1e-3 * scale for r in rows[1:])  # the other images are really elsewhere


# ------------------------------------------------------------------------------------------------ the cache
def test_cache_lives_in_the_user_cache_folder_and_a_second_build_does_not_extract(
        bnn, gallery, cache_home, monkeypatch):
    folder, paths = gallery
    before = _tree(folder)
    fx = FeatureExtractor(bnn)
    count = Counter(fx, monkeypatch)
    first = GalleryIndex.build(fx, folder)
    assert _tree(folder) == before, "the gallery folder must only be read"
    assert len(list((cache_home / "bireid" / "gallery").glob("*.npz"))) == 1
    assert count.images == len(paths) and first.num_extracted == len(paths)
    second = GalleryIndex.build(fx, folder)
    assert count.images == len(paths), "the second build must read every feature from the cache"
    np.testing.assert_array_equal(second.feats, first.feats)
    assert second.paths == first.paths
    # A changed image is extracted again, alone.
    Image.fromarray(np.zeros((30, 15, 3), np.uint8)).save(paths[1])
    third = GalleryIndex.build(fx, folder)
    assert count.images == len(paths) + 1
    np.testing.assert_array_equal(third.feats[1], fx(paths[1])[0])
    np.testing.assert_array_equal(np.delete(third.feats, 1, 0), np.delete(first.feats, 1, 0))


def test_a_changed_model_file_invalidates_the_cache(gallery, tmp_path, monkeypatch):
    folder, paths = gallery
    model = _export(tmp_path / "model.bnn", 0)
    old = GalleryIndex.build(FeatureExtractor(model), folder)
    _export(model, 1)  # another model written over the same file
    fx = FeatureExtractor(model)
    count = Counter(fx, monkeypatch)
    new = GalleryIndex.build(fx, folder)
    assert count.images == len(paths)
    np.testing.assert_array_equal(new.feats, fx(paths))
    assert not np.allclose(new.feats, old.feats)


def test_a_corrupt_cache_is_rebuilt_with_a_warning(bnn, gallery, cache_home, monkeypatch):
    folder, paths = gallery
    fx = FeatureExtractor(bnn)
    ref = GalleryIndex.build(fx, folder).feats
    (cache_file,) = (cache_home / "bireid" / "gallery").glob("*.npz")
    for garbage in (b"", b"PK\x03\x04 not a zip", cache_file.read_bytes()[:100]):
        cache_file.write_bytes(garbage)
        count = Counter(fx, monkeypatch)
        with pytest.warns(RuntimeWarning, match="unreadable.*rebuilding"):
            index = GalleryIndex.build(fx, folder)
        assert count.images == len(paths)
        np.testing.assert_array_equal(index.feats, ref)
    count = Counter(fx, monkeypatch)
    GalleryIndex.build(fx, folder)  # the rebuilt cache is whole again
    assert count.images == 0


def test_no_cache_reads_and_writes_nothing(bnn, gallery, cache_home, tmp_path, monkeypatch):
    folder, paths = gallery
    before = _tree(folder)
    for _ in range(2):
        assert main(["search", "--model", str(bnn), "--gallery", str(folder), "--query", str(paths[0]),
                     "--no-cache", "--out", str(tmp_path / "r.png")]) == 0
    assert not cache_home.exists() and _tree(folder) == before
    fx = FeatureExtractor(bnn)
    GalleryIndex.build(fx, folder)  # a cache exists now ...
    count = Counter(fx, monkeypatch)
    GalleryIndex.build(fx, folder, cache=False)  # ... and cache=False does not read it
    assert count.images == len(paths)


def test_a_read_only_gallery_works(bnn, gallery, tmp_path, capsys):
    folder, paths = gallery
    before = _tree(folder)
    modes = {p: p.stat().st_mode for p in [folder, *paths]}
    for p in [folder, *paths]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        for _ in range(2):  # the second run reads the cache
            assert main(["search", "--model", str(bnn), "--gallery", str(folder), "--query", str(paths[0]),
                         "--out", str(tmp_path / "r.png")]) == 0, capsys.readouterr().err
    finally:
        for p, m in modes.items():
            p.chmod(m)
    assert _tree(folder) == before  # (as root, permissions do not stop writes: this is the real check)


def test_an_unwritable_cache_folder_only_warns(bnn, gallery, tmp_path):
    folder, paths = gallery
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.warns(RuntimeWarning, match="cannot write the gallery cache"):
        index = GalleryIndex.build(FeatureExtractor(bnn), folder, cache_dir=blocker / "cache")
    assert len(index.paths) == len(paths)


# ------------------------------------------------------------------------------------------------ bad images
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_bad_images_are_all_reported_or_skipped(bnn, gallery, tmp_path, capsys):
    folder, paths = gallery
    bad = [paths[1], paths[4]]
    for p in bad:
        _truncate(p)
    out = tmp_path / "f.npy"
    assert main(["extract", "--model", str(bnn), "--images", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert all(str(p) in err for p in bad) and "--bad-images skip" in err and not out.exists()
    assert main(["extract", "--model", str(bnn), "--images", str(folder), "--out", str(out),
                 "--bad-images", "skip"]) == 0
    good = [p for p in paths if p not in bad]
    assert out.with_suffix(".txt").read_text().split() == [str(p) for p in good]
    np.testing.assert_array_equal(np.load(out), FeatureExtractor(bnn)(good))
    png = tmp_path / "r.png"
    assert main(["search", "--model", str(bnn), "--gallery", str(folder), "--query", str(paths[0]),
                 "--out", str(png)]) == 2
    err = capsys.readouterr().err
    assert all(str(p) in err for p in bad) and not png.exists()
    assert main(["search", "--model", str(bnn), "--gallery", str(folder), "--query", str(paths[0]),
                 "--out", str(png), "--bad-images", "skip", "--topk", "6"]) == 0
    listed = capsys.readouterr().out
    assert png.is_file() and all(str(p) in listed for p in good) and not any(str(p) in listed for p in bad)


# ------------------------------------------------------------------------------------------------ commands
@pytest.mark.parametrize("out", ["ranks", "ranks.xyz"])
def test_search_checks_the_picture_name_before_any_work(bnn, gallery, tmp_path, monkeypatch, capsys, out):
    folder, paths = gallery
    calls = []
    monkeypatch.setattr(GalleryIndex, "build", classmethod(lambda *a, **k: calls.append(1)))
    assert main(["search", "--model", str(bnn), "--gallery", str(folder), "--query", str(paths[0]),
                 "--out", str(tmp_path / out)]) == 2
    assert not calls
    assert "--out" in capsys.readouterr().err


def test_extract_writes_exactly_the_path_it_reports(bnn, gallery, tmp_path, capsys):
    folder, paths = gallery
    out = tmp_path / "feats"
    assert main(["extract", "--model", str(bnn), "--images", str(folder), "--out", str(out)]) == 0
    assert f"wrote {out}:" in capsys.readouterr().out
    assert out.is_file() and not (tmp_path / "feats.npy").exists()
    np.testing.assert_array_equal(np.load(out), FeatureExtractor(bnn)(paths))
    assert (tmp_path / "feats.txt").read_text().split() == [str(p) for p in paths]


def test_extract_finds_images_in_subfolders_in_a_fixed_order(bnn, tmp_path):
    """MARS layout: bbox_test/<pid>/<frames>; every image is found, sorted by path."""
    rng = np.random.default_rng(1)
    root = tmp_path / "bbox_test"
    files = []
    for pid in ("0002", "0001"):
        (root / pid).mkdir(parents=True)
        for f in (3, 1):
            p = root / pid / f"{pid}C1T0001F00{f}.jpg"
            Image.fromarray(rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)).save(p)
            files.append(p)
    out = tmp_path / "f.npy"
    assert main(["extract", "--model", str(bnn), "--images", str(root), "--out", str(out)]) == 0
    listed = out.with_suffix(".txt").read_text().split()
    assert listed == sorted(str(p) for p in files)
    np.testing.assert_array_equal(np.load(out), FeatureExtractor(bnn)(listed))


def test_model_folder_is_a_helpful_error(bnn, gallery, tmp_path, capsys):
    folder, _ = gallery
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(bnn, models / "m.bnn")
    assert main(["extract", "--model", str(models), "--images", str(folder), "--out", str(tmp_path / "f.npy")]) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and "m.bnn" in err


def test_extract_and_search_show_progress_on_a_terminal(bnn, gallery, tmp_path, monkeypatch):
    folder, paths = gallery
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main(["extract", "--model", str(bnn), "--images", str(folder), "--out", str(tmp_path / "f.npy")]) == 0
    assert f"{len(paths)}/{len(paths)}" in term.text
    term.parts.clear()
    assert main(["search", "--model", str(bnn), "--gallery", str(folder), "--query", str(paths[0]),
                 "--out", str(tmp_path / "r.png")]) == 0
    assert f"{len(paths)}/{len(paths)}" in term.text
    term.parts.clear()
    assert main(["extract", "--model", str(bnn), "--images", str(folder), "--out", str(tmp_path / "f.npy"),
                 "--no-progress"]) == 0
    assert f"{len(paths)}/{len(paths)}" not in term.text


@pytest.mark.skipif(os.geteuid() == 0, reason="as root, permissions do not stop writes")
def test_read_only_gallery_permissions(bnn, gallery, tmp_path):
    folder, paths = gallery
    folder.chmod(0o555)
    try:
        assert main(["search", "--model", str(bnn), "--gallery", str(folder), "--query", str(paths[0]),
                     "--out", str(tmp_path / "r.png")]) == 0
    finally:
        folder.chmod(0o755)


def test_a_missing_file_in_a_list_gallery_follows_the_bad_image_policy(bnn, gallery, tmp_path):
    from bireid.deploy import BadImagesError

    folder, paths = gallery
    listed = [*paths, folder / "gone.jpg"]
    fx = FeatureExtractor(bnn)
    with pytest.raises(BadImagesError, match="gone.jpg"):
        GalleryIndex.build(fx, listed)
    index = GalleryIndex.build(fx, listed, bad_images="skip")
    assert index.paths == paths and [e.path for e in index.skipped] == [str(folder / "gone.jpg")]
