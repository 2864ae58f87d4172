"""bireid train: train a re-ID model (any method) and print Rank-1/mAP at the end."""

from __future__ import annotations

import argparse

from ..config import add_config_arguments, config_from_args

HELP = "train a re-ID model (the synthetic benchmark when no data set is given)"
DESCRIPTION = """Train a re-ID model and evaluate it at the end.

With no --dataset, the built-in synthetic benchmark is generated (once) under runs/_data/synthetic and
used. Every setting below can also come from --config FILE.yaml; flags override the file, --set KEY=VALUE
overrides anything. Multi-process: torchrun --nproc_per_node N -m bireid train ...
Examples:
  bireid train
  bireid train --method bireid --epochs 40 --output-dir runs/bireid
  bireid train --dataset market1501 --data-root /data/Market-1501-v15.09.15 --height 256 --width 128
  bireid train --dataset mars --data-root ../shared/data/reid/mars-mini \\
      --data.eval_dataset market1501 --data.eval_root ../shared/data/reid/market1501-mini"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..data import list_datasets
    from ..methods import list_methods
    from ..modeling import list_backbones

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    add_config_arguments(p, registry_names={"method": list_methods(), "backbone": list_backbones(),
                                            "dataset": list_datasets()})


def run(args: argparse.Namespace) -> int:
    from ..distributed import launch_rank
    from ..engine.trainer import train
    from ..evaluation import format_results

    cfg = config_from_args(args)
    res = train(cfg)
    if launch_rank() != 0:
        return 0  # under torchrun, rank 0 reports the run
    if res.get("mAP") is not None:
        print(f"[{cfg.model.method} {cfg.model.arch}] {format_results(res)}")
    else:
        print(f"[{cfg.model.method} {cfg.model.arch}] trained; the data set has no query/gallery to evaluate")
    print(f"run folder: {cfg.train.output_dir} (model.safetensors, log, curves.png)")
    return 0
