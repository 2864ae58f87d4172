"""Benchmark: the cost of KR-GAL / FR-GAL per training step against the plain binary step.

Usage: .venv/bin/python benchmarks/bench_gal_cost.py [--threads 1] [--reps 7] [--width 64] [--batch 32]

Builds the BiRe-ID ResNet-18 re-ID model and times full training steps (forward, ID + triplet loss, the GAL
generator terms, backward, optimizer step, discriminator steps) for: no GAL (the plain binary step, same
backbone), KR-GAL only, FR-GAL only, both, and both with attention alpha; plus the Bi-Real baseline and the
real-valued model for reference. Variants are interleaved round-robin, so machine noise hits them alike;
medians are reported. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--img-width", type=int, default=64)
    args = ap.parse_args()

    import torch

    from bireid.config import Config
    from bireid.engine.optim import build_optimizer, build_param_groups
    from bireid.factory import create_model, model_kwargs
    from bireid.methods import get_method
    from bireid.modeling.losses import batch_hard_triplet_loss, cross_entropy_label_smooth

    torch.set_num_threads(args.threads)
    variants = {
        "real (float)": ("real", False, False, "learned"),
        "bireal (Bi-Real baseline)": ("bireal", False, False, "learned"),
        "bireid, no GAL (plain binary step)": ("bireid", False, False, "learned"),
        "bireid + KR-GAL": ("bireid", True, False, "learned"),
        "bireid + FR-GAL": ("bireid", False, True, "learned"),
        "bireid + KR-GAL + FR-GAL": ("bireid", True, True, "learned"),
        "bireid + both, attention alpha": ("bireid", True, True, "attention"),
    }
    classes = 120
    x = torch.randn(args.batch, 3, args.height, args.img_width)
    y = torch.arange(args.batch) % (args.batch // 4)
    steps = {}
    for name, (method, kr, fr, alpha) in variants.items():
        cfg = Config()
        cfg.model.method, cfg.model.width = method, args.width
        cfg.gal.kr_gal, cfg.gal.fr_gal, cfg.gal.alpha_mode = kr, fr, alpha
        torch.manual_seed(0)
        model = create_model(**model_kwargs(cfg, classes)).train()
        aux = get_method(method).build_aux(model, cfg, classes)
        groups = build_param_groups(model, cfg) + [g for a in aux for g in a.param_groups() if g.get("params")]
        opt = build_optimizer(groups, cfg)

        def step(model=model, aux=aux, opt=opt):
            out = model(x)
            loss = cross_entropy_label_smooth(out["logits"], y) + batch_hard_triplet_loss(out["feat"], y)[0]
            for a in aux:
                loss = loss + sum(a.generator_loss(model, x, out, y).values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for a in aux:
                a.discriminator_step(out)

        step()  # warm-up
        steps[name] = step
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.reps):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    ref = med["bireid, no GAL (plain binary step)"]
    print(f"ResNet-18 width {args.width}, batch {args.batch}, input {args.height}x{args.img_width}, "
          f"{args.threads} thread(s), median of {args.reps} interleaved steps\n")
    print("| variant | step (s) | vs plain binary step |")
    print("|---|---|---|")
    for name, t in med.items():
        print(f"| {name} | {t:.3f} | {t / ref:.2f}× |")


if __name__ == "__main__":
    main()
