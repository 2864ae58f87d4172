"""bireid eval: evaluate a trained checkpoint (CMC Rank-1/5/10, mAP, mINP) and print its complexity."""

from __future__ import annotations

import argparse

HELP = "evaluate a checkpoint on a data set's query/gallery split"
DESCRIPTION = """Evaluate a trained model by the Market-1501 protocol (same-pid same-camera gallery entries
removed per query; queries without a valid match skipped and counted). The data set defaults to the one
the model was trained on (as stored in the checkpoint). Also prints the model's complexity line."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="model.safetensors (or last.safetensors) of a run")
    p.add_argument("--dataset", help="data set name (default: the checkpoint's)")
    p.add_argument("--data-root", help="data set folder (default: the checkpoint's)")
    p.add_argument("--metric", choices=("euclidean", "cosine"), help="distance (default: the checkpoint's)")
    p.add_argument("--rerank", action=argparse.BooleanOptionalAction, default=None, help="k-reciprocal re-ranking")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="average the features of each image and its horizontal flip")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, help="feature-extraction batch size")
    p.add_argument("--workers", type=int, help="data-loading workers")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from ..config import ConfigError, set_key, validate
    from ..data import build_datasets
    from ..distributed import DistInfo
    from ..engine.evaluate import evaluate_model
    from ..engine.setup import resolve_device
    from ..evaluation import format_results
    from ..factory import load_model

    device = resolve_device(args.device)
    model, cfg = load_model(args.checkpoint, device)
    if args.dataset:
        set_key(cfg, "data.dataset", args.dataset)
        set_key(cfg, "data.root", args.data_root or "")
        set_key(cfg, "data.eval_dataset", "")
    elif args.data_root:
        set_key(cfg, "data.root", args.data_root)
    for key, val in (("eval.metric", args.metric), ("eval.rerank", args.rerank), ("eval.flip", args.flip),
                     ("data.test_batch_size", args.batch_size), ("data.workers", args.workers)):
        if val is not None:
            set_key(cfg, key, val)
    validate(cfg)
    _, eval_ds = build_datasets(cfg)
    if not eval_ds.query or not eval_ds.gallery:
        raise ConfigError(f"data set {eval_ds.name} has no query/gallery images to evaluate on")
    res = evaluate_model(model, cfg, eval_ds, device, DistInfo())
    line = complexity_line(model, cfg)
    if args.json:
        print(json.dumps({**res, "complexity": line}, indent=2))
    else:
        print(f"{eval_ds.name}: {res['num_query']} queries x {res['num_gallery']} gallery "
              f"({res['num_skipped_queries']} queries without a valid match skipped)")
        print(format_results(res))
        print(line)
    return 0


def complexity_line(model, cfg) -> str:
    """One line: OPs speedup and storage saving of this model at its input size."""
    from ..complexity import count_complexity

    rep = count_complexity(model, input_size=(cfg.data.height, cfg.data.width))
    d = rep.to_dict()
    t = d.get("totals", d)
    return (f"complexity at {cfg.data.height}x{cfg.data.width}: {t['ops']:.3e} OPs "
            f"(float {t['float_flops']:.3e} FLOPs): speedup {t['speedup']:.2f}x, "
            f"storage {t['storage_bits'] / 8 / 2**20:.2f} MiB, saving {t['storage_saving']:.2f}x")
