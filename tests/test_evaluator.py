"""Feature extraction and end-to-end evaluation (bireid.evaluation.evaluator)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bireid.evaluation import evaluate, evaluate_features, extract_features, format_results

torch.set_num_threads(1)


class MeanColour(nn.Module):
    """Flip-invariant: the per-channel mean over the whole image, then a fixed linear map."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 4)

    def forward(self, x):
        return self.proj(x.mean(dim=(2, 3)))


class LeftHalf(nn.Module):
    """Not flip-invariant: looks only at the left half of the image."""

    def forward(self, x):
        return x[..., : x.shape[-1] // 2].mean(dim=(2, 3))


def _loader(images, pids, camids, batch_sizes):
    """A list of (images, pids, camids, indices) batches of the given sizes (0 = every image dropped)."""
    out, start = [], 0
    for b in batch_sizes:
        idx = torch.arange(start, start + b)
        out.append(
            (images[idx], torch.as_tensor(pids[start : start + b]), torch.as_tensor(camids[start : start + b]), idx)
        )
        start += b
    assert start == len(images)
    return out


def test_extract_features_concatenates_batches_of_any_size():
    torch.manual_seed(0)
    images = torch.rand(7, 3, 8, 6)
    pids, camids = np.arange(7) + 10, np.arange(7) % 3
    model = MeanColour().train()
    feats, p, c = extract_features(model, _loader(images, pids, camids, [3, 0, 2, 2]))
    assert feats.dtype == torch.float32 and feats.device.type == "cpu" and feats.shape == (7, 4)
    assert not feats.is_inference()  # usable by later autograd / in-place code
    np.testing.assert_array_equal(p, pids)
    np.testing.assert_array_equal(c, camids)
    with torch.no_grad():
        torch.testing.assert_close(feats, model(images))
    assert model.training  # mode restored


def test_flip_averaging():
    torch.manual_seed(1)
    images = torch.rand(5, 3, 4, 6)
    pids, camids = np.zeros(5), np.zeros(5)
    loader = _loader(images, pids, camids, [2, 3])
    inv = MeanColour()
    a, _, _ = extract_features(inv, loader, flip=False)
    b, _, _ = extract_features(inv, loader, flip=True)
    torch.testing.assert_close(a, b)  # a flip-invariant model is unchanged
    left = LeftHalf()
    plain, _, _ = extract_features(left, loader, flip=False)
    flipped, _, _ = extract_features(left, loader, flip=True)
    assert not torch.allclose(plain, flipped)
    # flip=True is the mean of the left half and the (mirrored) right half
    expected = (images[..., :3].mean(dim=(2, 3)) + images[..., 3:].mean(dim=(2, 3))) / 2
    torch.testing.assert_close(flipped, expected)


def test_extract_features_errors():
    images = torch.rand(2, 3, 4, 4)
    with pytest.raises(ValueError, match="2 images but 1 pids"):
        extract_features(MeanColour(), [(images, torch.tensor([1]), torch.tensor([0]), torch.arange(2))])
    with pytest.raises(ValueError, match="no images"):
        extract_features(MeanColour(), [])

    class DictModel(nn.Module):
        def forward(self, x):
            return {"feat": x.flatten(1)}

    with pytest.raises(TypeError, match=r"\(N, D\) features"):
        extract_features(DictModel(), [(images, torch.tensor([1, 2]), torch.tensor([0, 0]), torch.arange(2))])


def test_cosine_vs_euclidean_by_hand():
    # q = (1, 0), pid 1 cam 0. g0 = (10, 1) pid 1 cam 1 (the match), g1 = (0.5, 0.3) pid 2 cam 1.
    # squared Euclidean: d(q,g0) = 81 + 1 = 82, d(q,g1) = 0.25 + 0.09 = 0.34 -> g1 first: rank1 0, AP 1/2.
    # cosine: 1 - 10/sqrt(101) = 0.005, 1 - 0.5/sqrt(0.34) = 0.143 -> g0 first: rank1 1, AP 1.
    qf = np.array([[1.0, 0.0]], dtype=np.float32)
    gf = np.array([[10.0, 1.0], [0.5, 0.3]], dtype=np.float32)
    args = (qf, [1], [0], gf, [1, 2], [1, 1])
    eu = evaluate_features(*args, metric="euclidean", max_rank=2)
    co = evaluate_features(*args, metric="cosine", max_rank=2)
    assert (eu.rank1, eu.mAP, eu.mINP) == (0.0, 0.5, 0.5)
    assert (co.rank1, co.mAP, co.mINP) == (1.0, 1.0, 1.0)
    # torch features give the same numbers
    t = evaluate_features(torch.from_numpy(qf), [1], [0], torch.from_numpy(gf), [1, 2], [1, 1], max_rank=2)
    assert (t.rank1, t.mAP) == (eu.rank1, eu.mAP)


def _coloured_set(pids, camids, seed):
    """Images whose colour encodes the identity (plus noise), so MeanColour separates identities."""
    gen = torch.Generator().manual_seed(seed)
    palette = torch.rand(max(pids) + 1, 3, generator=torch.Generator().manual_seed(123))
    images = palette[pids][:, :, None, None] + 0.02 * torch.randn(len(pids), 3, 6, 4, generator=gen)
    return _loader(images, np.array(pids), np.array(camids), [len(pids) // 2, len(pids) - len(pids) // 2])


def test_evaluate_end_to_end():
    q_pids, q_cams = [1, 2, 3, 4, 9], [0, 0, 1, 1, 0]  # pid 9 has no gallery image -> skipped
    g_pids = [1, 1, 2, 2, 3, 3, 4, 4, 0, 0, 0, 1]
    g_cams = [1, 2, 1, 2, 0, 2, 0, 2, 1, 1, 2, 0]
    model = MeanColour()
    res = evaluate(
        model, _coloured_set(q_pids, q_cams, 0), _coloured_set(g_pids, g_cams, 1), flip=True, max_rank=10
    )
    assert res["num_query"] == 5 and res["num_gallery"] == 12
    assert (res["num_valid_queries"], res["num_skipped_queries"]) == (4, 1)
    # pid 1 cam 0: gallery item 11 (pid 1, cam 0) is the closest but same camera -> removed; the other two
    # pid-1 items still come before every other identity, so every valid query is perfect.
    assert res["rank1"] == res["mAP"] == res["mINP"] == pytest.approx(1.0)
    assert len(res["cmc"]) == 10
    for key in ("time_extract_s", "time_match_s", "time_total_s"):
        assert res[key] >= 0
    assert res["time_total_s"] >= res["time_match_s"]


class MeanPixel(nn.Module):
    """The per-channel mean: constant images give back their colour as the feature."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


def _disk(cx, radius, n):
    """n points spread over a disk of the given radius around (cx, 0) (a sunflower-like spiral)."""
    k = np.arange(n)
    rad, ang = radius * np.sqrt((k + 0.5) / n), 7.0 * 2 * np.pi * k / n
    return np.stack([cx + rad * np.cos(ang), rad * np.sin(ang)], axis=1)


def test_evaluate_reranking_fixes_a_non_reciprocal_nearest_neighbour():
    # The query q (pid 1) sits at the origin. Its 8 true matches A lie in a tight disk around (1.1, 0)
    # (squared distances to q 1.05..1.37); the distractor b1 (pid 2) at (-0.9, 0) is nearer (0.81), and it
    # is the edge of a dense disk of 29 more pid-2 items around (-1.5, 0) (>= 1.74 from q). Raw ranking: b1,
    # then the 8 matches: rank-1 0, AP = mean_i i / (i + 1) over i = 1..8, INP 8/9.
    # Re-ranking with the defaults (k1 = 20, k2 = 6, lambda = 0.3): b1's 20 nearest are pid-2 items, so q is
    # not among them and no pid-2 item is k-reciprocal to q; A + q (9 items) are all mutually k-reciprocal.
    # V rows of pid-2 items live on pid-2 columns; V_q after query expansion is the mean over q, b1, a1..a4,
    # so at most 1/6 of its mass is on pid-2 columns: Jaccard(q, b) >= 1 - (1/6) / (2 - 1/6) = 10/11 and the
    # final distance of every pid-2 item is >= 0.7 * 10 / 11 = 0.636. A's rows and 5/6 of V_q share the same
    # 9 columns with weights exp(-D) within a factor e^0.25, which keeps each match below 0.45: all 8
    # matches come first, a perfect result.
    q = np.zeros((1, 2))
    g = np.concatenate([_disk(1.1, 0.1, 8), [[-0.9, 0.0]], _disk(-1.5, 0.2, 29)])
    g_pids = [1] * 8 + [2] * 30

    def loader(points, pids, cam):
        images = torch.tensor(points, dtype=torch.float32)[:, :, None, None].expand(-1, -1, 4, 2)
        return _loader(images, np.array(pids), np.full(len(pids), cam), [len(pids)])

    raw, rr = (
        evaluate(MeanPixel(), loader(q, [1], 0), loader(g, g_pids, 1), rerank=rerank, max_rank=5)
        for rerank in (False, True)
    )
    ap = np.mean([i / (i + 1) for i in range(1, 9)])
    assert (raw["rank1"], raw["rank5"], raw["mINP"]) == (0.0, 1.0, pytest.approx(8 / 9))
    assert raw["mAP"] == pytest.approx(ap)
    assert rr["rank1"] == rr["mAP"] == rr["mINP"] == pytest.approx(1.0)


def test_evaluate_with_an_uninformative_model_by_hand():
    # All features equal -> all distances tie -> the stable sort keeps gallery order (no same-cam removals):
    #   gallery pids [1, 2, 3, 4, 1, 2, 3, 4]
    #   q pid1: hits at ranks 1, 5 -> AP (1 + 2/5)/2 = 0.7,        INP 2/5
    #   q pid2: hits at ranks 2, 6 -> AP (1/2 + 2/6)/2 = 5/12,     INP 2/6
    #   q pid3: hits at ranks 3, 7 -> AP (1/3 + 2/7)/2 = 13/42,    INP 2/7
    #   q pid4: hits at ranks 4, 8 -> AP (1/4 + 2/8)/2 = 1/4,      INP 2/8
    # rank1 = 1/4; rank5 = 1 (every query has a hit by rank 4).
    class Constant(nn.Module):
        def forward(self, x):
            return torch.ones(x.shape[0], 2)

    q_pids, q_cams = [1, 2, 3, 4], [0, 0, 1, 1]
    g_pids = [1, 2, 3, 4, 1, 2, 3, 4]
    g_cams = [1, 2, 0, 0, 2, 1, 2, 2]
    res = evaluate(Constant(), _coloured_set(q_pids, q_cams, 2), _coloured_set(g_pids, g_cams, 3), max_rank=8)
    assert res["rank1"] == pytest.approx(0.25) and res["rank5"] == pytest.approx(1.0)
    assert res["cmc"] == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1, 1, 1])
    assert res["mAP"] == pytest.approx((0.7 + 5 / 12 + 13 / 42 + 0.25) / 4)
    assert res["mINP"] == pytest.approx((2 / 5 + 2 / 6 + 2 / 7 + 2 / 8) / 4)


def test_format_results():
    s = format_results({"rank1": 0.8123, "rank5": 0.92, "rank10": 0.949, "mAP": 0.601, "mINP": 0.2834})
    assert s == "Rank-1 81.2% | Rank-5 92.0% | Rank-10 94.9% | mAP 60.1% | mINP 28.3%"
    with pytest.raises(KeyError, match="mINP"):
        format_results({"rank1": 1, "rank5": 1, "rank10": 1, "mAP": 1})
    r = evaluate_features(
        np.eye(2, dtype=np.float32), [1, 2], [0, 0], np.eye(2, dtype=np.float32), [1, 2], [1, 1], max_rank=2
    )
    assert format_results(r) == "Rank-1 100.0% | Rank-5 100.0% | Rank-10 100.0% | mAP 100.0% | mINP 100.0%"
