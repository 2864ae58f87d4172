import math

import torch
import torch.nn.functional as F

from bireid.modeling.losses import batch_hard_triplet_loss, cross_entropy_label_smooth


def test_label_smoothing_matches_definition():
    torch.manual_seed(0)
    logits, y = torch.randn(5, 7), torch.tensor([0, 3, 6, 2, 2])
    eps = 0.1
    target = torch.full((5, 7), eps / 7)
    target[torch.arange(5), y] += 1 - eps
    ref = -(target * F.log_softmax(logits, 1)).sum(1).mean()
    assert torch.allclose(cross_entropy_label_smooth(logits, y, eps), ref, atol=1e-6)
    assert torch.allclose(cross_entropy_label_smooth(logits, y, 0.0), F.cross_entropy(logits, y), atol=1e-6)


def test_batch_hard_triplet_hand_worked():
    # 1-d features: id 0 at {0, 1}, id 1 at {3, 5}.
    feat = torch.tensor([[0.0], [1.0], [3.0], [5.0]])
    pids = torch.tensor([0, 0, 1, 1])
    # anchor 0: d_ap=1, d_an=3 -> relu(1-3+0.3)=0; anchor 1: d_ap=1, d_an=2 -> 0
    # anchor 2: d_ap=2, d_an=2 -> 0.3;            anchor 3: d_ap=2, d_an=4 -> 0
    loss, prec = batch_hard_triplet_loss(feat, pids, margin=0.3)
    assert math.isclose(loss.item(), 0.3 / 4, rel_tol=1e-4)
    assert math.isclose(prec.item(), 0.75)  # anchor 2 has d_an == d_ap: not strictly farther
    soft, _ = batch_hard_triplet_loss(feat, pids, margin=0.0)
    expected = (math.log1p(math.exp(-2)) + math.log1p(math.exp(-1)) + math.log1p(1) + math.log1p(math.exp(-2))) / 4
    assert math.isclose(soft.item(), expected, rel_tol=1e-4)


def test_triplet_gradient_finite_with_duplicates_and_ignores_lonely_anchors():
    feat = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], requires_grad=True)
    pids = torch.tensor([0, 0, 1, 2])  # ids 1 and 2 have no positive
    loss, _ = batch_hard_triplet_loss(feat, pids, margin=0.3)
    loss.backward()
    assert torch.isfinite(feat.grad).all()
    # only anchors 0 and 1 count: d_ap = 0 (identical), d_an = sqrt(2) -> relu(0 - 1.414 + .3) = 0
    assert loss.item() == 0.0
    lone, prec = batch_hard_triplet_loss(feat[2:], pids[2:], margin=0.3)
    assert lone.item() == 0.0 and prec.item() == 0.0
