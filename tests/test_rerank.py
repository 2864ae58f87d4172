"""k-reciprocal re-ranking (bireid.evaluation.rerank) against the published algorithm."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from bireid.evaluation import compute_distance, evaluate_rank, k_reciprocal_rerank

torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------------------
# Independent reference: a plain, loop-based transcription of re_ranking() from the authors' repository
# zhunzhong07/person-re-ranking (python-version/re_ranking_ranklist.py, also torchreid/utils/rerank.py).
# One deliberate change: ties in the initial ranking are broken by index (kind="stable"); the published
# np.argsort default leaves their order unspecified. `strict=False` replaces the published `>` of the
# expansion test by `>=`, to show that a test case exercises it.
# ----------------------------------------------------------------------------------------------------------
def published_rerank(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3, strict=True):
    nq = q_g.shape[0]
    joint = np.concatenate([np.concatenate([q_q, q_g], axis=1), np.concatenate([q_g.T, g_g], axis=1)], axis=0)
    sq = np.power(joint, 2).astype(np.float32)
    dist = np.transpose(sq / np.max(sq, axis=0))  # column maxima, then transposed
    n = dist.shape[0]
    rank = np.argsort(dist, axis=1, kind="stable")

    def reciprocal(i, k):
        return [j for j in rank[i, : k + 1] if i in rank[j, : k + 1]]

    half = int(np.around(k1 / 2.0))
    v = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        r_i = reciprocal(i, k1)
        expansion = list(r_i)
        for c in r_i:
            r_c = reciprocal(c, half)
            common = len(set(r_c) & set(r_i))
            if (common > 2.0 / 3 * len(r_c)) if strict else (common >= 2.0 / 3 * len(r_c)):
                expansion += r_c
        idx = np.unique(np.asarray(expansion, dtype=np.int64))
        weight = np.exp(-dist[i, idx])
        v[i, idx] = weight / np.sum(weight)
    if k2 != 1:
        v = np.stack([np.mean(v[rank[i, :k2]], axis=0) for i in range(n)]).astype(np.float32)
    jaccard = np.zeros((nq, n), dtype=np.float32)
    for i in range(nq):
        shared = np.zeros(n, dtype=np.float32)
        for col in np.flatnonzero(v[i]):
            for other in np.flatnonzero(v[:, col]):
                shared[other] += min(v[i, col], v[other, col])
        jaccard[i] = 1 - shared / (2.0 - shared)
    final = jaccard * (1 - lambda_value) + dist[:nq] * lambda_value
    return final[:, nq:]


def _clustered(seed, nq=30, ng=90, ids=10, dim=16, noise=0.8):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((ids, dim)).astype(np.float32)
    qp, gp = rng.integers(0, ids, nq), rng.integers(0, ids, ng)
    q = centers[qp] + noise * rng.standard_normal((nq, dim)).astype(np.float32)
    g = centers[gp] + noise * rng.standard_normal((ng, dim)).astype(np.float32)
    return q, g, qp, gp


def _dists(q, g, metric="euclidean"):
    return compute_distance(q, g, metric), compute_distance(q, q, metric), compute_distance(g, g, metric)


def _case(kind, seed, nq, ng):
    """Distance matrices of one kind: features + a metric, or raw random (asymmetric) matrices."""
    rng = np.random.default_rng(seed)
    if kind == "asymmetric":  # the reference normalises columns and transposes: visible only here
        return tuple(rng.random(s).astype(np.float32) for s in [(nq, ng), (nq, nq), (ng, ng)])
    if kind == "binary":  # 1-bit features: squared Euclidean = Hamming distance, full of exact ties
        bits = rng.integers(0, 2, (nq + ng, 12)).astype(np.float32)
        return _dists(bits[:nq], bits[nq:])
    q, g, _, _ = _clustered(seed, nq=nq, ng=ng, ids=6)
    return _dists(q, g, kind)


@pytest.mark.parametrize(
    "kind,seed,nq,ng,k1,k2,lam",
    [
        ("euclidean", 0, 12, 40, 20, 6, 0.3),  # the defaults, N = 52 > k1
        ("cosine", 1, 12, 40, 8, 3, 0.3),
        ("euclidean", 2, 20, 30, 5, 1, 0.0),  # k1 / 2 = 2.5 rounds to 2; no expansion; Jaccard only
        ("cosine", 3, 15, 25, 7, 4, 1.0),  # k1 / 2 = 3.5 rounds to 4; original distance only
        ("asymmetric", 4, 10, 30, 6, 2, 0.5),
        ("asymmetric", 5, 25, 10, 20, 6, 0.3),
        ("binary", 6, 15, 45, 10, 4, 0.3),
        ("binary", 7, 8, 30, 20, 6, 0.3),
        ("euclidean", 8, 1, 25, 6, 3, 0.3),  # a single query: its neighbours are gallery items only
        ("euclidean", 9, 9, 1, 4, 2, 0.3),  # a single gallery item
        ("cosine", 10, 3, 4, 20, 10, 0.3),  # k1, k2 >= N: every list is the whole set
    ],
)
def test_matches_published_algorithm(kind, seed, nq, ng, k1, k2, lam):
    q_g, q_q, g_g = _case(kind, seed, nq, ng)
    ref = published_rerank(q_g, q_q, g_g, k1, k2, lam)
    out = k_reciprocal_rerank(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lam, block=7)
    assert out.shape == (nq, ng) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)


def test_by_hand():
    # One query (item 0) and two gallery items (1, 2); joint distances A = [[0, 1, 2], [1, 0, 3], [2, 3, 0]].
    # Squared: [[0, 1, 4], [1, 0, 9], [4, 9, 0]], column maxima 4, 9, 9, so D = [[0, 1/4, 1], [1/9, 0, 1],
    # [4/9, 1, 0]]. k1 = 1: rankings 0 -> [0, 1], 1 -> [1, 0], 2 -> [2, 0]; R(0) = R(1) = {0, 1}, R(2) = {2}
    # (2 is not in 0's list); round(1/2) = 0, so each candidate's half set is itself: no expansion.
    # V[0] = (1, e^-1/4) / (1 + e^-1/4) and V[1] = (e^-1/9, 1) / (1 + e^-1/9) on columns 0, 1; V[2] = e_2.
    # Jaccard(0, 1) = 1 - s / (2 - s) with s = sum of the column minima; Jaccard(0, 2) = 1 (nothing shared).
    q_g = np.array([[1.0, 2.0]], dtype=np.float32)
    q_q = np.zeros((1, 1), dtype=np.float32)
    g_g = np.array([[0.0, 3.0], [3.0, 0.0]], dtype=np.float32)
    a, b = math.exp(-1 / 4), math.exp(-1 / 9)
    s = min(1 / (1 + a), b / (1 + b)) + min(a / (1 + a), 1 / (1 + b))
    expected = [0.7 * (1 - s / (2 - s)) + 0.3 * (1 / 4), 0.7 * 1 + 0.3 * 1]
    out = k_reciprocal_rerank(q_g, q_q, g_g, k1=1, k2=1, lambda_value=0.3)
    np.testing.assert_allclose(out, [expected], rtol=0, atol=1e-6)
    np.testing.assert_allclose(published_rerank(q_g, q_q, g_g, 1, 1, 0.3), [expected], rtol=0, atol=1e-6)


def test_expansion_uses_the_strict_inequality():
    # In this case some candidate's half set has exactly 2/3 of its members in R(p): `>` and `>=` differ.
    q_g, q_q, g_g = _case("binary", 6, 15, 45)
    strict = published_rerank(q_g, q_q, g_g, 10, 4, 0.3)
    loose = published_rerank(q_g, q_q, g_g, 10, 4, 0.3, strict=False)
    assert np.abs(strict - loose).max() > 1e-3  # the case exercises the test
    out = k_reciprocal_rerank(q_g, q_q, g_g, k1=10, k2=4, lambda_value=0.3)
    np.testing.assert_allclose(out, strict, rtol=0, atol=1e-5)


def test_query_only_and_gallery_only_sets():
    # No queries or no gallery: an empty result of the right shape, as the published code returns.
    q_g, q_q, g_g = _case("euclidean", 0, 4, 6)
    assert k_reciprocal_rerank(q_g[:0], q_q[:0, :0], g_g).shape == (0, 6)
    assert k_reciprocal_rerank(q_g[:, :0], q_q, g_g[:0, :0]).shape == (4, 0)
    # Queries in a cluster of their own: their k-reciprocal sets hold queries only, so they share nothing
    # with any gallery item (Jaccard exactly 1) and the result is (1 - lambda) + lambda * D.
    rng = np.random.default_rng(0)
    q = 10 + 0.1 * rng.standard_normal((6, 4)).astype(np.float32)
    g = 0.1 * rng.standard_normal((12, 4)).astype(np.float32)
    q_g, q_q, g_g = _dists(q, g)
    out = k_reciprocal_rerank(q_g, q_q, g_g, k1=4, k2=2, lambda_value=0.3)
    col_max = np.maximum(q_q.max(axis=0), q_g.max(axis=1)) ** 2  # max of column q of the squared joint matrix
    np.testing.assert_allclose(out, 0.7 + 0.3 * q_g**2 / col_max[:, None], rtol=0, atol=1e-6)
    np.testing.assert_allclose(out, published_rerank(q_g, q_q, g_g, 4, 2, 0.3), rtol=0, atol=1e-5)


def test_fixes_a_non_reciprocal_nearest_neighbour():
    # 2-D toy. Query q at the origin (identity A). Identity A's gallery items a1, a2, a3 lie to the right,
    # identity B's tight cluster b1..b4 to the left, b1 slightly closer to q than a1 (0.81 vs 1.0 squared).
    # With k1 = 3 (4-NN lists including the item itself):
    #   N(q)  = {q, b1, a1, b2}      N(b1) = {b1, b2, b3, b4}  -> q not in N(b1): b1 not in R(q)
    #   N(a1) = {a1, a2, a3, q}      -> q in N(a1) and a1 in N(q): a1 in R(q), and q in R(a1)
    # so V_q and V_a1 overlap (Jaccard < 1), V_q and V_b1 do not (Jaccard exactly 1).
    q = np.array([[0.0, 0.0]], dtype=np.float32)
    g = np.array(
        [[1.0, 0.0], [1.2, 0.4], [0.9, 0.6], [-0.9, 0.0], [-1.0, 0.05], [-1.0, -0.05], [-1.05, 0.0]], dtype=np.float32
    )
    q_g, q_q, g_g = _dists(q, g)
    assert np.argsort(q_g[0])[:2].tolist() == [3, 0]  # raw: b1 first, the true match a1 second
    out = k_reciprocal_rerank(q_g, q_q, g_g, k1=3, k2=1, lambda_value=0.3)
    assert np.argsort(out[0])[0] == 0  # re-ranked: a1 first
    jac = k_reciprocal_rerank(q_g, q_q, g_g, k1=3, k2=1, lambda_value=0.0)
    assert jac[0, 3] == pytest.approx(1.0)
    assert jac[0, 0] < 1.0


def test_properties():
    q, g, _, _ = _clustered(0)
    q_g, q_q, g_g = _dists(q, g)
    out = k_reciprocal_rerank(q_g, q_q, g_g, k1=8, k2=3)
    # Permuting the gallery permutes the columns.
    perm = np.random.default_rng(1).permutation(len(g))
    out_p = k_reciprocal_rerank(q_g[:, perm], q_q, g_g[np.ix_(perm, perm)], k1=8, k2=3)
    np.testing.assert_allclose(out_p, out[:, perm], rtol=0, atol=1e-6)
    # Scale-free: the squared distances are divided by their column maxima.
    np.testing.assert_allclose(k_reciprocal_rerank(4 * q_g, 4 * q_q, 4 * g_g, k1=8, k2=3), out, rtol=0, atol=1e-5)
    # lambda = 1 keeps the original ranking; float16, float64 and torch inputs work.
    raw = k_reciprocal_rerank(q_g, q_q, g_g, k1=8, k2=3, lambda_value=1.0)
    assert (np.argsort(raw, axis=1, kind="stable") == np.argsort(q_g, axis=1, kind="stable")).all()
    wide = k_reciprocal_rerank(q_g.astype(np.float64), q_q.astype(np.float64), torch.from_numpy(g_g), k1=8, k2=3)
    np.testing.assert_allclose(wide, out, rtol=0, atol=1e-6)
    half = k_reciprocal_rerank(q_g.astype(np.float16), torch.from_numpy(q_q).half(), g_g.astype(np.float16), k1=8, k2=3)
    # float16 rounding may reorder near-equal neighbours, changing a few sets; most entries agree.
    assert half.dtype == np.float32 and np.isfinite(half).all()
    assert np.median(np.abs(half - out)) < 1e-3


def test_improves_clustered_retrieval():
    q, g, qp, gp = _clustered(2, noise=1.1)
    qc, gc = np.zeros(len(q), dtype=int), np.ones(len(g), dtype=int)
    q_g, q_q, g_g = _dists(q, g)
    base = evaluate_rank(q_g, qp, gp, qc, gc)
    rr = evaluate_rank(k_reciprocal_rerank(q_g, q_q, g_g, k1=6, k2=3), qp, gp, qc, gc)
    assert rr.mAP > base.mAP + 0.02


def test_tiny_sets_and_bad_arguments():
    q, g, _, _ = _clustered(3, nq=2, ng=3)
    q_g, q_q, g_g = _dists(q, g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = k_reciprocal_rerank(q_g, q_q, g_g)  # k1 = 20 > N = 5: lists are clamped
        # identical features: every distance is 0 (the published code divides 0 by 0 here)
        same = k_reciprocal_rerank(np.zeros((1, 2)), np.zeros((1, 1)), np.zeros((2, 2)))
    assert out.shape == (2, 3) and np.isfinite(out).all()
    np.testing.assert_allclose(same, 0.0, atol=1e-6)  # every item shares all of V with every other
    with pytest.raises(ValueError, match="q_q_dist"):
        k_reciprocal_rerank(q_g, g_g, g_g)
    with pytest.raises(ValueError, match="lambda_value"):
        k_reciprocal_rerank(q_g, q_q, g_g, lambda_value=1.5)
    with pytest.raises(ValueError, match="k1 and k2"):
        k_reciprocal_rerank(q_g, q_q, g_g, k1=0)
    bad = g_g.copy()
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match="NaN/inf"):
        k_reciprocal_rerank(q_g, q_q, bad)
    bad = q_g.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN/inf"):
        k_reciprocal_rerank(bad, q_q, g_g)
    with pytest.raises(ValueError, match="overflows"):
        k_reciprocal_rerank(q_g, q_q, np.full_like(g_g, 1e20))
