"""Resuming: the resumable checkpoint ``last.safetensors`` and the RNG states it carries.

It holds the model weights, the optimizer, scheduler and AMP scaler states, every AuxLoss's state (with its
discriminators' optimizer), the Python/NumPy/torch RNG states and the epoch log. Restoring them at an epoch
boundary makes a resumed run reproduce the uninterrupted one on CPU (the sampler and the augmentations are
seeded from the restored RNG states). The checkpoint names its auxiliary losses (by type); a resumed run must
build the same ones, since their states and optimizer groups are restored one to one.
"""

from __future__ import annotations

import random
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import CheckpointError, check_state_compatible, read_checkpoint, save_checkpoint
from ..config import DEFAULT_TASK, Config, ConfigError
from ..distributed import unwrap
from .setup import TrainingParts

# Model keys a resumed run must share with the checkpoint (others, e.g. the learning rate, may change).
SAME_MODEL_KEYS = ("arch", "method", "head", "width", "last_stride", "stem", "aggregation")


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


def save_resumable(path: Path, parts: TrainingParts, cfg: Config, epoch: int, history: list[dict]) -> None:
    meta = {"config": cfg.to_dict(), "num_classes": parts.num_classes, "epoch": epoch, "history": history,
            "aux_losses": aux_names(parts)}
    states = {"optimizer": parts.optimizer.state_dict(), "scheduler": parts.scheduler.state_dict(),
              "scaler": parts.scaler.state_dict(), "aux": [a.state_dict() for a in parts.aux_losses],
              "rng": rng_state()}
    save_checkpoint(path, unwrap(parts.model).state_dict(), meta, states)


def start(out: Path, parts: TrainingParts, cfg: Config, main: bool) -> tuple[int, list[dict]]:
    """(first epoch, epoch log so far): resumed from ``out/last.safetensors`` with ``train.resume``, else a
    fresh start, which refuses to overwrite an existing run."""
    ckpt = out / "last.safetensors"
    if cfg.train.resume:
        start_epoch, history = restore(ckpt, parts, cfg)
        if main:
            print(f"resumed from {ckpt} at epoch {start_epoch}/{cfg.train.epochs}")
        return start_epoch, history
    if main and ckpt.exists():
        raise ConfigError(f"{out} already holds a run (last.safetensors); pass --resume to continue it or choose "
                          "another --output-dir (nothing was overwritten)")
    return 0, []


def aux_names(parts: TrainingParts) -> list[str]:
    """The run's auxiliary losses by type (KR-GAL, FR-GAL, distillation ...), in the order they are built."""
    return [type(a).__name__ for a in parts.aux_losses]


def check_aux_losses(path: Path, meta: dict[str, Any], states: dict[str, Any], parts: TrainingParts) -> None:
    """The run builds the auxiliary losses the checkpoint was trained with (their states, discriminators and
    optimizer groups are restored one to one), else a CheckpointError naming the difference."""
    have = aux_names(parts)
    saved = meta.get("aux_losses")
    if saved is None:  # written before the names were stored: only the number of states can be checked
        n = len(states.get("aux", []))
        if n != len(have):
            raise CheckpointError(f"--resume: {path} holds {n} auxiliary-loss states, this run builds {len(have)} "
                                  f"({', '.join(have) or 'none'}): resume with the checkpoint's gal.* and "
                                  "model.teacher settings")
        return
    if list(saved) == have:
        return
    gone = list((Counter(saved) - Counter(have)).elements())
    new = list((Counter(have) - Counter(saved)).elements())
    diff = "; ".join(f"{label}: {', '.join(names)}" for label, names in
                     (("not in this run", gone), ("not in the checkpoint", new)) if names) or "another order"
    raise CheckpointError(f"--resume: {path} was trained with the auxiliary losses [{', '.join(saved)}], this run "
                          f"builds [{', '.join(have)}] ({diff}): resume with the checkpoint's gal.* and "
                          "model.teacher settings, or start a new run in another --output-dir")


def restore(path: Path, parts: TrainingParts, cfg: Config) -> tuple[int, list[dict]]:
    """Load every state of ``path`` into ``parts`` (after checking the run is the same model and data)."""
    if not path.exists():
        raise CheckpointError(f"--resume: no checkpoint to resume at {path}")
    state, meta, states = read_checkpoint(path)
    old_task = meta.get("config", {}).get("task", {}).get("name", DEFAULT_TASK)
    if old_task != cfg.task.name:
        raise CheckpointError(f"--resume: {path} was trained for --task {old_task}, the config asks for "
                              f"{cfg.task.name}")
    if meta.get("num_classes") != parts.num_classes:
        raise CheckpointError(f"--resume: {path} was trained with {meta.get('num_classes')} classes (identities), "
                              f"this data set has {parts.num_classes}")
    old = meta.get("config", {}).get("model", {})
    for key in SAME_MODEL_KEYS:
        if key in old and old[key] != getattr(cfg.model, key):
            raise CheckpointError(f"--resume: {path} has model.{key}={old[key]!r}, the config asks for "
                                  f"{getattr(cfg.model, key)!r}")
    check_aux_losses(path, meta, states, parts)
    model = unwrap(parts.model)
    check_state_compatible(model, state, str(path))
    model.load_state_dict(state)
    parts.optimizer.load_state_dict(states["optimizer"])
    parts.scheduler.load_state_dict(states["scheduler"])
    if states.get("scaler"):
        parts.scaler.load_state_dict(states["scaler"])
    for a, s in zip(parts.aux_losses, states.get("aux", []), strict=True):
        try:
            a.load_state_dict(s)
        except RuntimeError as e:  # torch lists every key; the first lines say which
            detail = " ".join(str(e).split())[:300]
            raise CheckpointError(f"--resume: the {type(a).__name__} state in {path} does not fit this run: "
                                  f"{detail}") from None
    set_rng_state(states["rng"])
    if int(meta["epoch"]) > cfg.train.epochs:
        warnings.warn(f"checkpoint is at epoch {meta['epoch']} > train.epochs={cfg.train.epochs}", stacklevel=2)
    return int(meta["epoch"]), list(meta.get("history", []))
