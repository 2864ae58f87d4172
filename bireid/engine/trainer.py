"""The training loop: one function, ``train(cfg)``, for every method, on one or many processes.

What a run folder (``cfg.train.output_dir``) holds:
- ``config.yaml``: the config used; ``log.jsonl`` or ``log.csv``: one record per epoch; ``curves.png``;
- ``last.safetensors``: the resumable checkpoint (weights, optimizer, scheduler, auxiliary losses and RNG
  states), rewritten atomically at every ``checkpoint_every`` epochs;
- ``model.safetensors``: the final weights + config (what ``bireid eval`` and ``bireid export`` read);
- ``results.json``: the final metrics.

Resuming restores every state at an epoch boundary, so a resumed run reproduces the uninterrupted one on
CPU (the sampler and the augmentations are seeded from the restored RNG states).
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ..checkpoint import CheckpointError, atomic_write, check_state_compatible, read_checkpoint, save_checkpoint
from ..config import Config, ConfigError
from ..data import build_datasets, build_train_loader, check_data_config
from ..distributed import (
    DistInfo,
    all_reduce_mean,
    broadcast_module,
    cleanup_distributed,
    gather_tensors,
    init_distributed,
    unwrap,
)
from ..factory import check_model_config, create_model, init_from_checkpoint, load_model, model_kwargs
from ..methods import get_method
from ..modeling.losses import batch_hard_triplet_loss, cross_entropy_label_smooth
from ..nn import is_binary_conv


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf or exploded; the last good checkpoint is left untouched."""


# ---------------------------------------------------------------------------------------------- set-up
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} was asked for but CUDA is not available on this machine")
    if not (name == "cpu" or name.startswith("cuda")):
        raise ConfigError(f"unknown device {name!r}: use cpu, cuda or cuda:N")
    return torch.device(name)


def build_param_groups(model: nn.Module, cfg: Config) -> list[dict]:
    """Separate rates as the paper describes: latent binary weights, scale factors alpha, and the rest."""
    o = cfg.optim
    binary_w = [m.weight for m in model.modules() if is_binary_conv(m)]
    bw_ids = {id(p) for p in binary_w}
    alpha, other, weights = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in bw_ids:
            continue
        if "alpha" in name.split(".")[-1] or ".scaling." in name or ".scaler." in name:
            alpha.append(p)
        elif p.ndim <= 1:
            other.append(p)
        else:
            weights.append(p)
    binary = get_method(cfg.model.method).binary
    groups = [
        dict(params=weights, lr=o.lr, weight_decay=o.weight_decay, name="weights"),
        dict(params=binary_w, lr=o.lr, weight_decay=o.binary_weight_decay, name="binary_weights"),
        dict(params=alpha, lr=o.lr * o.alpha_lr_mult, weight_decay=0.0, name="alpha"),
        # BN/PReLU/thresholds: decayed like weights in float models (the strong baseline), not in binary ones.
        dict(params=other, lr=o.lr * o.other_lr_mult, weight_decay=0.0 if binary else o.weight_decay, name="other"),
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(groups: list[dict], cfg: Config) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.optimizer == "adam":
        return torch.optim.Adam(groups, lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=True)


def lr_factor(step: int, iters_per_epoch: int, cfg: Config) -> float:
    """Linear warmup, then cosine (to 1% of the rate) or step decay; evaluated per iteration."""
    o, total = cfg.optim, cfg.train.epochs * iters_per_epoch
    warm = min(o.warmup_epochs * iters_per_epoch, max(total - 1, 0))
    if step < warm:
        return o.warmup_factor + (1.0 - o.warmup_factor) * step / max(warm, 1)
    if o.scheduler == "cosine":
        t = (step - warm) / max(total - warm, 1)
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))
    epoch = step / iters_per_epoch
    return o.gamma ** sum(1 for m in o.milestones if epoch >= m)


def rng_state() -> dict[str, Any]:
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    py = st["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np.random.set_state(tuple(st["numpy"]))
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(st["cuda"]))


# ---------------------------------------------------------------------------------------------- logging
def write_log(out: Path, history: list[dict], fmt: str) -> None:
    if fmt == "jsonl":
        text = "".join(json.dumps(r) + "\n" for r in history)
        atomic_write(out / "log.jsonl", lambda tmp: Path(tmp).write_text(text))
        return
    cols: list[str] = []
    for r in history:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerows(history)
    atomic_write(out / "log.csv", lambda tmp: Path(tmp).write_text(buf.getvalue()))


def plot_curves(out: Path, history: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in history]
    loss_keys = [k for k in ("loss", "ce", "triplet") if k in history[0]]
    aux_keys = sorted({k for r in history for k in r if k.startswith(("kr_", "fr_", "distill"))})
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for k in loss_keys:
        axes[0].plot(ep, [r.get(k) for r in history], label=k)
    axes[0].set_title("training losses")
    for k in aux_keys:
        axes[1].plot(ep, [r.get(k) for r in history], label=k)
    axes[1].set_title("auxiliary terms / discriminators")
    if not aux_keys:
        axes[1].text(0.5, 0.5, "no auxiliary losses\n(KR-GAL / FR-GAL / distillation off)", ha="center",
                     va="center", transform=axes[1].transAxes, color="gray")
    axes[2].plot(ep, [r.get("acc") for r in history], label="train ID acc")
    ev = [(r["epoch"], r) for r in history if "mAP" in r]
    if ev:
        axes[2].plot([e for e, _ in ev], [r["mAP"] for _, r in ev], "o-", label="mAP")
        axes[2].plot([e for e, _ in ev], [r["rank1"] for _, r in ev], "s-", label="Rank-1")
    axes[2].set_title("accuracy")
    for a in axes:
        a.set_xlabel("epoch")
        if a.lines:
            a.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write(out / "curves.png", lambda tmp: Path(tmp).write_bytes(buf.getvalue()))


# ---------------------------------------------------------------------------------------------- evaluation
def evaluate_model(model: nn.Module, cfg: Config, eval_ds, device: torch.device, dist_info: DistInfo) -> dict:
    """Rank-1/5/10, mAP, mINP on ``eval_ds``; with several ranks each extracts a shard, features are gathered."""
    from ..data import build_test_loaders
    from ..data.datasets.base import ReIDDataset
    from ..evaluation import evaluate_features, extract_features

    if not eval_ds.query or not eval_ds.gallery:
        return {}
    if dist_info.enabled:
        r, w = dist_info.rank, dist_info.world_size
        eval_ds = ReIDDataset(eval_ds.name, [], eval_ds.query[r::w], eval_ds.gallery[r::w])
    ql, gl = build_test_loaders(cfg, eval_ds)
    t0 = time.perf_counter()
    qf, qp, qc = extract_features(model, ql, device=device, flip=cfg.eval.flip)
    gf, gp, gc = extract_features(model, gl, device=device, flip=cfg.eval.flip)
    if dist_info.enabled:
        qf, gf = gather_tensors(qf.to(device)).cpu(), gather_tensors(gf.to(device)).cpu()
        qp, qc, gp, gc = (gather_tensors(torch.as_tensor(a).to(device)).cpu().numpy() for a in (qp, qc, gp, gc))
    res = evaluate_features(qf, qp, qc, gf, gp, gc, metric=cfg.eval.metric, rerank=cfg.eval.rerank,
                            max_rank=cfg.eval.max_rank)
    out = {"rank1": res.rank1, "rank5": res.rank5, "rank10": res.rank10, "mAP": res.mAP, "mINP": res.mINP,
           "num_query": len(qp), "num_gallery": len(gp), "num_valid_queries": res.num_valid_queries,
           "num_skipped_queries": res.num_skipped_queries, "eval_time": time.perf_counter() - t0}
    return out


# ---------------------------------------------------------------------------------------------- the loop
def _check_finite(loss: torch.Tensor, epoch: int, step: int, out: Path) -> None:
    v = float(loss.detach())
    if not math.isfinite(v) or abs(v) > 1e6:
        kept = out / "last.safetensors"
        where = f"the last good checkpoint {kept} is intact" if kept.exists() else "no checkpoint was written yet"
        raise TrainingDiverged(f"training loss became {v:.4g} at epoch {epoch + 1}, step {step + 1}: the run "
                               f"stopped; {where}. Try a lower --lr, --optim.grad_clip, or a longer warmup.")


def train(cfg: Config, *, datasets: tuple | None = None, stop_after_epochs: int | None = None) -> dict[str, Any]:
    """Train (and finally evaluate) the model ``cfg`` describes. Returns the final metrics and run facts.

    ``datasets`` overrides (train, eval) data sets; ``stop_after_epochs`` ends the run early (for tests of
    resume) as an interruption would, leaving a resumable checkpoint.
    """
    check_model_config(cfg)
    if datasets is None:
        check_data_config(cfg)
    device = resolve_device(cfg.train.device)
    dist_info = init_distributed(cfg.train.device)
    result = _train(cfg, device, dist_info, datasets, stop_after_epochs)
    if dist_info.enabled:
        # Every rank waits for the others to finish (rank 0 still writes results and plots after the last
        # collective) before the group is torn down: a rank that destroys its group and exits while a peer's
        # transport is still live can abort the peer. On an exception the group is left alone: a peer may be
        # blocked in a collective, and destroying would hang; torchrun stops the other ranks.
        torch.distributed.barrier()
        cleanup_distributed()
    return result


def _train(cfg, device, dist_info, datasets, stop_after_epochs):
    out = Path(cfg.train.output_dir)
    main = dist_info.is_main
    if main:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"the output folder {out} is an existing file, not a folder (train.output_dir)")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            blocker = next((a for a in out.parents if a.exists() and not a.is_dir()), None)
            why = f"{blocker} is a file, not a folder" if blocker is not None else e.strerror
            raise ConfigError(f"cannot create the output folder {out}: {why}") from None
        if not _writable(out):
            raise ConfigError(f"the output folder {out} is not writable")
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)

    if datasets is None:
        # Rank 0 builds first (the synthetic set is generated once), the others read it after the barrier.
        if dist_info.enabled and not main:
            torch.distributed.barrier()
        datasets = build_datasets(cfg)
        if dist_info.enabled and main:
            torch.distributed.barrier()
    train_ds, eval_ds = datasets
    if main:
        print(train_ds.summary())
        if eval_ds is not train_ds:
            print(eval_ds.summary())
    num_classes = train_ds.num_train_pids
    model = create_model(**model_kwargs(cfg, num_classes))
    if cfg.model.init_from:
        rep = init_from_checkpoint(model, cfg.model.init_from)
        if main:
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
    loader = build_train_loader(cfg, train_ds, rank=dist_info.rank, world_size=dist_info.world_size,
                                seed=cfg.train.seed)
    iters = len(loader.batch_sampler)
    if cfg.train.max_steps_per_epoch > 0:
        iters = min(iters, cfg.train.max_steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, iters, cfg))
    use_amp = cfg.train.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    start_epoch, history = 0, []
    ckpt = out / "last.safetensors"
    if cfg.train.resume:
        start_epoch, history = _resume(ckpt, model, optimizer, scheduler, scaler, aux_losses, cfg, num_classes)
        if main:
            print(f"resumed from {ckpt} at epoch {start_epoch}/{cfg.train.epochs}")
    elif main and ckpt.exists():
        raise ConfigError(f"{out} already holds a run (last.safetensors); pass --resume to continue it or choose "
                          "another --output-dir (nothing was overwritten)")
    if main:
        cfg.save(out / "config.yaml")

    if dist_info.enabled:
        for a in aux_losses:
            broadcast_module(a)
        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    from tqdm import tqdm

    step_times: list[float] = []
    end_epoch = cfg.train.epochs if stop_after_epochs is None else min(cfg.train.epochs, stop_after_epochs)
    results: dict[str, Any] = {}
    for epoch in range(start_epoch, end_epoch):
        if cfg.model.two_step and method.binary:
            from ..nn import set_binarization

            set_binarization(unwrap(model), acts=True, weights=epoch >= cfg.train.epochs // 2)
        model.train()
        loader.batch_sampler.set_epoch(epoch)
        sums: dict[str, float] = {}
        n = 0
        t_epoch = time.perf_counter()
        bar = tqdm(total=iters, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", leave=False,
                   disable=not (main and cfg.train.progress))
        for step, (images, pids, _camids, _idx) in enumerate(loader):
            if step >= iters:
                break
            t0 = time.perf_counter()
            images, pids = images.to(device, non_blocking=True), pids.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                outputs = model(images)
                terms = {"ce": cross_entropy_label_smooth(outputs["logits"], pids, cfg.loss.label_smoothing)}
                if cfg.loss.triplet:
                    tri, _prec = batch_hard_triplet_loss(outputs["feat"], pids, cfg.loss.margin)
                    terms["triplet"] = cfg.loss.triplet_weight * tri
                for a in aux_losses:
                    terms.update(a.generator_loss(unwrap(model), images, outputs, pids))
            loss = sum(terms.values())
            _check_finite(loss, epoch, step, out)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.optim.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]],
                                         cfg.optim.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            logs = {k: float(v.detach()) for k, v in terms.items()}
            for a in aux_losses:
                logs.update(a.discriminator_step(outputs))
            step_times.append(time.perf_counter() - t0)
            logs["loss"] = float(loss.detach())
            logs["acc"] = float((outputs["logits"].argmax(1) == pids).float().mean())
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
            bar.update(1)
            bar.set_postfix(loss=f"{logs['loss']:.3f}", acc=f"{logs['acc']:.2f}")
        bar.close()
        record: dict[str, Any] = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
        record.update(all_reduce_mean({k: v / max(n, 1) for k, v in sums.items()}))
        record["epoch_time"] = time.perf_counter() - t_epoch
        last = epoch + 1 == cfg.train.epochs
        if (cfg.train.eval_every and (epoch + 1) % cfg.train.eval_every == 0) and not last:
            record.update(evaluate_model(unwrap(model), cfg, eval_ds, device, dist_info))
        history.append(record)
        if main:
            msg = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items())
            print(msg, flush=True)
            write_log(out, history, cfg.train.log_format)
            plot_curves(out, history)
            if (epoch + 1) % cfg.train.checkpoint_every == 0 or last or epoch + 1 == end_epoch:
                _save_resumable(ckpt, unwrap(model), optimizer, scheduler, scaler, aux_losses, cfg,
                                num_classes, epoch + 1, history)

    if end_epoch < cfg.train.epochs:
        return {"stopped_at_epoch": end_epoch, "history": history}
    results = evaluate_model(unwrap(model), cfg, eval_ds, device, dist_info)
    results.update({"epochs": cfg.train.epochs, "num_classes": num_classes,
                    "step_time": statistics.median(step_times) if step_times else float("nan"),
                    "final_loss": history[-1].get("loss") if history else float("nan"),
                    "history": history})
    if main:
        if history and results.get("mAP") is not None:
            history[-1].update({k: results[k] for k in ("rank1", "rank5", "rank10", "mAP", "mINP")})
            write_log(out, history, cfg.train.log_format)
            plot_curves(out, history)
        meta = {"config": cfg.to_dict(), "num_classes": num_classes, "epoch": cfg.train.epochs,
                "results": {k: v for k, v in results.items() if k != "history"}}
        save_checkpoint(out / "model.safetensors", unwrap(model).state_dict(), meta)
        text = json.dumps({k: v for k, v in results.items() if k != "history"}, indent=2)
        atomic_write(out / "results.json", lambda tmp: Path(tmp).write_text(text))
    return results


def _writable(folder: Path) -> bool:
    try:
        with open(folder / ".write_test", "w"):
            pass
        (folder / ".write_test").unlink()
        return True
    except OSError:
        return False


def _save_resumable(path, model, optimizer, scheduler, scaler, aux_losses, cfg, num_classes, epoch, history):
    meta = {"config": cfg.to_dict(), "num_classes": num_classes, "epoch": epoch, "history": history}
    states = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
              "scaler": scaler.state_dict(), "aux": [a.state_dict() for a in aux_losses], "rng": rng_state()}
    save_checkpoint(path, model.state_dict(), meta, states)


def _resume(path, model, optimizer, scheduler, scaler, aux_losses, cfg, num_classes):
    if not path.exists():
        raise CheckpointError(f"--resume: no checkpoint to resume at {path}")
    state, meta, states = read_checkpoint(path)
    if meta.get("num_classes") != num_classes:
        raise CheckpointError(f"--resume: {path} was trained with {meta.get('num_classes')} identities, this data "
                              f"set has {num_classes}")
    old = meta.get("config", {}).get("model", {})
    for key in ("arch", "method", "head", "width", "last_stride"):
        if key in old and old[key] != getattr(cfg.model, key):
            raise CheckpointError(f"--resume: {path} has model.{key}={old[key]!r}, the config asks for "
                                  f"{getattr(cfg.model, key)!r}")
    check_state_compatible(model, state, str(path))
    model.load_state_dict(state)
    optimizer.load_state_dict(states["optimizer"])
    scheduler.load_state_dict(states["scheduler"])
    if states.get("scaler"):
        scaler.load_state_dict(states["scaler"])
    for a, s in zip(aux_losses, states.get("aux", [])):
        a.load_state_dict(s)
    set_rng_state(states["rng"])
    if int(meta["epoch"]) > cfg.train.epochs:
        warnings.warn(f"checkpoint is at epoch {meta['epoch']} > train.epochs={cfg.train.epochs}", stacklevel=2)
    return int(meta["epoch"]), list(meta.get("history", []))
