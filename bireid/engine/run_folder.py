"""The run folder (``cfg.train.output_dir``): its checks, the per-epoch log and curves, the final model and results.

What it holds: ``config.yaml`` (the config used); ``log.jsonl`` or ``log.csv`` (one record per epoch);
``curves.png``; ``last.safetensors`` (the resumable checkpoint, ``bireid.engine.resume``); ``model.safetensors``
(the final weights + config: what ``bireid eval`` and ``bireid export`` read); ``results.json`` (the final
metrics). Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import torch.nn as nn

from ..checkpoint import atomic_write, save_checkpoint
from ..config import Config, ConfigError
from ..tasks import get_task


def prepare_output_dir(out: Path) -> None:
    """Create the run folder, or fail with one line naming the path when it cannot be a writable folder."""
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


def _writable(folder: Path) -> bool:
    try:
        with open(folder / ".write_test", "w"):
            pass
        (folder / ".write_test").unlink()
        return True
    except OSError:
        return False


def log_epoch(out: Path, history: list[dict], cfg: Config) -> None:
    """Print the last epoch's record and rewrite the log and the curves."""
    msg = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in history[-1].items())
    print(msg, flush=True)
    write_log(out, history, cfg.train.log_format)
    plot_curves(out, history, get_task(cfg.task.name).table_metrics)


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


REID_CURVES = (("mAP", "mAP"), ("rank1", "Rank-1"))


def plot_curves(out: Path, history: list[dict], metrics: tuple[tuple[str, str], ...] = REID_CURVES) -> None:
    """``curves.png``: the losses, the auxiliary terms, and the training accuracy with the evaluation ``metrics``
    ((key, label) pairs) wherever an epoch record has them."""
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
    axes[2].plot(ep, [r.get("acc") for r in history], label="train accuracy")
    for (key, label), marker in zip(metrics, "os^v"):
        ev = [(r["epoch"], r[key]) for r in history if key in r]
        if ev:
            axes[2].plot([e for e, _ in ev], [v for _, v in ev], marker + "-", label=label)
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


def write_final(out: Path, model: nn.Module, cfg: Config, num_classes: int, results: dict[str, Any],
                history: list[dict]) -> None:
    """The final metrics into the last log record, then ``model.safetensors`` and ``results.json``."""
    task = get_task(cfg.task.name)
    if history and results.get(task.primary_metric) is not None:
        history[-1].update({k: results[k] for k in task.metric_keys})
        write_log(out, history, cfg.train.log_format)
        plot_curves(out, history, task.table_metrics)
    meta = {"config": cfg.to_dict(), "num_classes": num_classes, "epoch": cfg.train.epochs,
            "results": {k: v for k, v in results.items() if k != "history"}}
    save_checkpoint(out / "model.safetensors", model.state_dict(), meta)
    text = json.dumps({k: v for k, v in results.items() if k != "history"}, indent=2)
    atomic_write(out / "results.json", lambda tmp: Path(tmp).write_text(text))
