"""Distances and Market-1501 protocol metrics (bireid.evaluation; re-ranking: test_rerank.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bireid.evaluation import RankResult, compute_distance, evaluate_rank

torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------------------
# Reference implementation: a plain per-query loop, written as directly from the protocol as possible.
# ----------------------------------------------------------------------------------------------------------
def reference_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    max_rank = min(max_rank, distmat.shape[1])
    cmcs, aps, inps = [], [], []
    for i in range(distmat.shape[0]):
        order = sorted(range(distmat.shape[1]), key=lambda j: (distmat[i, j], j))  # stable
        kept = [j for j in order if not (g_pids[j] == q_pids[i] and g_camids[j] == q_camids[i])]
        hits = [g_pids[j] == q_pids[i] for j in kept]
        if not any(hits):
            continue
        positions = [r for r, h in enumerate(hits) if h]  # 0-based ranks of the true matches
        cmc = np.zeros(max_rank)
        cmc[positions[0] :] = 1.0
        cmcs.append(cmc)
        aps.append(np.mean([(n + 1) / (r + 1) for n, r in enumerate(positions)]))
        inps.append(len(positions) / (positions[-1] + 1))
    return np.mean(cmcs, axis=0), float(np.mean(aps)), float(np.mean(inps)), len(cmcs)


# ----------------------------------------------------------------------------------------------------------
# Hand-worked protocol examples
# ----------------------------------------------------------------------------------------------------------
# Gallery shared by the hand-worked cases: (pid, camera)
G_PIDS = np.array([1, 0, 1, 2, 1, 3])
G_CAMS = np.array([0, 1, 1, 0, 2, 1])


def test_same_camera_match_at_rank1_is_ignored_and_distractor_ranks_first():
    # Query pid 1, camera 0. Sorted gallery (distance):
    #   g0 pid1 cam0 0.1  -> same pid AND same camera: removed
    #   g1 pid0 cam1 0.2  -> distractor, kept rank 1 (miss)
    #   g2 pid1 cam1 0.3  -> kept rank 2, HIT (1st)
    #   g3 pid2 cam0 0.4  -> kept rank 3 (miss)
    #   g4 pid1 cam2 0.5  -> kept rank 4, HIT (2nd)
    #   g5 pid3 cam1 0.6  -> kept rank 5 (miss)
    # CMC = [0, 1, 1, 1, 1]; AP = (1/2 + 2/4) / 2 = 0.5; INP = 2 hits / last hit rank 4 = 0.5.
    d = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]], dtype=np.float32)
    r = evaluate_rank(d, [1], G_PIDS, [0], G_CAMS, max_rank=5)
    np.testing.assert_allclose(r.cmc, [0, 1, 1, 1, 1])
    assert r.rank1 == 0.0 and r.rank5 == 1.0
    assert r.mAP == pytest.approx(0.5)
    assert r.mINP == pytest.approx(0.5)
    assert (r.num_valid_queries, r.num_skipped_queries) == (1, 0)
    # Dropping the same-camera item from the gallery entirely must give identical numbers.
    r2 = evaluate_rank(d[:, 1:], [1], G_PIDS[1:], [0], G_CAMS[1:], max_rank=5)
    np.testing.assert_allclose(r2.cmc, r.cmc)
    assert (r2.mAP, r2.mINP) == (r.mAP, r.mINP)


def test_query_without_valid_match_is_skipped_and_counted():
    # q0: as in the test above -> CMC [0,1,1,1,1], AP 0.5, INP 0.5.
    # q1: pid 2 cam 0; the only pid-2 gallery item (g3) is also cam 0 -> removed -> no match -> skipped.
    # q2: pid 3 cam 0; g5 (pid 3 cam 1) is nearest -> CMC [1,1,1,1,1], AP 1, INP 1.
    # Averages over the 2 valid queries: CMC [0.5,1,1,1,1], mAP 0.75, mINP 0.75.
    d = np.array(
        [
            [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            [0.5, 0.4, 0.3, 0.2, 0.1, 0.0],
            [0.9, 0.8, 0.7, 0.6, 0.5, 0.1],
        ],
        dtype=np.float32,
    )
    r = evaluate_rank(d, [1, 2, 3], G_PIDS, [0, 0, 0], G_CAMS, max_rank=5)
    np.testing.assert_allclose(r.cmc, [0.5, 1, 1, 1, 1])
    assert r.mAP == pytest.approx(0.75)
    assert r.mINP == pytest.approx(0.75)
    assert (r.num_valid_queries, r.num_skipped_queries) == (2, 1)
    assert r.as_dict()["num_skipped_queries"] == 1


def test_ties_are_broken_by_gallery_order():
    # Query pid 1 cam 0; all three distances equal 0.5. Stable sort keeps gallery order:
    #   gallery A = [pid5, pid1, pid1] -> hits at ranks 2, 3: rank1 0, AP (1/2 + 2/3)/2 = 7/12, INP 2/3.
    #   gallery B = [pid1, pid1, pid5] -> hits at ranks 1, 2: rank1 1, AP 1, INP 1.
    d = np.full((1, 3), 0.5, dtype=np.float32)
    a = evaluate_rank(d, [1], [5, 1, 1], [0], [1, 1, 2], max_rank=3)
    assert a.rank1 == 0.0
    assert a.mAP == pytest.approx(7 / 12)
    assert a.mINP == pytest.approx(2 / 3)
    b = evaluate_rank(d, [1], [1, 1, 5], [0], [1, 2, 1], max_rank=3)
    assert b.rank1 == 1.0 and b.mAP == pytest.approx(1.0) and b.mINP == pytest.approx(1.0)


def test_max_rank_larger_than_gallery_warns_and_is_capped():
    d = np.array([[0.3, 0.1, 0.2]], dtype=np.float32)
    with pytest.warns(UserWarning, match="exceeds the gallery size 3"):
        r = evaluate_rank(d, [1], [1, 2, 3], [0], [1, 1, 1], max_rank=50)
    # Order g1, g2, g0: the match (g0) is at rank 3.
    np.testing.assert_allclose(r.cmc, [0, 0, 1])
    assert r.rank5 == r.rank10 == 1.0  # the whole gallery lies within rank 5
    assert r.mAP == pytest.approx(1 / 3)


def test_errors_are_clear():
    d = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="q_pids"):
        evaluate_rank(d, [1], [1, 2, 3], [0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate_rank(d, [7, 8], [1, 2, 3], [0, 0], [1, 1, 1], max_rank=3)
    bad = d.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_rank(bad, [1, 2], [1, 2, 3], [0, 0], [1, 1, 1])
    with pytest.raises(ValueError, match="max_rank"):
        evaluate_rank(d, [1, 2], [1, 2, 3], [0, 0], [1, 1, 1], max_rank=0)


def _random_case(seed: int, nq: int = 40, ng: int = 120, num_ids: int = 12, num_cams: int = 3, ties: bool = False):
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(1, num_ids + 3, nq)  # some query ids absent from the gallery -> skipped queries
    g_pids = rng.integers(0, num_ids, ng)  # pid 0 = distractors
    q_cams = rng.integers(0, num_cams, nq)
    g_cams = rng.integers(0, num_cams, ng)
    # Many same-pid-same-camera items, the case that removal must handle (junk-like duplicates).
    g_pids[:20] = q_pids[:20]
    g_cams[:20] = q_cams[:20]
    if ties:
        d = rng.integers(0, 5, (nq, ng)).astype(np.float32)  # heavy ties
    else:
        d = rng.random((nq, ng), dtype=np.float32)
    return d, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("ties", [False, True])
def test_vectorized_matches_reference_loop(seed, ties):
    d, qp, gp, qc, gc = _random_case(seed, ties=ties)
    cmc, ap, inp, valid = reference_rank(d, qp, gp, qc, gc, max_rank=30)
    for block in (1, 7, 256):
        r = evaluate_rank(d, qp, gp, qc, gc, max_rank=30, block=block)
        np.testing.assert_allclose(r.cmc, cmc, atol=1e-12)
        assert r.mAP == pytest.approx(ap, abs=1e-12)
        assert r.mINP == pytest.approx(inp, abs=1e-12)
        assert r.num_valid_queries == valid
        assert r.num_skipped_queries == len(qp) - valid
    assert 0 < valid < len(qp)  # the random case really contains skipped queries


def test_accepts_torch_distances_and_rankresult_properties():
    d, qp, gp, qc, gc = _random_case(5)
    a = evaluate_rank(d, qp, gp, qc, gc, max_rank=10)
    b = evaluate_rank(torch.from_numpy(d), torch.from_numpy(qp), torch.from_numpy(gp), qc, gc, max_rank=10)
    assert isinstance(b, RankResult)
    np.testing.assert_allclose(a.cmc, b.cmc)
    assert a.rank1 == a.cmc[0] and a.rank5 == a.cmc[4] and a.rank10 == a.cmc[9]
    assert list(a.as_dict()) == [
        "rank1",
        "rank5",
        "rank10",
        "mAP",
        "mINP",
        "num_valid_queries",
        "num_skipped_queries",
        "cmc",
    ]


# ----------------------------------------------------------------------------------------------------------
# Distances
# ----------------------------------------------------------------------------------------------------------
def test_distance_values_against_brute_force():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((9, 16)).astype(np.float32)
    g = rng.standard_normal((13, 16)).astype(np.float32)
    sq = ((q[:, None, :].astype(np.float64) - g[None, :, :]) ** 2).sum(-1)  # squared Euclidean
    cos = 1 - (q @ g.T) / (np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(g, axis=1)[None, :])
    for block in (1, 4, 1024):
        d = compute_distance(q, g, "euclidean", block=block)
        assert d.dtype == np.float32 and d.shape == (9, 13)
        np.testing.assert_allclose(d, sq, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(compute_distance(q, g, "cosine", block=block), cos, atol=1e-5)
    # torch inputs (float64 too) give the same result
    np.testing.assert_allclose(
        compute_distance(torch.from_numpy(q).double(), torch.from_numpy(g)), sq, rtol=1e-5, atol=1e-4
    )
    # identical vectors: ~0 (the |q|^2 + |g|^2 - 2 q.g expansion rounds), never negative
    self_d = compute_distance(q, q).diagonal()
    assert self_d.min() >= 0 and self_d.max() < 1e-4
    assert compute_distance(q, q, "cosine").min() >= 0


def test_cosine_vs_euclidean():
    # Unit vectors: |q - g|^2 = 2 - 2 cos = 2 * cosine distance.
    rng = np.random.default_rng(1)
    q = rng.standard_normal((5, 8)).astype(np.float32)
    g = rng.standard_normal((7, 8)).astype(np.float32)
    qn, gn = q / np.linalg.norm(q, axis=1, keepdims=True), g / np.linalg.norm(g, axis=1, keepdims=True)
    np.testing.assert_allclose(compute_distance(qn, gn, "euclidean"), 2 * compute_distance(q, g, "cosine"), atol=1e-5)
    # Cosine ignores the norm of each feature; Euclidean does not.
    np.testing.assert_allclose(compute_distance(3 * q, 0.5 * g, "cosine"), compute_distance(q, g, "cosine"), atol=1e-6)
    assert not np.allclose(compute_distance(3 * q, g), compute_distance(q, g))


def test_distance_errors():
    q = np.zeros((2, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="unknown metric"):
        compute_distance(q, q, "manhattan")
    with pytest.raises(ValueError, match="feature dimensions differ"):
        compute_distance(q, np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="2-D"):
        compute_distance(np.zeros(4), q)
