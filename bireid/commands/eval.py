"""bireid eval: evaluate a trained checkpoint or a deployed .bnn model by its task's metrics (re-ID: CMC Rank-1/5/10,
mAP, mINP; classification and point clouds: top-1, top-5, mean class accuracy)."""

from __future__ import annotations

import argparse

HELP = "evaluate a checkpoint or an exported .bnn model on a data set's query/gallery split (or test split)"
DESCRIPTION = """Evaluate a trained model by the Market-1501 protocol (same-pid same-camera gallery entries
removed per query; queries without a valid match skipped and counted); a classification or point-cloud model
on its data set's test split (top-1, top-5, mean class accuracy).

--checkpoint evaluates the PyTorch model; --model evaluates the deployed .bnn file with the bit-packed engine,
through the same loaders, flip, distance and re-ranking code; --model x.bnn --compare CHECKPOINT evaluates both
on the same data and prints them side by side.

What is evaluated: --dataset/--data-root name the data set and its folder (only query/ and the gallery are
read: a query/gallery-only folder is enough); without them, the set the model was evaluated on in training
(stored in the checkpoint, or in the .bnn file by `bireid export`). Examples:
  bireid eval --checkpoint runs/x/model.safetensors
  bireid eval --checkpoint runs/x/model.safetensors --dataset market1501 --data-root /data/market-query-gallery
  bireid eval --model x.bnn --compare runs/x/model.safetensors"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="model.safetensors (or last.safetensors) of a run")
    src.add_argument("--model", help="an exported .bnn model (evaluates the deployed engine's features)")
    p.add_argument("--compare", metavar="CHECKPOINT",
                   help="with --model: also evaluate this checkpoint on the same data; print both side by side")
    p.add_argument("--dataset", help="the data set to evaluate (default: the one the model was evaluated on)")
    p.add_argument("--data-root", help="folder of the data set to evaluate (default: the stored one)")
    p.add_argument("--metric", choices=("euclidean", "cosine"), help="distance (default: the checkpoint's)")
    p.add_argument("--rerank", action=argparse.BooleanOptionalAction, default=None, help="k-reciprocal re-ranking")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="average the features of each image and its horizontal flip")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (PyTorch models)")
    p.add_argument("--batch-size", type=int, help="feature-extraction batch size")
    p.add_argument("--workers", type=int, help="data-loading workers")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars on a terminal (default: the checkpoint's train.progress)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")


def run(args: argparse.Namespace) -> int:
    import copy
    import json

    from ..config import Config, ConfigError, from_dict, set_key, validate
    from ..deploy.engine_module import EngineModule
    from ..distributed import DistInfo
    from ..engine.evaluate import evaluate_model
    from ..engine.setup import resolve_device
    from ..errors import UserError
    from ..factory import load_model
    from ..runtime import BNNModel
    from ..tasks import get_task, task_defaults

    if args.compare and not args.model:
        raise UserError("--compare CHECKPOINT compares a .bnn model with it: give the model with --model")
    device = resolve_device(args.device)
    engine = None
    if args.model:
        engine = BNNModel.load(args.model)
        stored = engine.meta.get("extra") or {}
        if args.compare:
            model, cfg = load_model(args.compare, device)
            source = args.compare
        elif isinstance(stored.get("config"), dict):
            try:
                cfg = from_dict(stored["config"], task_defaults)
            except ConfigError as e:
                raise UserError(f"{args.model}: the config stored by `bireid export` is invalid ({e})") from None
            source = stored.get("checkpoint")
        else:
            if not args.dataset or not args.data_root:
                raise UserError(f"{args.model} does not say what it was trained on (exported by an older bireid): "
                                "give --dataset and --data-root")
            cfg, source = Config(), None
    else:
        model, cfg = load_model(args.checkpoint, device)
        source = args.checkpoint
    for key, val in (("eval.metric", args.metric), ("eval.rerank", args.rerank), ("eval.flip", args.flip),
                     ("data.test_batch_size", args.batch_size), ("data.workers", args.workers),
                     ("train.progress", args.progress)):
        if val is not None:
            set_key(cfg, key, val)
    validate(cfg)
    task = get_task(cfg.task.name)
    eval_ds = evaluation_set(cfg, source, args.dataset, args.data_root)
    results = {}
    if engine is not None:
        engine_cfg = copy.deepcopy(cfg)
        engine_cfg.data.height, engine_cfg.data.width = engine.input_size
        results[".bnn"] = evaluate_model(EngineModule(engine), engine_cfg, eval_ds, resolve_device("cpu"), DistInfo(),
                                         mean=engine.mean.tolist(), std=engine.std.tolist())
    if engine is None or args.compare:
        results["checkpoint"] = evaluate_model(model, cfg, eval_ds, device, DistInfo())
    first = next(iter(results.values()))
    if not first:
        raise ConfigError(f"data set {eval_ds.name} has nothing to evaluate on (no query/gallery or test split)")
    if args.json:
        out = dict(results) if len(results) > 1 else dict(first)
        if engine is None:
            out["complexity"] = complexity_line(model, cfg)
        print(json.dumps(out, indent=2))
        return 0
    if "num_query" in first:
        print(f"{eval_ds.name}: {first['num_query']} queries x {first['num_gallery']} gallery "
              f"({first['num_skipped_queries']} queries without a valid match skipped); metric {cfg.eval.metric}, "
              f"flip {'on' if cfg.eval.flip else 'off'}, re-ranking {'on' if cfg.eval.rerank else 'off'}")
    else:
        print(f"{eval_ds.name}: {first['num_samples']} test samples ({first['num_skipped']} unreadable, skipped)")
    if len(results) > 1:
        print(comparison_table(results, {".bnn": args.model, "checkpoint": args.compare}, task.metric_keys))
    elif engine is not None:
        print(f"{args.model} ({engine.meta.get('binary_convs', '?')} binary convs, bit-packed engine): "
              f"{task.format_results(first)}")
    else:
        print(task.format_results(first))
        print(complexity_line(model, cfg))
    return 0


def evaluation_set(cfg, source, dataset: str | None = None, data_root: str | None = None):
    """The set to evaluate on: ``dataset``/``data_root`` when given, else the set ``cfg`` (the config stored with
    the model) evaluated on, among the data sets of ``cfg``'s task. Only what evaluation needs is read (re-ID: the
    query and gallery).

    ``source`` is the checkpoint the config came from: a relative data folder stored by an older bireid is
    looked for from the current folder (as it always was), then from the folder training ran in."""
    from ..data import build_eval_dataset, evaluated_set
    from ..errors import UserError
    from ..tasks import get_task

    registry = get_task(cfg.task.name).datasets
    name, root = evaluated_set(cfg, registry)
    if dataset and dataset.lower() != name.lower():
        name, root = dataset, registry.get(dataset).default_root
    if data_root:
        root = data_root
    elif root:
        root = locate_stored_root(root, source, cfg.train.output_dir)
    if not root:
        raise UserError(f"--data-root is required to evaluate on {name}")
    cfg.data.eval_dataset, cfg.data.eval_root = name, str(root)
    return build_eval_dataset(cfg, registry)


def locate_stored_root(root: str, checkpoint, output_dir: str) -> str:
    """A data folder stored in a checkpoint. Absolute (bireid now stores them so): as is. Relative (older
    checkpoints, relative to where training ran): from the current folder when it exists there, else from the
    folder training ran in (the checkpoint's folder minus ``output_dir``), with a warning saying so."""
    import warnings
    from pathlib import Path

    p = Path(root).expanduser()
    if p.is_absolute() or p.exists():
        return root
    ran_in = training_folder(checkpoint, output_dir)
    if ran_in is not None and (ran_in / p).exists():
        warnings.warn(f"the checkpoint stores the data folder '{root}' relative to the folder training ran in "
                      f"(checkpoints of older bireid versions); reading {ran_in / p}", UserWarning, stacklevel=2)
        return str(ran_in / p)
    where = f" nor from the folder training ran in ({ran_in / p})" if ran_in is not None else ""
    warnings.warn(f"the checkpoint stores the data folder '{root}' as a relative path (older bireid), not found "
                  f"from the current folder ({p.resolve()}){where}; using {p.resolve()}; pass --data-root to choose",
                  UserWarning, stacklevel=2)
    return root


def training_folder(checkpoint, output_dir: str):
    """The folder a run was started in, from its checkpoint path and a relative ``train.output_dir`` (None when
    the checkpoint does not sit in that output folder)."""
    import os
    from pathlib import Path

    if checkpoint is None or not output_dir or Path(output_dir).is_absolute():
        return None
    parts = Path(os.path.normpath(output_dir)).parts
    folder = Path(checkpoint).resolve().parent
    if parts == (".",):
        return folder
    if len(folder.parts) > len(parts) and folder.parts[-len(parts):] == parts:
        return Path(*folder.parts[:-len(parts)])
    return None


LABELS = {"rank1": "Rank-1", "rank5": "Rank-5", "rank10": "Rank-10", "mAP": "mAP", "mINP": "mINP", "top1": "top-1",
          "top5": "top-5", "class_acc": "mean class acc."}


def comparison_table(results: dict, sources: dict,
                     keys: tuple[str, ...] = ("rank1", "rank5", "rank10", "mAP", "mINP")) -> str:
    """Metrics (``keys``) of the deployed model and the checkpoint side by side, in percent, with their
    difference."""
    rows = [("", ".bnn (engine)", "checkpoint (PyTorch)", "difference")]
    for label, key in ((LABELS.get(k, k), k) for k in keys):
        a, b = 100 * results[".bnn"][key], 100 * results["checkpoint"][key]
        rows.append((label, f"{a:.2f}%", f"{b:.2f}%", f"{a - b:+.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)) for r in rows]
    lines.append(f".bnn: {sources['.bnn']}; checkpoint: {sources['checkpoint']}")
    return "\n".join(lines)


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
