"""Point-cloud preprocessing and augmentation (PointNet's recipe): a fixed number of points, normalised to the
unit sphere; for training, a random rotation about the up axis, a random isotropic scale and Gaussian jitter.

Random draws come from a NumPy generator seeded from Python's ``random`` (which PyTorch seeds in every
DataLoader worker, and the trainer checkpoints), so a seeded run draws the same augmentations.
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch

AXES = {"x": 0, "y": 1, "z": 2}


def normalize_unit_sphere(points: np.ndarray) -> np.ndarray:
    """Centre (M, 3) points on their centroid and scale them so the farthest lies at distance 1."""
    p = points - points.mean(axis=0, keepdims=True)
    r = float(np.sqrt((p * p).sum(axis=1)).max()) if len(p) else 0.0
    return p / r if r > 0 else p


def rotation_about(axis: str, angle: float) -> np.ndarray:
    """The 3x3 matrix rotating points (as rows, ``p @ R.T``) by ``angle`` radians about ``axis`` (right-handed)."""
    if axis not in AXES:
        raise ValueError(f"axis must be x, y or z, got {axis!r}")
    i = AXES[axis]
    j, k = (i + 1) % 3, (i + 2) % 3
    c, s = math.cos(angle), math.sin(angle)
    r = np.eye(3)
    r[j, j], r[j, k], r[k, j], r[k, k] = c, -s, s, c
    return r


def choose_points(points: np.ndarray, n: int, rng: np.random.Generator | None) -> np.ndarray:
    """``n`` of the (M, 3) points: a random subset (with replacement only when M < n) with ``rng``, else evenly
    spaced indices (every point once when M == n; repeated cyclically when M < n)."""
    m = len(points)
    if rng is not None:
        idx = rng.choice(m, size=n, replace=m < n)
    else:
        idx = np.arange(n) * m // n if m >= n else np.arange(n) % m
    return points[idx]


class PointCloudTransform:
    """(M, 3) points -> float32 tensor (3, num_points, 1) (a 'one-column image' for the 1x1-conv PointNet)."""

    def __init__(self, num_points: int, train: bool, up_axis: str = "z", rotate: bool = True,
                 scale: tuple[float, float] = (0.8, 1.25), jitter: float = 0.01) -> None:
        if num_points <= 0:
            raise ValueError(f"num_points must be positive, got {num_points}")
        if up_axis not in AXES:
            raise ValueError(f"up_axis must be x, y or z, got {up_axis!r}")
        if not 0 < scale[0] <= scale[1] or jitter < 0:
            raise ValueError(f"invalid scale range {scale} or jitter {jitter}")
        self.num_points, self.train, self.up_axis = num_points, train, up_axis
        self.rotate, self.scale, self.jitter = rotate, (float(scale[0]), float(scale[1])), float(jitter)

    def __call__(self, points: np.ndarray) -> torch.Tensor:
        rng = np.random.default_rng(random.getrandbits(63)) if self.train else None
        p = normalize_unit_sphere(choose_points(np.asarray(points, dtype=np.float64), self.num_points, rng))
        if rng is not None:
            if self.rotate:
                p = p @ rotation_about(self.up_axis, rng.uniform(0.0, 2 * math.pi)).T
            lo, hi = self.scale
            if hi > lo or lo != 1.0:
                p = p * rng.uniform(lo, hi)
            if self.jitter > 0:
                p = p + np.clip(self.jitter * rng.standard_normal(p.shape), -5 * self.jitter, 5 * self.jitter)
        return torch.from_numpy(np.ascontiguousarray(p.T, dtype=np.float32)[:, :, None])

    def __repr__(self) -> str:
        return (f"PointCloudTransform(num_points={self.num_points}, train={self.train}, up_axis={self.up_axis!r}, "
                f"rotate={self.rotate}, scale={self.scale}, jitter={self.jitter})")
