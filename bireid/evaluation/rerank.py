"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li, CVPR 2017) exactly as the published code computes it.

Reference matched: ``re_ranking(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3)`` of the
authors' repository (zhunzhong07/person-re-ranking, ``python-version/re_ranking_ranklist.py``: the
distance-matrix version by H. Huang, 2017-12-22, float32 throughout), copied unchanged into torchreid
(``torchreid/utils/rerank.py``) and other toolboxes. Not matched: the earlier feature-based version by H. Luo
(reid-strong-baseline's ``utils/re_ranking.py``, early fast-reid), which computes squared Euclidean distances
from the features, does not square them again and keeps V and the Jaccard distances in float16 (given plain
Euclidean distances here, it differs only by that rounding: up to 2.4e-3 on random cases); and fast-reid's
``compute_jaccard_distance`` (faiss neighbours, softmax of unnormalised distances).

The reference's steps, on the joint matrix ``A = [[q_q, q_g], [q_g^T, g_g]]`` of N = nq + ng items:

1. ``S = A**2`` (float32), ``D = (S / S.max(axis=0)).T``: every entry is *squared*, each *column* is divided
   by its maximum, then the matrix is transposed, so ``D[i, j] = A[j, i]^2 / max_k A[k, i]^2``.
2. The ranking of item i is the sorted row ``D[i]``; ``N(i, k)`` = its first k + 1 entries.
3. ``R(i, k) = {j in N(i, k) : i in N(j, k)}``; expansion: ``R*(i) = R(i, k1) U R(c, round(k1/2))`` for each
   c in R(i, k1) with ``|R(c, k1/2) ∩ R(i, k1)| > 2/3 |R(c, k1/2)|`` (strict; ``np.around`` rounds halves to
   even, so k1 = 5 gives 2).
4. ``V[i, j] = exp(-D[i, j]) / sum`` over j in R*(i), 0 elsewhere.
5. If k2 != 1: ``V[i] <- mean of V[r]`` over the first k2 entries r of i's ranking (i included).
6. ``s = sum_j min(V[q, j], V[g, j])``, Jaccard distance ``1 - s / (2 - s)`` (rows of V sum to 1).
7. Result: ``(1 - lambda) * jaccard + lambda * D[q, g]`` for queries q and gallery items g.

bireid's earlier version followed the paper's text instead (``>=`` in the expansion, the distances as
given, each row divided by its maximum) and differed by up to 0.1; "+re-ranking" numbers in papers and
toolboxes come from this code, so this module follows the code.

Inputs. The reference squares what it is given: it was written for plain Euclidean distances (its caller
computed sqrt distances, so the kernel saw squared Euclidean distances as in the paper). torchreid passes its
own distance matrices: squared Euclidean for ``euclidean`` (so the kernel sees 4th powers) and ``1 - cos`` for
``cosine``. bireid's evaluator passes :func:`~bireid.evaluation.distance.compute_distance`'s matrices, which
are the same (squared Euclidean, ``1 - cos``), so bireid's "+re-ranking" numbers are torchreid's. Pass plain
Euclidean distances (``np.sqrt`` of them) to get the authors' own pipeline instead.

Where this module deviates from the reference (all outside its well-defined cases):

- Exact ties in a row of D are broken by index (a stable sort); the reference's default ``np.argsort`` leaves
  their order unspecified (it depends on numpy's SIMD sort), so there is no single reference output.
- float16 inputs are squared in float32 (the reference squares float16, which overflows above 256).
- An item at distance 0 from everything (a zero column: 0/0 = NaN in the reference) gets D = 0 on its row.
- Sums (row normalisation, query expansion, Jaccard) are accumulated in float64 and rounded to float32, so
  results agree with the reference to ~1e-6, not bit for bit.
- nq = 0 or ng = 0 returns an empty (nq, ng) matrix, as the reference does.

Complexity and memory. The inputs are never copied whole. The nearest-neighbour pass reads A^T in blocks of
rows: O(N^2) time (torch.topk) and ``block * N`` extra floats. The k-reciprocal sets and V are sparse,
O(N * k1 * k2) entries. The Jaccard distances are accumulated from pairs of query/gallery entries that share a
column (an inverted index, vectorized), O(nq * ng) for the float32 output plus the number of such pairs. For
Market-1501 (N = 19,281) this needs well under 1 GB beyond the inputs.
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


def _squared(x: np.ndarray) -> np.ndarray:
    """x**2 as float32, computed in place (pass a fresh array of at least float32), so float64 input is
    squared in float64 and then rounded, as the reference does."""
    with np.errstate(over="ignore"):  # an overflow becomes inf, which the caller reports
        np.square(x, out=x)
    return x.astype(np.float32, copy=False)


def _copy(dst: np.ndarray, src: np.ndarray, chunk: int = 256) -> None:
    """dst[...] = src in chunks of columns: a transposed source is then read a few hundred rows at a time,
    which stay in cache (a plain copy of a transposed view is about 3x slower)."""
    for c in range(0, dst.shape[1], chunk):
        dst[:, c : c + chunk] = src[:, c : c + chunk]


class _Joint:
    """Read access to the joint matrix A = [[q_q, q_g], [q_g^T, g_g]] without building it.

    Built with (q_g, q_q^T, g_g^T) it reads A^T, whose rows are the reference's (pre-transpose) columns.
    """

    def __init__(self, q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray):
        self.q_g, self.q_q, self.g_g = q_g, q_q, g_g
        self.nq, self.ng = q_g.shape
        self.n = self.nq + self.ng
        self.dtype = np.result_type(q_g, q_q, g_g, np.float32)

    def rows(self, a: int, b: int) -> np.ndarray:
        """Rows a..b-1 (b - a, N), C-contiguous, in the inputs' common dtype (at least float32)."""
        nq = self.nq
        out = np.empty((b - a, self.n), dtype=self.dtype)
        if a < nq:
            hi = min(b, nq)
            _copy(out[: hi - a, :nq], self.q_q[a:hi])
            _copy(out[: hi - a, nq:], self.q_g[a:hi])
        if b > nq:
            lo, hi = max(a, nq) - nq, b - nq
            _copy(out[lo + nq - a :, :nq], self.q_g[:, lo:hi].T)
            _copy(out[lo + nq - a :, nq:], self.g_g[lo:hi])
        return out

    def gather(self, p: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Entries A[p[i], j[i]] in the inputs' common dtype."""
        nq = self.nq
        out = np.empty(p.shape, dtype=self.dtype)
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


def _nearest(joint_t: _Joint, k: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row i of D (step 1): the divisor ``max_j A[j, i]^2`` (N,) and the first k entries of the ranking
    (N, k), sorted by (D value, index). D is computed with the reference's float32 operations (square, then
    divide), so rankings agree with it wherever D has no exact ties."""
    n = joint_t.n
    divisor = np.empty(n, dtype=np.float32)
    nn = np.empty((n, k), dtype=np.int64)
    for a in range(0, n, block):
        sq = _squared(joint_t.rows(a, min(a + block, n)))
        m = sq.max(axis=1)  # squares are >= 0 and the maximum propagates NaN: one pass checks all
        if not np.isfinite(m).all():
            raise ValueError(
                f"distance matrices contain NaN/inf or values whose square overflows float32 "
                f"(columns {a}..{a + len(sq) - 1} of the joint matrix)"
            )
        m = np.where(m > 0, m, np.float32(1))  # an all-zero row stays zero
        divisor[a : a + len(sq)] = m
        if k >= n:
            nn[a : a + len(sq)] = np.argsort(sq / m[:, None], axis=1, kind="stable")[:, :k]
            continue
        # Dividing by the row's maximum keeps the order of the squares but can round neighbours to equal D,
        # so the k + 1 smallest squares are ranked by D (true division, as the reference) and rows where the
        # k-th and (k+1)-th D are equal, whose list is ambiguous, rank their whole row.
        # torch.topk is several times faster than np.argpartition here (and uses the intra-op threads).
        cand = torch.topk(torch.from_numpy(sq), k + 1, dim=1, largest=False, sorted=False).indices.numpy()
        cand.sort(axis=1)  # index order first, so the stable sort below breaks ties in D by index
        vals = np.take_along_axis(sq, cand, axis=1) / m[:, None]
        order = np.argsort(vals, axis=1, kind="stable")
        cand = np.take_along_axis(cand, order, axis=1)
        vals = np.take_along_axis(vals, order, axis=1)
        for r in np.flatnonzero(vals[:, k - 1] == vals[:, k]):  # rare
            cand[r, :k] = np.argsort(sq[r] / m[r], kind="stable")[:k]
        nn[a : a + len(sq)] = cand[:, :k]
    return divisor, nn


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
    """(p, j) pairs, sorted and unique, of the expanded k-reciprocal sets R*(p) (step 3)."""
    n, k1 = nn1.shape
    kh = nnh.shape[1]
    rows, cols = [], []
    step = max(1, 4_000_000 // (k1 * kh * k1))
    for a in range(0, n, step):
        ids = np.arange(a, min(a + step, n))
        rp, rp_mask = nn1[ids], rec1[ids]  # R(p, k1) as padded ids + mask, (B, K1)
        rq, rq_mask = nnh[rp], rech[rp]  # R(c, k1/2) of each candidate c, (B, K1, Kh)
        in_rp = ((rq[..., None] == rp[:, None, None, :]) & rp_mask[:, None, None, :]).any(axis=3)
        inter = (in_rp & rq_mask).sum(axis=2)
        size = rq_mask.sum(axis=2)
        accept = rp_mask & (inter > 2.0 / 3 * size)  # the reference's float expression, strict
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
    """Re-ranked (num_query, num_gallery) float32 distances, equal to the published ``re_ranking`` (see the
    module docstring for the version, the steps and the few deviations).

    Inputs are distance matrices (smaller = closer; numpy or torch, float16/32/64): query-gallery
    ``(nq, ng)``, query-query ``(nq, nq)`` and gallery-gallery ``(ng, ng)``, all from the same metric. Like
    the reference, this function squares them: pass what torchreid passes (bireid's evaluator does: squared
    Euclidean or ``1 - cos`` from ``compute_distance``) to get torchreid's numbers, or plain Euclidean
    distances for the authors' pipeline. ``k1`` sizes the k-reciprocal sets, ``k2`` the local query expansion
    (1 = none), ``lambda_value`` weighs the original distance against the Jaccard distance. ``block`` rows
    are read at a time.
    """
    q_g = _to_numpy(q_g_dist, "q_g_dist")
    q_q = _to_numpy(q_q_dist, "q_q_dist")
    g_g = _to_numpy(g_g_dist, "g_g_dist")
    nq, ng = q_g.shape
    _check_square(q_q, nq, "q_q_dist")
    _check_square(g_g, ng, "g_g_dist")
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be >= 1, got k1={k1}, k2={k2}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value}")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    if nq == 0 or ng == 0:
        return np.zeros((nq, ng), dtype=np.float32)

    # Rows of A^T are the reference's columns: its normalisation and ranking work on them (step 1).
    joint_t = _Joint(q_g, q_q.T, g_g.T)
    n = joint_t.n
    len1 = min(k1 + 1, n)
    len_half = min(int(np.around(k1 / 2)) + 1, n)
    len2 = min(k2, n)
    divisor, nn = _nearest(joint_t, max(len1, len2), block)

    # Steps 2-3: k-reciprocal sets and their expansion. The half-size lists are prefixes of the full ones.
    nn1, nnh = nn[:, :len1], nn[:, :len_half]
    p, j = _expanded_sets(nn1, _reciprocal(nn1), nnh, _reciprocal(nnh))

    # Step 4: Gaussian-kernel weights on D, each row normalised to sum 1.
    w = np.exp(-(_squared(joint_t.gather(p, j)) / divisor[p]))
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
    lam = np.float32(lambda_value)
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
        # jaccard = 1 - s / (2 - s), in place in float32 to limit memory traffic.
        jaccard = np.subtract(np.float32(2), shared, dtype=np.float32)
        np.divide(shared, jaccard, out=jaccard)
        np.subtract(np.float32(1), jaccard, out=jaccard)
        # Step 7: D[q, g] = A[g, q]^2 / divisor[q] = q_g[q, g]^2 / divisor[q].
        blended = out[a:b]
        np.divide(_squared(np.array(q_g[a:b], dtype=joint_t.dtype)), divisor[a:b, None], out=blended)
        blended *= lam
        blended += np.float32(1 - lambda_value) * jaccard
    return out
