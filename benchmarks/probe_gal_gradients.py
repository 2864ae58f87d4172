"""Diagnostic: are KR-GAL's and FR-GAL's weights in a useful range? Gradient sizes next to the task loss's.

Usage: .venv/bin/python benchmarks/probe_gal_gradients.py RUN/model.safetensors [--batches 4] [--lam 1e-4]

For a trained checkpoint and a few training batches, prints
- per binary conv: the RMS of the task loss's gradient (ID cross-entropy + triplet) on the latent weights,
  and of KR-GAL's MSE gradient at weight ``--lam`` in both forms: plain autograd (``lam (w - a b)`` plus
  the ApproxSign term through b) and the paper's (``lam (w - a b) a``);
- per supervised stage: the task gradient's RMS on the stage output a_L, FR-GAL's MSE gradient per unit mu
  against the best 1x1 projection of a_H (least squares over all probed batches, so the MSE term's own
  optimum), upsampled and pooled, and how much of a_L that projection explains (R^2). The pooled fit has one
  sample per a_H pixel: it needs more samples (batches x pixels of a_H) than a_H has channels to mean much.
A term whose gradient is orders of magnitude below the task's does nothing; one near or above it decides
the training.
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--lam", type=float, default=1e-4)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    from bireid.data import build_train_loader
    from bireid.data.build import build_datasets
    from bireid.factory import load_model
    from bireid.modeling.losses import batch_hard_triplet_loss, cross_entropy_label_smooth
    from bireid.nn.conv import binary_convs

    torch.manual_seed(0)
    model, cfg = load_model(args.checkpoint)
    cfg.data.workers = 0
    train_ds, _ = build_datasets(cfg)
    loader = build_train_loader(cfg, train_ds, seed=0)
    model.train()
    convs = binary_convs(model)
    sq = {n: 0.0 for n, _ in convs}
    stage_sq: list[list[float]] = []
    kept: list[list[torch.Tensor]] = []  # stage outputs of every batch: the projection is fitted on all of them
    for i, (x, y, *_) in enumerate(loader):
        if i >= args.batches:
            break
        model.zero_grad()
        out = model(x)
        for s in out["stages"]:
            s.retain_grad()
        loss = cross_entropy_label_smooth(out["logits"], y, 0.1) + batch_hard_triplet_loss(out["feat"], y, 0.3)[0]
        loss.backward()
        for n, c in convs:
            sq[n] += c.weight.grad.pow(2).mean().item() / args.batches
        stage_sq.append([s.grad.pow(2).mean().item() for s in out["stages"]])
        kept.append([s.detach() for s in out["stages"]])

    print(f"{'binary conv':30s} {'task':>9s} {'autograd':>9s} {'paper':>9s} {'alpha':>7s} {'mean|w|':>7s}")
    for n, c in convs:
        w = c.weight.detach()
        a = c.weight_scale().detach().view(-1, 1, 1, 1)
        b = torch.where(w >= 0, 1.0, -1.0)
        err = w - a * b
        approx_sign = (2 - 2 * w.abs()).clamp_min(0)  # ApproxSign's derivative: the path through b
        autograd = args.lam * (err - err * a * approx_sign)
        paper = args.lam * err * a
        print(f"{n:30s} {sq[n] ** 0.5:9.2e} {autograd.pow(2).mean().sqrt():9.2e} {paper.pow(2).mean().sqrt():9.2e} "
              f"{a.mean():7.4f} {w.abs().mean():7.4f}")

    stages = [torch.cat(maps) for maps in zip(*kept)]
    task_rms = [(sum(b[i] for b in stage_sq) / len(stage_sq)) ** 0.5 for i in range(len(stages))]
    a_high = stages[-1]
    print(f"\n{'stage':5s} {'shape':>18s} {'task':>9s} {'up/mu':>9s} {'pool/mu':>9s} {'R2 up':>6s} {'R2 pool':>7s}")
    for i, a_low in enumerate(stages[:-1]):
        row = []
        for low in (a_low, F.adaptive_avg_pool2d(a_low, a_high.shape[-2:])):
            up = F.interpolate(a_high, size=low.shape[-2:], mode="nearest")
            xs = up.permute(0, 2, 3, 1).reshape(-1, up.shape[1])
            xs = torch.cat([xs, torch.ones(len(xs), 1)], 1)
            ys = low.permute(0, 2, 3, 1).reshape(-1, low.shape[1])
            resid = ys - xs @ torch.linalg.lstsq(xs, ys).solution
            r2 = 1 - resid.pow(2).mean() / (ys - ys.mean(0)).pow(2).mean()
            # d/da_L of 0.5 * mean((a_L - a*_H)^2) per unit mu; pooling spreads it over each block's pixels.
            g = resid / (ys.numel() / len(kept)) * (low.numel() / a_low.numel())  # the MSE is a mean over one batch
            row.append((g.pow(2).mean().sqrt().item(), r2.item()))
        print(f"{i + 1:<5d} {str(tuple(a_low.shape)):>18s} {task_rms[i]:9.2e} {row[0][0]:9.2e} "
              f"{row[1][0]:9.2e} {row[0][1]:6.3f} {row[1][1]:7.3f}")


if __name__ == "__main__":
    main()
