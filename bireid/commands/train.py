"""bireid train: train a model of any task and method, and print its metrics at the end."""

from __future__ import annotations

import argparse

from ..config import add_config_arguments, config_from_args

HELP = "train a model (re-ID by default; --task classification | pointcloud) and evaluate it"
DESCRIPTION = """Train a model and evaluate it at the end.

--task picks what is learned: reid (default; with no --dataset the built-in synthetic benchmark is generated once
under runs/_data/synthetic), classification (images: CIFAR-10 binary release, folder per class, CSV list) or
pointcloud (ModelNet10/40: PCD, OFF meshes, .npy). Each task starts from its own defaults (input size, model,
batch size...; docs/tasks.md), which every setting below overrides. Settings can also come from --config
FILE.yaml; flags override the file, --set KEY=VALUE overrides anything. Multi-process: torchrun
--nproc_per_node N -m bireid train ...
Examples:
  bireid train
  bireid train --method bireid --epochs 40 --output-dir runs/bireid
  bireid train --dataset market1501 --data-root /data/Market-1501-v15.09.15 --height 256 --width 128
  bireid train --dataset mars --data-root ../shared/data/reid/mars-mini \\
      --data.eval_dataset market1501 --data.eval_root ../shared/data/reid/market1501-mini
  bireid train --task classification --data-root /data/cifar-10-binary.tar.gz --method bireid
  bireid train --task classification --dataset folders --data-root runs/_data/cifar10 --arch resnet18
  bireid train --task pointcloud --data-root ../shared/data/pointcloud/modelnet10 --method bireid"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..methods import list_methods
    from ..modeling import list_backbones
    from ..tasks import TASKS, list_tasks

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    datasets = sorted({n for t in TASKS.values() for n in t.datasets.names()})
    add_config_arguments(p, registry_names={"method": list_methods(), "backbone": list_backbones(),
                                            "dataset": datasets, "task": list_tasks()})


def run(args: argparse.Namespace) -> int:
    from ..distributed import launch_rank
    from ..engine.trainer import train
    from ..tasks import get_task, task_defaults

    cfg = config_from_args(args, task_defaults)
    task = get_task(cfg.task.name)
    res = train(cfg)
    if launch_rank() != 0:
        return 0  # under torchrun, rank 0 reports the run
    tag = f"[{task.name} {cfg.model.method} {cfg.model.arch}]"
    if res.get(task.primary_metric) is not None:
        print(f"{tag} {task.format_results(res)}")
    else:
        print(f"{tag} trained; the data set has nothing to evaluate on")
    print(f"run folder: {cfg.train.output_dir} (model.safetensors, log, curves.png)")
    return 0
