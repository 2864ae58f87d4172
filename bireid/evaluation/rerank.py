"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li, CVPR 2017), written from the paper's description.

Notation: N = num_query + num_gallery items, all ranked against each other with the original distance d.

1. ``N(p, k)``: the k nearest neighbours of p (the list includes p itself, so k+1 entries are taken).
2. k-reciprocal set ``R(p, k) = {g in N(p, k) : p in N(g, k)}``.
3. Expansion: ``R*(p, k) = R(p, k) U R(q, k/2)`` for every q in R(p, k) with
   ``|R(p, k) ∩ R(q, k/2)| >= 2/3 |R(q, k/2)|`` (k/2 rounded to the nearest integer).
4. ``V[p, g] = exp(-d(p, g))`` for g in R*(p, k), else 0; each row is normalised to sum 1 so that the
   Jaccard distance below is ``1 - sum(min) / sum(max)`` with ``sum(max) = 2 - sum(min)``.
   ``d`` here is the original distance divided by its row maximum, which makes the Gaussian kernel
   independent of the feature scale (and of squared-vs-plain Euclidean up to the kernel's shape).
5. Local query expansion: ``V[p] <- mean of V[r] over the k2 nearest neighbours r of p`` (p included).
6. ``d_J(p, g) = 1 - sum_j min(V[p,j], V[g,j]) / sum_j max(V[p,j], V[g,j])``.
7. Final distance: ``(1 - lambda) d_J + lambda d`` (d row-normalised as in 4, so both terms lie in [0, 1]).

Complexity and memory. The inputs are the caller's O(N^2) matrices (float32 or float16; they are never
copied whole). The nearest-neighbour pass reads them in blocks of rows: O(N^2) time (torch.topk) and
``block * N`` extra floats. The k-reciprocal sets and V are sparse, O(N * k1 * k2) entries. The Jaccard
distances are accumulated from pairs of query/gallery entries that share a column (an inverted index,
vectorized), O(num_query * num_gallery) for the float32 output plus the number of such pairs. For
Market-1501 (N = 19,281) this needs well under 1 GB beyond the inputs; tens of thousands of items are fine.
"""

from __future__ import annotations

import numpy as np
import torch


def _check_square(a: np.ndarray, n: int, name: str) -> None:
    if a.shape != (n, n):
        raise ValueError(f"{name} must have shape ({n}, {n}), got {a.shape}")


def _to_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
    return a


class _Joint:
    """Read access to the joint (N, N) distance matrix [[q_q, q_g], [q_g^T, g_g]] without building it."""

    def __init__(self, q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray):
        self.q_g, self.q_q, self.g_g = q_g, q_q, g_g
        self.nq, self.ng = q_g.shape
        self.n = self.nq + self.ng

    def rows(self, a: int, b: int) -> np.ndarray:
        """Rows a..b-1 as float32 (b - a, N)."""
        nq = self.nq
        parts = []
        if a < nq:
            lo, hi = a, min(b, nq)
            parts.append(np.concatenate([self.q_q[lo:hi], self.q_g[lo:hi]], axis=1, dtype=np.float32))
        if b > nq:
            lo, hi = max(a, nq) - nq, b - nq
            parts.append(np.concatenate([self.q_g[:, lo:hi].T, self.g_g[lo:hi]], axis=1, dtype=np.float32))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def gather(self, p: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Entries d[p[i], j[i]] as float32."""
        nq = self.nq
        out = np.empty(p.shape, dtype=np.float32)
        pq, jq = p < nq, j < nq
        m = pq & jq
        out[m] = self.q_q[p[m], j[m]]
        m = pq & ~jq
        out[m] = self.q_g[p[m], j[m] - nq]
        m = ~pq & jq
        out[m] = self.q_g[j[m], p[m] - nq]
        m = ~pq & ~jq
        out[m] = self.g_g[p[m] - nq, j[m] - nq]
        return out


