"""Every method learns on real pixels: a few steps on synthetic-set images lower the identity loss."""

import pytest
import torch

from bireid.data import build_dataset, build_transforms, load_image
from bireid.factory import create_model
from bireid.modeling.losses import cross_entropy_label_smooth


@pytest.fixture(scope="module")
def synthetic_batch(tiny_synth):
    from bireid.config import Config

    d = Config().data
    ds = build_dataset("synthetic", tiny_synth, num_train_ids=6, num_test_ids=6, seed=0,
                       difficulty=d.synth_difficulty)
    per_id: dict[int, list] = {}
    for s in ds.train:
        per_id.setdefault(s.pid, []).append(s)
    samples = [s for pid in sorted(per_id) for s in per_id[pid][:3]]
    t = build_transforms(64, 32, is_train=False)
    x = torch.stack([t(load_image(s.path)) for s in samples])
    return x, torch.tensor([s.pid for s in samples]), ds.num_train_pids


@pytest.mark.parametrize("method", ["real", "xnor", "bireal", "reactnet", "bireid"])
def test_method_lowers_the_loss_on_synthetic_images(method, synthetic_batch):
    x, y, classes = synthetic_batch
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=classes, method=method, width=32).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    losses = []
    for _ in range(40):
        loss = cross_entropy_label_smooth(model(x)["logits"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses
