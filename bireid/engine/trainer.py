"""The training loop: one function, ``train(cfg)``, for every method, on one or many processes.

The parts it calls, each in its own module: ``setup`` (device, seeds, data sets, the trained parts),
``step`` (one training step), ``evaluate`` (the evaluation hook), ``resume`` (the resumable checkpoint),
``run_folder`` (logs, curves, final model and results), ``optim`` (optimizer and schedule).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from ..config import Config
from ..data import absolute_data_paths, check_data_config
from ..distributed import DistInfo, all_reduce_mean, broadcast_module, cleanup_distributed, init_distributed, unwrap
from ..factory import check_model_config
from ..nn import set_binarization
from ..tasks import get_task
from .evaluate import evaluate_model
from .resume import save_resumable, start
from .run_folder import log_epoch, prepare_output_dir, write_final
from .setup import TrainingParts, build_parts, load_datasets, resolve_device, seed_everything
from .step import TrainingDiverged, train_step

__all__ = ["TrainingDiverged", "train"]


StepHook = Callable[[int, int], None]


def train(cfg: Config, *, datasets: tuple | None = None, stop_after_epochs: int | None = None,
          on_step: StepHook | None = None) -> dict[str, Any]:
    """Train (and finally evaluate) the model ``cfg`` describes. Returns the final metrics and run facts.

    ``datasets`` overrides (train, eval) data sets; ``stop_after_epochs`` ends the run early (for tests of
    resume) as an interruption would, leaving a resumable checkpoint; ``on_step(epoch, step)`` (0-based) is
    called after every training step (tests use it to crash at a known point).
    """
    check_model_config(cfg)
    task = get_task(cfg.task.name)
    if datasets is None:
        check_data_config(cfg, task.datasets)
    # The run's config (config.yaml, checkpoints) names its data by absolute paths, so that `bireid eval` and
    # `bireid export --verify` find it from any folder.
    cfg = absolute_data_paths(cfg, task.datasets)
    device = resolve_device(cfg.train.device)
    dist_info = init_distributed(cfg.train.device)
    result = _run(cfg, device, dist_info, datasets, stop_after_epochs, on_step)
    if dist_info.enabled:
        # Every rank waits for the others to finish (rank 0 still writes results and plots after the last
        # collective) before the group is torn down: a rank that destroys its group and exits while a peer's
        # transport is still live can abort the peer. On an exception the group is left alone: a peer may be
        # blocked in a collective, and destroying would hang; torchrun stops the other ranks.
        torch.distributed.barrier()
        cleanup_distributed()
    return result


def _run(cfg: Config, device: torch.device, dist_info: DistInfo, datasets: tuple | None,
         stop_after_epochs: int | None, on_step: StepHook | None) -> dict[str, Any]:
    out, main = Path(cfg.train.output_dir), dist_info.is_main
    if main:
        prepare_output_dir(out)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)
    train_ds, eval_ds = datasets if datasets is not None else load_datasets(cfg, dist_info)
    if main:
        print(train_ds.summary())
        if eval_ds is not train_ds:
            print(eval_ds.summary())
    parts = build_parts(cfg, train_ds, device, dist_info)
    start_epoch, history = start(out, parts, cfg, main)
    if main:
        cfg.save(out / "config.yaml")
    if dist_info.enabled:
        for a in parts.aux_losses:
            broadcast_module(a)
        parts.model = DDP(parts.model, device_ids=[device.index] if device.type == "cuda" else None)

    step_times: list[float] = []
    end_epoch = cfg.train.epochs if stop_after_epochs is None else min(cfg.train.epochs, stop_after_epochs)
    for epoch in range(start_epoch, end_epoch):
        record = train_epoch(parts, cfg, epoch, step_times, show_progress=main and cfg.train.progress,
                             on_step=on_step)
        last = epoch + 1 == cfg.train.epochs
        if cfg.train.eval_every and (epoch + 1) % cfg.train.eval_every == 0 and not last:
            record.update(evaluate_model(unwrap(parts.model), cfg, eval_ds, device, dist_info))
        history.append(record)
        if main:
            log_epoch(out, history, cfg)
            if (epoch + 1) % cfg.train.checkpoint_every == 0 or last or epoch + 1 == end_epoch:
                save_resumable(out / "last.safetensors", parts, cfg, epoch + 1, history)

    if end_epoch < cfg.train.epochs:
        return {"stopped_at_epoch": end_epoch, "history": history}
    results = evaluate_model(unwrap(parts.model), cfg, eval_ds, device, dist_info)
    results.update({"epochs": cfg.train.epochs, "num_classes": parts.num_classes,
                    "step_time": statistics.median(step_times) if step_times else float("nan"),
                    "final_loss": history[-1].get("loss") if history else float("nan"), "history": history})
    if main:
        write_final(out, unwrap(parts.model), cfg, parts.num_classes, results, history)
    return results


def train_epoch(parts: TrainingParts, cfg: Config, epoch: int, step_times: list[float],
                show_progress: bool, on_step: StepHook | None = None) -> dict[str, Any]:
    """One pass over the loader (at most ``parts.iters`` steps); returns the epoch's record (mean of each logged
    value over steps and ranks, learning rate, time). Appends each step's duration to ``step_times``; calls
    ``on_step(epoch, step)`` after each step."""
    from tqdm import tqdm

    if cfg.model.two_step and parts.method.binary:
        set_binarization(unwrap(parts.model), acts=True, weights=epoch >= cfg.train.epochs // 2)
    parts.model.train()
    parts.loader.batch_sampler.set_epoch(epoch)
    device = parts.device
    sums: dict[str, float] = {}
    n, t_epoch = 0, time.perf_counter()
    bar = tqdm(total=parts.iters, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", leave=False, disable=not show_progress)
    for step, (images, targets, *_) in enumerate(parts.loader):
        if step >= parts.iters:
            break
        t0 = time.perf_counter()
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        logs = train_step(parts, images, targets, cfg, epoch, step)
        step_times.append(time.perf_counter() - t0)
        for k, v in logs.items():
            sums[k] = sums.get(k, 0.0) + v
        n += 1
        bar.update(1)
        bar.set_postfix(loss=f"{logs['loss']:.3f}", **({"acc": f"{logs['acc']:.2f}"} if "acc" in logs else {}))
        if on_step is not None:
            on_step(epoch, step)
    bar.close()
    record: dict[str, Any] = {"epoch": epoch + 1, "lr": parts.optimizer.param_groups[0]["lr"]}
    record.update(all_reduce_mean({k: v / max(n, 1) for k, v in sums.items()}))
    record["epoch_time"] = time.perf_counter() - t_epoch
    return record
