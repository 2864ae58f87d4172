"""Setting up a run: the device, the seeds, the data sets, and every part that training updates (what is specific
to the task -- data sets, number of classes, model family, training loader, objective -- comes from its record,
``bireid.tasks``).

``build_parts`` builds, in this order (the order fixes how the global RNG is consumed, so a seed gives the same
run): the model (initialised from ``model.init_from`` when set), the method's auxiliary losses (with the
distillation teacher the trainer loads from ``model.teacher``), the optimizer over the model's and the auxiliary
losses' parameter groups, the training loader, the schedule and the AMP scaler.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from ..config import Config, ConfigError
from ..distributed import DistInfo
from ..factory import create_model, init_from_checkpoint, load_model, model_kwargs
from ..methods import Method, get_method
from ..tasks import get_task
from ..tasks.base import LossTerms
from .optim import build_optimizer, build_param_groups, build_scheduler


@dataclass
class TrainingParts:
    """What a run trains and steps. ``model`` becomes its DDP wrapper under several processes (``unwrap`` it);
    ``loss_terms(outputs, targets)`` is the task's objective (re-ID: identity CE + triplet; classification: CE), to
    which the AuxLoss terms are added; ``iters`` is the number of steps per epoch."""

    model: nn.Module
    aux_losses: nn.ModuleList
    method: Method
    num_classes: int
    loss_terms: LossTerms
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    loader: DataLoader
    iters: int
    device: torch.device
    use_amp: bool


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} was asked for but CUDA is not available on this machine")
    if not (name == "cpu" or name.startswith("cuda")):
        raise ConfigError(f"unknown device {name!r}: use cpu, cuda or cuda:N")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def load_datasets(cfg: Config, dist_info: DistInfo) -> tuple[Any, Any]:
    """The config's (train, eval) data sets, parsed by its task; rank 0 builds first (the synthetic set is
    generated once), the other ranks read it after the barrier."""
    if dist_info.enabled and not dist_info.is_main:
        torch.distributed.barrier()
    datasets = get_task(cfg.task.name).build_datasets(cfg)
    if dist_info.enabled and dist_info.is_main:
        torch.distributed.barrier()
    return datasets


def build_parts(cfg: Config, train_ds: Any, device: torch.device, dist_info: DistInfo) -> TrainingParts:
    """Every trained part of a run, in the order the module docstring gives."""
    task = get_task(cfg.task.name)
    num_classes = task.num_classes(train_ds)
    model = create_model(**model_kwargs(cfg, num_classes))
    if cfg.model.init_from:
        rep = init_from_checkpoint(model, cfg.model.init_from)
        if dist_info.is_main:
            print(f"initialised {len(rep['loaded'])} tensors from {cfg.model.init_from}; "
                  f"{len(rep['missing'])} left at random init, {len(rep['mismatched'])} shape mismatches")
    method = get_method(cfg.model.method)
    teacher = load_model(cfg.model.teacher, "cpu")[0] if cfg.model.teacher else None
    aux_losses = nn.ModuleList(method.build_aux(model, cfg, num_classes, teacher=teacher))
    model.to(device)
    aux_losses.to(device)
    if dist_info.enabled and cfg.train.sync_bn:
        if device.type != "cuda":
            raise ConfigError("train.sync_bn needs CUDA: PyTorch's SyncBatchNorm does not run on CPU (gloo)")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    groups = build_param_groups(model, cfg)
    for a in aux_losses:
        groups += [g for g in a.param_groups() if g.get("params")]
    optimizer = build_optimizer(groups, cfg)
    loader = task.build_train_loader(cfg, train_ds, dist_info.rank, dist_info.world_size, cfg.train.seed)
    iters = len(loader.batch_sampler)
    if cfg.train.max_steps_per_epoch > 0:
        iters = min(iters, cfg.train.max_steps_per_epoch)
    use_amp = cfg.train.amp and device.type == "cuda"
    return TrainingParts(model=model, aux_losses=aux_losses, method=method, num_classes=num_classes,
                         loss_terms=task.loss_terms(cfg),
                         optimizer=optimizer, scheduler=build_scheduler(optimizer, iters, cfg),
                         scaler=torch.amp.GradScaler("cuda", enabled=use_amp), loader=loader, iters=iters,
                         device=device, use_amp=use_amp)
