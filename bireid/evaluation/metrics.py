"""CMC / mAP / mINP under the Market-1501 protocol (as torchreid and fast-reid compute it).

For every query the gallery is sorted by distance (stable sort: ties keep gallery order). Gallery items with
the query's pid *and* camera are removed (same-camera shots of the same person are too easy). Junk images
(pid -1) are expected to be dropped by the data set parser already; distractors (pid 0) are ordinary
non-matching gallery items. A query with no remaining true match is skipped and counted. Over the valid
queries:

- CMC[k] = 1 if a true match appears within the first k+1 kept items (``min(cumsum(hits), 1)``), averaged;
- AP = mean over the true matches of the precision at that match (non-interpolated), averaged = mAP;
- INP = (#true matches) / (rank of the last true match), averaged = mINP.

All metrics are fractions in [0, 1]. The implementation is vectorized over blocks of queries: one argsort per
block, then only the few same-pid entries of each row are processed (sparse cumulative counts), with no
per-query Python work.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass
class RankResult:
    """Outcome of :func:`evaluate_rank`; every metric is a fraction in [0, 1]."""

    cmc: np.ndarray  # (max_rank,) float64: cmc[k] = fraction of valid queries matched within rank k+1
    mAP: float
    mINP: float
    num_valid_queries: int
    num_skipped_queries: int

    def rank(self, k: int) -> float:
        """Rank-k accuracy. If the CMC is shorter than k (tiny gallery), the whole gallery is within rank k,
        so the last CMC value is the answer."""
        if k < 1:
            raise ValueError(f"rank must be >= 1, got {k}")
        return float(self.cmc[min(k, len(self.cmc)) - 1])

    @property
    def rank1(self) -> float:
        return self.rank(1)

    @property
    def rank5(self) -> float:
        return self.rank(5)

    @property
    def rank10(self) -> float:
        return self.rank(10)

    def as_dict(self) -> dict:
        """Plain-Python summary (JSON-serializable); ``cmc`` as a list of floats."""
        return {
            "rank1": self.rank1,
            "rank5": self.rank5,
            "rank10": self.rank10,
            "mAP": float(self.mAP),
            "mINP": float(self.mINP),
            "num_valid_queries": int(self.num_valid_queries),
            "num_skipped_queries": int(self.num_skipped_queries),
            "cmc": [float(x) for x in self.cmc],
        }


def _as_1d(x, name: str, n: int) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(
            f"{name} must be 1-D with {n} entries (one per distance-matrix row/column), got shape {a.shape}"
        )
    return a


def _rank_same_pid(d: np.ndarray, qp: np.ndarray, g_pids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort each row of ``d``; return the order and the (row, position) of every same-pid gallery item.

    The result equals a stable argsort where it matters. The default (SIMD) quicksort is about twice as fast,
    and its order can differ from the stable one only inside runs of equal distances; such a run changes the
    metrics only if it holds a same-pid item, so exactly those rows are re-sorted stably.
    """
    order = np.argsort(d, axis=1)
    same = g_pids[order] == qp
    rows, cols = np.nonzero(same)
    if len(rows):
        last = d.shape[1] - 1
        val = d[rows, order[rows, cols]]
        prev = d[rows, order[rows, np.maximum(cols - 1, 0)]]
        nxt = d[rows, order[rows, np.minimum(cols + 1, last)]]
        tie = ((cols > 0) & (prev == val)) | ((cols < last) & (nxt == val))
        if tie.any():
            tied = np.unique(rows[tie])
            order[tied] = np.argsort(d[tied], axis=1, kind="stable")
            same[tied] = g_pids[order[tied]] == qp[tied]
            rows, cols = np.nonzero(same)
    return order, rows, cols


def evaluate_rank(
    distmat: np.ndarray,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    max_rank: int = 50,
    block: int = 256,
) -> RankResult:
    """Market-1501 protocol metrics of a ``(num_query, num_gallery)`` distance matrix (smaller = closer).

    ``max_rank`` is the CMC length; if it exceeds the gallery size the gallery size is used (with a warning).
    ``block`` queries are ranked at a time: peak memory is a few ``block * num_gallery`` arrays.
    Raises ``ValueError`` on inconsistent shapes, NaN distances, or when no query has a valid match.
    """
    if hasattr(distmat, "detach"):  # torch tensor
        distmat = distmat.detach().cpu().numpy()
    distmat = np.asarray(distmat)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape {distmat.shape}")
    nq, ng = distmat.shape
    q_pids = _as_1d(q_pids, "q_pids", nq)
    q_camids = _as_1d(q_camids, "q_camids", nq)
    g_pids = _as_1d(g_pids, "g_pids", ng)
    g_camids = _as_1d(g_camids, "g_camids", ng)
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    if nq == 0 or ng == 0:
        raise ValueError(f"empty evaluation: {nq} queries, {ng} gallery items")
    if np.isnan(distmat).any():
        raise ValueError("distmat contains NaN distances (features with NaN/inf values?)")
    if max_rank > ng:
        warnings.warn(f"max_rank {max_rank} exceeds the gallery size {ng}; using {ng}", stacklevel=2)
        max_rank = ng

    cmc_sum = np.zeros(max_rank, dtype=np.float64)
    ap_sum = 0.0
    inp_sum = 0.0
    num_valid = 0

    for s in range(0, nq, block):
        d = distmat[s : s + block]
        qp = q_pids[s : s + block, None]
        order, rows, cols = _rank_same_pid(d, qp, g_pids)
        # Sparse from here on: only the same-pid entries (true matches + removed same-camera shots) matter.
        removed = g_camids[order[rows, cols]] == q_camids[s + rows]
        first = np.searchsorted(rows, rows, side="left")  # index of each entry's row start (rows is sorted)
        rm_excl = np.cumsum(removed) - removed
        removed_before = rm_excl - rm_excl[first]  # removed items ahead of this entry in its row
        hit = ~removed
        hit_incl = np.cumsum(hit)
        hit_num = (hit_incl - (hit_incl - hit)[first])[hit]  # 1-based index of the true match in its row
        # 1-based rank in the filtered list: raw position minus the removed items ahead of it.
        kept_rank = (cols + 1 - removed_before)[hit]
        hit_rows = rows[hit]
        num_hits = np.bincount(hit_rows, minlength=len(d))
        n_valid = int(np.count_nonzero(num_hits))
        if n_valid == 0:
            continue
        num_valid += n_valid

        # Entries are in row-major order, so the hit_num == 1 entries are the valid rows' first matches.
        first_rank = kept_rank[hit_num == 1]
        cmc_sum += np.cumsum(np.bincount(np.minimum(first_rank - 1, max_rank), minlength=max_rank + 1)[:max_rank])
        has = num_hits > 0
        # precision at the n-th match = n / its kept rank; AP = their mean over the row's matches
        precision_sum = np.bincount(hit_rows, weights=hit_num / kept_rank, minlength=len(d))
        ap_sum += float((precision_sum[has] / num_hits[has]).sum())
        last = hit_num == num_hits[hit_rows]
        inp_sum += float((hit_num[last] / kept_rank[last]).sum())

    if num_valid == 0:
        raise ValueError(
            "no query has a true match in the gallery from another camera; "
            "check the query/gallery split (pids and camera ids)"
        )
    return RankResult(
        cmc=cmc_sum / num_valid,
        mAP=ap_sum / num_valid,
        mINP=inp_sum / num_valid,
        num_valid_queries=num_valid,
        num_skipped_queries=nq - num_valid,
    )
