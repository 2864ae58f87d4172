"""A trained classification / point-cloud checkpoint through the torch-free engine: export it to ``.bnn``, run the
whole test split through PyTorch and through the engine, and compare logits, predictions and accuracy; time both
at one thread. Also counts the samples whose logits differ by more than 1e-4 (relative to the largest logit) between
the engine and PyTorch float32, and between PyTorch float32 and float64: a 1-bit network's output jumps when a
pre-activation within rounding distance of its threshold flips sign, and float64 shows how often plain rounding
does that. Prints a markdown row.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tasks_export.py \
        --checkpoint runs/issue16/cifar10/bireid-both/seed0/model.safetensors [--limit 2000]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bireid.deploy.export import export_bnn
from bireid.evaluation import predict
from bireid.factory import load_model
from bireid.runtime import BNNModel, get_isa, set_num_threads
from bireid.tasks import get_task


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--limit", type=int, default=0, help="first N test samples only (0 = all)")
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(1)
    set_num_threads(1)
    model, cfg = load_model(args.checkpoint)
    task = get_task(cfg.task.name)
    cfg.data.workers = 0
    cfg.data.test_batch_size = args.batch
    _, eval_ds = task.build_datasets(cfg)
    from torch.utils.data import DataLoader, Subset

    from bireid.data.labelled import SplitDataset

    ds = SplitDataset(eval_ds.test, task.transform(cfg, False), "error")
    if args.limit:
        ds = Subset(ds, range(min(args.limit, len(ds))))
    batches = list(DataLoader(ds, batch_size=args.batch, shuffle=False))
    channels, h, w = task.input_shape(cfg)
    mean, std = task.input_norm
    with tempfile.TemporaryDirectory() as tmp:
        path = export_bnn(model, Path(tmp) / "m.bnn", input_size=(h, w), mean=mean, std=std)
        size_mb = path.stat().st_size / 1e6
        rt = BNNModel.load(path)
    t0 = time.perf_counter()
    ref, labels, _ = predict(model, batches, "cpu")
    t_torch = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = np.concatenate([rt.forward(b[0].numpy()) for b in batches])
    t_rt = time.perf_counter() - t0
    ref = ref.numpy()
    scale = max(float(np.abs(ref).max()), 1e-12)
    rel = float(np.abs(got - ref).max() / scale)
    off_rt = int((np.abs(got - ref).max(1) > 1e-4 * scale).sum())
    with torch.no_grad():
        ref64 = torch.cat([model.double()(b[0].double()) for b in batches]).numpy()
    off_64 = int((np.abs(ref64 - ref).max(1) > 1e-4 * scale).sum())
    same = float((got.argmax(1) == ref.argmax(1)).mean())
    acc_t, acc_r = float((ref.argmax(1) == labels).mean()), float((got.argmax(1) == labels).mean())
    n = len(labels)
    print(f"# {cpu_model()}, ISA {get_isa()}, 1 thread, {task.name} {cfg.model.arch} {cfg.model.method}, {n} test "
          f"samples, batch {args.batch}, .bnn {size_mb:.2f} MB")
    print("| checkpoint | samples | max rel. logit diff | samples > 1e-4: engine vs fp32 / fp64 vs fp32 | same "
          "prediction | top-1 PyTorch | top-1 engine | PyTorch samples/s | engine samples/s |")
    print(f"| {args.checkpoint} | {n} | {rel:.1e} | {off_rt} / {off_64} | {100 * same:.2f}% | {100 * acc_t:.2f} | "
          f"{100 * acc_r:.2f} | {n / t_torch:.0f} | {n / t_rt:.0f} |")


if __name__ == "__main__":
    main()
