"""Diagnostic: can each method fit one fixed batch (8 identities x 4 synthetic images)?

Usage: .venv/bin/python benchmarks/probe_overfit.py --data-root runs/_data/synthetic [--steps 60]

Separates "the optimiser cannot move this model" (a bug) from "the model learns slowly" (budget): every
method should drive the label-smoothed ID loss of a fixed batch far below ln(8) = 2.08 within tens of steps.
Prints the loss every 10 steps per method.
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default="runs/_data/synthetic")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--width", type=int, default=32)
    args = ap.parse_args()

    import torch

    from bireid.config import Config
    from bireid.data import build_dataset, build_transforms, load_image
    from bireid.factory import create_model
    from bireid.modeling.losses import cross_entropy_label_smooth

    torch.set_num_threads(1)
    d = Config().data
    ds = build_dataset("synthetic", args.data_root, num_train_ids=d.synth_train_ids, num_test_ids=d.synth_test_ids,
                       seed=d.synth_seed, difficulty=d.synth_difficulty)
    by: dict[int, list] = {}
    for s in ds.train:
        by.setdefault(s.pid, []).append(s)
    batch = [s for p in range(8) for s in by[p][:4]]
    t = build_transforms(64, 32, is_train=False)
    x = torch.stack([t(load_image(s.path)) for s in batch])
    y = torch.tensor([s.pid for s in batch])
    print(f"loss every 10 steps, fixed batch of {len(batch)} images, width {args.width}, 64x32, Adam 1e-3")
    for method in ("real", "xnor", "bireal", "reactnet", "bireid"):
        torch.manual_seed(0)
        m = create_model("resnet18", num_classes=8, method=method, width=args.width).train()
        opt = torch.optim.Adam(m.parameters(), 1e-3)
        losses = []
        for _ in range(args.steps):
            loss = cross_entropy_label_smooth(m(x)["logits"], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        print(f"{method:9s} " + " ".join(f"{v:.2f}" for v in losses[::10]) + f"  final {losses[-1]:.3f}")


if __name__ == "__main__":
    main()
