"""bireid eval: evaluate a trained checkpoint (re-ID: CMC Rank-1/5/10, mAP, mINP; classification: top-1/top-5) and
print its complexity."""

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
    from ..distributed import DistInfo
    from ..engine.evaluate import evaluate_model
    from ..engine.setup import resolve_device
    from ..factory import load_model
    from ..tasks import get_task

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
    task = get_task(cfg.task.name)
    _, eval_ds = task.build_datasets(cfg)
    res = evaluate_model(model, cfg, eval_ds, device, DistInfo())
    if not res:
        raise ConfigError(f"data set {eval_ds.name} has nothing to evaluate on (no query/gallery or test split)")
    line = complexity_line(model, cfg)
    if args.json:
        print(json.dumps({**res, "complexity": line}, indent=2))
    else:
        if "num_query" in res:
            print(f"{eval_ds.name}: {res['num_query']} queries x {res['num_gallery']} gallery "
                  f"({res['num_skipped_queries']} queries without a valid match skipped)")
        else:
            print(f"{eval_ds.name}: {res.get('num_samples')} test samples")
        print(task.format_results(res))
        print(line)
    return 0


def complexity_line(model, cfg) -> str:
    """One line: OPs speedup and storage saving of this model at its input size."""
    from ..complexity import count_complexity
    from ..tasks import get_task

    channels, h, w = get_task(cfg.task.name).input_shape(cfg)
    rep = count_complexity(model, input_size=(h, w), in_channels=channels)
    d = rep.to_dict()
    t = d.get("totals", d)
    return (f"complexity at {h}x{w}: {t['ops']:.3e} OPs "
            f"(float {t['float_flops']:.3e} FLOPs): speedup {t['speedup']:.2f}x, "
            f"storage {t['storage_bits'] / 8 / 2**20:.2f} MiB, saving {t['storage_saving']:.2f}x")