def _nearest(joint: _Joint, k: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Row maxima (N,) and the k nearest items of every row (N, k), closest first (ties inside the list by
    index; which of several items tied at the k-th place is kept is unspecified)."""
    n = joint.n
    row_max = np.empty(n, dtype=np.float32)
    nn = np.empty((n, k), dtype=np.int64)
    for a in range(0, n, block):
        d = joint.rows(a, min(a + block, n))
        if not np.isfinite(d).all():
            raise ValueError(f"distance matrices contain NaN/inf (rows {a}..{a + len(d) - 1} of the joint matrix)")
        row_max[a : a + len(d)] = d.max(axis=1)
        if k < n:
            # torch.topk is several times faster than np.argpartition here (and uses the intra-op threads).
            cand = torch.topk(torch.from_numpy(d), k, dim=1, largest=False, sorted=False).indices.numpy()
            cand.sort(axis=1)  # index order first, so the stable sort below breaks distance ties by index
        else:
            cand = np.broadcast_to(np.arange(n), d.shape).copy()
        order = np.argsort(np.take_along_axis(d, cand, axis=1), axis=1, kind="stable")
        nn[a : a + len(d)] = np.take_along_axis(cand, order, axis=1)
    return row_max, nn


def _reciprocal(nn: np.ndarray) -> np.ndarray:
    """mask[i, a] = True where i is among the neighbours of nn[i, a] (same list length)."""
    n, k = nn.shape
    mask = np.empty(nn.shape, dtype=bool)
    step = max(1, 2_000_000 // (k * k))
    for a in range(0, n, step):
        ids = np.arange(a, min(a + step, n))
        mask[ids] = (nn[nn[ids]] == ids[:, None, None]).any(axis=2)
    return mask


def _expanded_sets(nn1: np.ndarray, rec1: np.ndarray, nnh: np.ndarray, rech: np.ndarray) -> tuple:
    """(p, j) pairs, sorted and unique, of the expanded k-reciprocal sets R*(p, k1)."""
    n, k1 = nn1.shape
    kh = nnh.shape[1]
    rows, cols = [], []
    step = max(1, 4_000_000 // (k1 * kh * k1))
    for a in range(0, n, step):
        ids = np.arange(a, min(a + step, n))
        rp, rp_mask = nn1[ids], rec1[ids]  # R(p, k1) as padded ids + mask, (B, K1)
        rq, rq_mask = nnh[rp], rech[rp]  # R(q, k1/2) of each candidate q, (B, K1, Kh)
        in_rp = ((rq[..., None] == rp[:, None, None, :]) & rp_mask[:, None, None, :]).any(axis=3)
        inter = (in_rp & rq_mask).sum(axis=2)
        size = rq_mask.sum(axis=2)
        accept = rp_mask & (3 * inter >= 2 * size)  # integer form of inter >= 2/3 size
        p_idx = np.broadcast_to(ids[:, None], rp.shape)
        rows.append(p_idx[rp_mask])
        cols.append(rp[rp_mask])
        add = accept[..., None] & rq_mask
        rows.append(np.broadcast_to(ids[:, None, None], rq.shape)[add])
        cols.append(rq[add])
    p = np.concatenate(rows)
    j = np.concatenate(cols)
    key = np.unique(p * n + j)
    return key // n, key % n


def _csr_from_pairs(p: np.ndarray, j: np.ndarray, v: np.ndarray, n: int) -> tuple:
    """Sort (row, col, val) triplets by row (then col) and return (indptr, cols, vals)."""
    order = np.lexsort((j, p))
    p, j, v = p[order], j[order], v[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(p, minlength=n), out=indptr[1:])
    return indptr, j, v


def _expand_rows(idx: np.ndarray, counts: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each i, the positions starts[i] .. starts[i]+counts[i]-1; returns (owner i, position) flat."""
    total = int(counts.sum())
    owner = np.repeat(idx, counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.repeat(starts, counts) + offsets


def k_reciprocal_rerank(
    q_g_dist,
    q_q_dist,
    g_g_dist,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    block: int = 512,
) -> np.ndarray:
    """Re-ranked (num_query, num_gallery) float32 distances in [0, 1] (see the module docstring).

    Inputs are distance matrices (smaller = closer; numpy or torch, float32/float16): query-gallery
    ``(nq, ng)``, query-query ``(nq, nq)`` and gallery-gallery ``(ng, ng)``, all from the same metric.
    ``k1`` sizes the k-reciprocal sets, ``k2`` the local query expansion (1 = none), ``lambda_value`` weighs
    the original distance against the Jaccard distance. ``block`` rows are read at a time.
    """
    q_g = _to_numpy(q_g_dist, "q_g_dist")
    q_q = _to_numpy(q_q_dist, "q_q_dist")
    g_g = _to_numpy(g_g_dist, "g_g_dist")
    nq, ng = q_g.shape
    _check_square(q_q, nq, "q_q_dist")
    _check_square(g_g, ng, "g_g_dist")
    if nq == 0 or ng == 0:
        raise ValueError(f"re-ranking needs queries and gallery items, got {nq} and {ng}")
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be >= 1, got k1={k1}, k2={k2}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value}")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")

    joint = _Joint(q_g, q_q, g_g)
    n = joint.n
    len1 = min(k1 + 1, n)
    len_half = min(int(np.around(k1 / 2)) + 1, n)
    len2 = min(k2, n)
    row_max, nn = _nearest(joint, max(len1, len2), block)
    # All-zero rows (identical features) would divide by zero; such rows stay zero after scaling.
    scale = 1.0 / np.where(row_max > 0, row_max, 1.0).astype(np.float32)

    # Steps 1-3: k-reciprocal sets and their expansion. The half-size lists are prefixes of the full ones.
    nn1, nnh = nn[:, :len1], nn[:, :len_half]
    p, j = _expanded_sets(nn1, _reciprocal(nn1), nnh, _reciprocal(nnh))

    # Step 4: Gaussian-kernel weights, each row normalised to sum 1.
    w = np.exp(-joint.gather(p, j) * scale[p]).astype(np.float32)
    row_sum = np.bincount(p, weights=w, minlength=n)
    w = (w / np.where(row_sum > 0, row_sum, 1.0)[p]).astype(np.float32)
    indptr, cols, vals = _csr_from_pairs(p, j, w, n)

    # Step 5: local query expansion, V[p] <- mean of the rows of p's k2 nearest neighbours.
    if len2 > 1:
        src = nn[:, :len2].ravel()
        dst = np.repeat(np.arange(n), len2)
        counts = np.diff(indptr)[src]
        owner, pos = _expand_rows(np.arange(len(src)), counts, indptr[src])
        key = dst[owner] * n + cols[pos]
        uniq, inv = np.unique(key, return_inverse=True)
        summed = np.bincount(inv, weights=vals[pos], minlength=len(uniq)) / len2
        indptr, cols, vals = _csr_from_pairs(uniq // n, uniq % n, summed.astype(np.float32), n)

    # Step 6: sum_j min(V[q, j], V[g, j]) for every query q and gallery item g, via an inverted index:
    # only columns where both rows are non-zero contribute, so pair up the entries column by column.
    g_lo = indptr[nq]
    g_rows = np.repeat(np.arange(ng), np.diff(indptr[nq:]))
    g_cols, g_vals = cols[g_lo:], vals[g_lo:]
    by_col = np.argsort(g_cols, kind="stable")
    g_rows, g_cols, g_vals = g_rows[by_col], g_cols[by_col], g_vals[by_col]
    col_count = np.bincount(g_cols, minlength=n)
    col_start = np.zeros(n, dtype=np.int64)
    np.cumsum(col_count[:-1], out=col_start[1:])

    out = np.empty((nq, ng), dtype=np.float32)
    q_block = max(1, min(nq, 4_000_000 // max(1, ng)))
    for a in range(0, nq, q_block):
        b = min(a + q_block, nq)
        e = np.arange(indptr[a], indptr[b])
        e_rows = np.repeat(np.arange(b - a), np.diff(indptr[a : b + 1]))
        e_cols = cols[e]
        owner, gpos = _expand_rows(np.arange(len(e)), col_count[e_cols], col_start[e_cols])
        flat = e_rows[owner] * ng + g_rows[gpos]
        mins = np.minimum(vals[e][owner], g_vals[gpos])
        shared = np.bincount(flat, weights=mins, minlength=(b - a) * ng).astype(np.float32).reshape(b - a, ng)
        # d_J = 1 - s / (2 - s) = (2 - 2 s) / (2 - s); computed in place in float32 to limit memory traffic.
        jaccard = np.subtract(2.0, shared, dtype=np.float32)
        np.divide(jaccard - shared, jaccard, out=jaccard)
        np.maximum(jaccard, 0.0, out=jaccard)  # rounding when a query and a gallery item share all mass
        # Step 7: blend with the row-normalised original distance.
        blended = out[a:b]
        np.multiply(q_g[a:b], scale[a:b, None] * np.float32(lambda_value), out=blended, dtype=np.float32)
        blended += np.float32(1.0 - lambda_value) * jaccard
    return out
