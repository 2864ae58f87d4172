"""Point-cloud data: PCD (binary and ascii), OFF meshes and area-weighted surface sampling, .npy, the ModelNet
parsers and their errors, the preprocessing and augmentation, and BiPointNet's EMA shift."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from task_fixtures import write_modelnet, write_off, write_pcd

from bireid.data import POINTCLOUD_DATASETS, DatasetError
from bireid.data.pointcloud import (
    BadPointCloudError,
    PointCloudTransform,
    normalize_unit_sphere,
    read_off,
    read_pcd,
    read_points,
    rotation_about,
    sample_surface,
)
from bireid.data.pointcloud.transforms import choose_points
from bireid.nn import GlobalMaxPool, ema_shift

PTS = np.array([[0.5, -1.25, 3.0], [1e3, 2.5e-3, -7.0], [0.0, 0.0, 0.0]], dtype=np.float32)


# ------------------------------------------------------------------------------------------------ PCD
@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("intensity", [False, True])
def test_pcd_reads_xyz_whatever_other_fields(tmp_path, binary, intensity):
    got = read_pcd(write_pcd(tmp_path / "a.pcd", PTS, binary=binary, intensity=intensity))
    assert got.dtype == np.float32 and np.array_equal(got, PTS)


def test_pcd_drops_invalid_points(tmp_path):
    pts = np.vstack([PTS, [[np.nan, 1, 2]]]).astype(np.float32)
    assert np.array_equal(read_pcd(write_pcd(tmp_path / "a.pcd", pts, binary=False)), PTS)


def _pcd_with(tmp_path, old: bytes, new: bytes):
    p = write_pcd(tmp_path / "a.pcd", PTS)
    p.write_bytes(p.read_bytes().replace(old, new))
    return p


@pytest.mark.parametrize("edit,needles", [
    ((b"DATA binary", b"DATA binary_compressed"), ["binary_compressed", "not supported"]),
    ((b"FIELDS x y z", b"FIELDS x y w"), ["no z field"]),
    ((b"POINTS 3", b"POINTS 4"), ["truncated"]),
    ((b"DATA binary\n", b"DATUM binary\n"), ["no DATA line"]),
    ((b"TYPE F F F", b"TYPE F F Q"), ["unsupported or malformed"]),
])
def test_pcd_errors_name_the_file(tmp_path, edit, needles):
    p = _pcd_with(tmp_path, *edit)
    with pytest.raises(BadPointCloudError) as e:
        read_pcd(p)
    msg = str(e.value)
    assert msg.startswith(f"bad point cloud {p}") and all(n in msg for n in needles), msg


# ------------------------------------------------------------------------------------------------ OFF, sampling
def test_off_polygons_become_triangle_fans_and_glued_headers_parse(tmp_path):
    verts = [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]]
    for glued in (False, True):
        v, f = read_off(write_off(tmp_path / "m.off", verts, [[0, 1, 2, 3], [0, 1, 4]], glued=glued))
        assert v.shape == (5, 3) and f.tolist() == [[0, 1, 2], [0, 2, 3], [0, 1, 4]]


def test_surface_sampling_is_area_weighted_and_on_the_surface():
    # Two triangles in the plane z = 0 whose areas are 3 and 1: an independent point-in-triangle test counts.
    verts = np.array([[0, 0, 0], [3, 0, 0], [0, 2, 0], [10, 0, 0], [11, 0, 0], [10, 2, 0]], dtype=np.float64)
    tris = np.array([[0, 1, 2], [3, 4, 5]])
    pts = sample_surface(verts, tris, 40000, np.random.default_rng(0))
    assert np.all(pts[:, 2] == 0)
    in_big = (pts[:, 0] >= 0) & (pts[:, 1] >= 0) & (pts[:, 0] / 3 + pts[:, 1] / 2 <= 1 + 1e-9)
    in_small = (pts[:, 0] >= 10) & (pts[:, 1] >= 0) & ((pts[:, 0] - 10) + pts[:, 1] / 2 <= 1 + 1e-9)
    assert np.all(in_big | in_small)
    assert abs(in_big.mean() - 0.75) < 0.01
    # Uniform inside a triangle: a quarter of the big one's area (x >= 1.5) holds about a quarter of its points.
    assert abs((pts[in_big, 0] >= 1.5).mean() - 0.25) < 0.015


def test_off_read_as_points_is_deterministic(tmp_path):
    p = write_off(tmp_path / "t.off", [[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]])
    a, b = read_points(p, num_points=50), read_points(p, num_points=50)
    assert a.shape == (50, 3) and a.dtype == np.float32 and np.array_equal(a, b)


@pytest.mark.parametrize("text,needle", [
    ("PLY\n", "does not start with OFF"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "vertex 7"),
    ("OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "truncated"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n2 0 0\n3 0 1 2\n", "no surface"),
])
def test_off_errors(tmp_path, text, needle):
    p = tmp_path / "bad.off"
    p.write_text(text)
    with pytest.raises(BadPointCloudError, match=needle):
        read_points(p)


def test_npy_is_never_unpickled_and_must_be_m_by_3(tmp_path):
    np.save(tmp_path / "ok.npy", np.hstack([PTS, np.ones((3, 3), np.float32)]))
    assert np.array_equal(read_points(tmp_path / "ok.npy"), PTS)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BadPointCloudError, match="not a readable .npy"):
        read_points(tmp_path / "obj.npy")
    np.save(tmp_path / "flat.npy", np.zeros(5))
    with pytest.raises(BadPointCloudError, match=r"\(M, 3\+\)"):
        read_points(tmp_path / "flat.npy")
    with pytest.raises(BadPointCloudError, match="file not found"):
        read_points(tmp_path / "gone.pcd")


# ------------------------------------------------------------------------------------------------ ModelNet
def test_modelnet_layout_with_mixed_formats(tmp_path):
    write_modelnet(tmp_path, n_train=3, n_test=2, mixed=True)
    ds = POINTCLOUD_DATASETS.get("modelnet").build(tmp_path, num_points=20)
    assert ds.classes == ["ball", "plate", "stick"] and len(ds.train) == 9 and len(ds.test) == 6
    assert ds.train.labels == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    shapes = {ds.train.source(i).rsplit(".", 1)[1]: ds.train.load(i).shape for i in range(3)}
    assert shapes == {"pcd": (64, 3), "npy": (64, 3), "off": (20, 3)}  # the mesh is sampled to num_points


def test_modelnet_errors(tmp_path):
    write_modelnet(tmp_path, n_train=1, n_test=1)
    with pytest.raises(DatasetError, match=r"found 3 class folders .* expected 10"):
        POINTCLOUD_DATASETS.get("modelnet10").build(tmp_path)
    (tmp_path / "plate" / "test" / "plate_0000.pcd").unlink()
    with pytest.raises(DatasetError, match=r"plate/test .*has no point clouds"):
        POINTCLOUD_DATASETS.get("modelnet").build(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        POINTCLOUD_DATASETS.get("modelnet").build(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------------ transforms
def test_unit_sphere_and_rotation():
    p = normalize_unit_sphere(np.array([[1.0, 1, 1], [3, 1, 1], [2, 4, 1]]))
    assert np.allclose(p.mean(0), 0) and np.isclose(np.linalg.norm(p, axis=1).max(), 1.0)
    r = rotation_about("z", math.pi / 2)  # right-handed: x -> y, y -> -x, z fixed
    assert np.allclose(np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]]) @ r.T, [[0, 1, 0], [-1, 0, 0], [0, 0, 1]])
    assert np.allclose(np.array([[0.0, 0, 1]]) @ rotation_about("y", math.pi / 2).T, [[1, 0, 0]])


def test_choose_points_test_time_is_deterministic():
    pts = np.arange(30, dtype=np.float64).reshape(10, 3)
    assert choose_points(pts, 5, None)[:, 0].tolist() == [0, 6, 12, 18, 24]
    assert choose_points(pts[:3], 5, None)[:, 0].tolist() == [0, 3, 6, 0, 3]
    sub = choose_points(pts, 10, np.random.default_rng(0))
    assert sorted(sub[:, 0].tolist()) == pts[:, 0].tolist()  # without replacement when there are enough


def test_train_transform_rotates_about_the_up_axis_scales_and_jitters():
    import random

    pts = np.random.default_rng(0).normal(size=(64, 3))
    ref = normalize_unit_sphere(pts)
    random.seed(1)
    no_jitter = PointCloudTransform(64, True, up_axis="z", rotate=True, scale=(0.8, 1.25), jitter=0.0)
    x = no_jitter(pts)
    assert x.shape == (3, 64, 1) and x.dtype == torch.float32
    got = x[:, :, 0].T.double().numpy()
    # A random subset in random order, rotated about z and scaled: match points by their (scaled) z and radius.
    s = np.linalg.norm(got, axis=1).max() / np.linalg.norm(normalize_unit_sphere(pts), axis=1).max()
    assert 0.8 <= s <= 1.25
    order = np.argsort(got[:, 2])
    assert np.allclose(np.sort(got[:, 2]) / s, np.sort(ref[:, 2]), atol=1e-5)
    assert np.allclose(np.linalg.norm(got[order, :2], axis=1) / s,
                       np.linalg.norm(ref[np.argsort(ref[:, 2]), :2], axis=1), atol=1e-5)
    jit = PointCloudTransform(64, True, rotate=False, scale=(1, 1), jitter=0.01)(pts)[:, :, 0].T.double().numpy()
    d = np.sort(jit[:, 0]) - np.sort(ref[:, 0])
    assert 0 < np.abs(d).max() <= 0.05 + 1e-6  # clipped at 5 sigma
    test = PointCloudTransform(64, False)
    assert torch.equal(test(pts), test(pts)) and np.allclose(test(pts)[:, :, 0].T.numpy(), ref, atol=1e-6)


# ------------------------------------------------------------------------------------------------ EMA-max
def test_ema_shift_balances_the_sign_of_the_max():
    # BiPointNet's published offset for 1,024 points is 3.2041 (their code's table); ours is the exact quantile.
    assert abs(ema_shift(1024) - 3.2041) < 1e-3 and ema_shift(1) == pytest.approx(0.0, abs=1e-12)
    x = torch.randn(4000, 1, 256, 1, generator=torch.Generator().manual_seed(0))
    pooled = GlobalMaxPool(ema_shift(256))(x)
    assert pooled.shape == (4000, 1, 1, 1)
    assert abs((pooled > 0).float().mean().item() - 0.5) < 0.03
    assert torch.equal(GlobalMaxPool()(x), x.amax(dim=(2, 3), keepdim=True))
