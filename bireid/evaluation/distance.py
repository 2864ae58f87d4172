"""Pairwise distances between query and gallery features.

Conventions (the re-ID community's, as in torchreid / fast-reid):

- ``euclidean`` is the *squared* Euclidean distance ``|q|^2 + |g|^2 - 2 q.g`` (clamped at 0). Ranking is
  identical to the plain Euclidean distance; the squared form is cheaper and is what k-reciprocal
  re-ranking and the published numbers use.
- ``cosine`` is ``1 - q.g / (|q| |g|)``, in [0, 2].

The product is done with ``torch.matmul`` (BLAS) in blocks of queries, so peak extra memory is about
``block * num_gallery`` floats beyond the float32 output.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

METRICS = ("euclidean", "cosine")

ArrayLike = np.ndarray | torch.Tensor


def _as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(x))
    elif isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N, D), got shape {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.uint8)):
        raise TypeError(f"{name} has unsupported dtype {t.dtype}")
    # float32 is enough for ranking and halves the cost of float64; half-precision inputs are upcast so
    # that |q|^2 + |g|^2 - 2 q.g does not lose the small differences that decide the ranking.
    return t.to(torch.float32)


def compute_distance(qf: ArrayLike, gf: ArrayLike, metric: str = "euclidean", block: int = 1024) -> np.ndarray:
    """Distance matrix ``(num_query, num_gallery)`` as float32 numpy.

    ``qf``/``gf`` are ``(N, D)`` numpy arrays or torch tensors (any device; torch inputs are computed on
    their own device, the result comes back to the CPU). ``metric`` is ``"euclidean"`` (squared, see the
    module docstring) or ``"cosine"``. ``block`` queries are processed at a time to bound memory.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    q = _as_tensor(qf, "qf")
    g = _as_tensor(gf, "gf")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"feature dimensions differ: query {q.shape[1]} vs gallery {g.shape[1]}")
    if q.device != g.device:
        g = g.to(q.device)
    nq, ng = q.shape[0], g.shape[0]
    out = np.empty((nq, ng), dtype=np.float32)
    if nq == 0 or ng == 0:
        return out

    if metric == "cosine":
        # F.normalize guards zero vectors (eps), giving distance 1 to everything rather than NaN.
        q = F.normalize(q, dim=1)
        g = F.normalize(g, dim=1)
    else:
        g_sq = (g * g).sum(dim=1)
    gt = g.t().contiguous()

    for s in range(0, nq, block):
        qb = q[s : s + block]
        prod = qb @ gt
        if metric == "cosine":
            d = prod.neg_().add_(1.0)
        else:
            d = prod.mul_(-2.0).add_((qb * qb).sum(dim=1, keepdim=True)).add_(g_sq)
        # Rounding can make the expansion slightly negative for (near-)identical vectors.
        d.clamp_(min=0.0)
        out[s : s + block] = d.cpu().numpy()
    return out
