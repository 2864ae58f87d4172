"""Helpers shared by tests (importable as `helpers`: pytest puts tests/ on sys.path)."""


def tiny_config(root, out, **over):
    """A config that trains a width-8 ResNet-18 on 64x32 images in seconds."""
    from bireid.config import Config, set_key

    cfg = Config()
    for k, v in {"data.dataset": "synthetic", "data.root": str(root), "data.synth_train_ids": 6,
                 "data.synth_test_ids": 6, "data.height": 64, "data.width": 32, "data.num_identities": 3,
                 "data.num_instances": 2, "data.workers": 0, "data.test_batch_size": 32, "model.width": 8,
                 "train.epochs": 2, "train.output_dir": str(out), "train.progress": False,
                 "optim.warmup_epochs": 1, "optim.lr": 1e-3, **over}.items():
        set_key(cfg, k, v)
    return cfg


class FakeTerminal:
    """A stderr that says it is a terminal (tqdm draws progress bars only there) and keeps what is written."""

    def __init__(self):
        self.parts: list[str] = []

    def write(self, s):
        self.parts.append(s)
        return len(s)

    def flush(self):
        pass

    def isatty(self):
        return True

    @property
    def text(self) -> str:
        return "".join(self.parts)


def randomize_for_export(model, seed):
    """Non-trivial BN statistics and affine parameters, RSign thresholds, (R)PReLU slopes and shifts, learned
    alphas (a fifth of them negative) and attention gates, so that folding errors cannot hide. Eval mode."""
    import torch
    import torch.nn as nn

    from bireid.gal import AttentionScale
    from bireid.nn import RPReLU
    from bireid.nn.scaling import LearnedScale

    g = torch.Generator().manual_seed(seed)

    def rand(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    def u(t, lo, hi):
        t.data.copy_(rand(t.shape, lo, hi))

    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            u(m.running_mean, -0.5, 0.5)
            u(m.running_var, 0.5, 2.0)
            u(m.weight, 0.5, 1.5)
            u(m.bias, -0.3, 0.3)
        thr = getattr(m, "threshold", None)
        if isinstance(thr, nn.Parameter):
            u(thr, -0.2, 0.2)
        if isinstance(m, RPReLU):
            u(m.shift_in, -0.2, 0.2)
            u(m.shift_out, -0.2, 0.2)
            u(m.slope, 0.05, 0.5)
        if isinstance(m, nn.PReLU):
            u(m.weight, 0.05, 0.5)
        if isinstance(m, LearnedScale):  # around its initial mean|W|, either sign
            sign = torch.where(torch.rand(m.alpha.shape, generator=g) < 0.2, -1.0, 1.0)
            m.alpha.data.mul_(rand(m.alpha.shape, 0.5, 1.5) * sign)
        if isinstance(m, AttentionScale):  # a gate that is not 1, a base that is not mean|W|
            u(m.fc2.weight, -1.0, 1.0)
            u(m.fc2.bias, -0.5, 0.5)
            u(m.log_base, -0.3, 0.3)
    return model.eval()


def binarization_margin(model, x):
    """(smallest |x - threshold| over every activation a binary conv binarizes, relative to the largest in its
    layer; model(x)). Relative, because float32 rounding errors scale with the layer's values (bireal's unscaled
    binary dot products reach ~100). A map with no negative value (a ReLU's output, e.g. xnor's stem) binarizes
    to +1 however its zeros round: it has no tie to fear."""
    import torch

    from bireid.nn import is_binary_conv

    margins: list[float] = []

    def pre_hook(conv, inputs):
        v = inputs[0]
        t = getattr(conv.act_binarizer, "threshold", None)
        if t is None and bool((v >= 0).all()):
            return
        if t is not None:
            v = v - t.view(1, -1, 1, 1)
        a = v.abs()
        margins.append(float(a.min() / a.max().clamp_min(1e-30)))

    hooks = [m.register_forward_pre_hook(pre_hook) for m in model.modules() if is_binary_conv(m, fully=True)]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    return min(margins, default=float("inf")), out


def tie_free_input(model64, size, margin, n=1, tries=100):
    """(x, model64(x) as NumPy) for the first seeded input batch whose float64 forward keeps every binarized value
    at least ``margin`` (relative, see :func:`binarization_margin`) from its threshold: float32 computations of it
    (an engine, ONNX Runtime) then take the same signs. ``x`` holds float32 values (in float64), so the reference
    sees what a float32 runtime gets."""
    import pytest
    import torch

    best = 0.0
    for seed in range(tries):
        x = torch.randn(n, 3, *size, generator=torch.Generator().manual_seed(seed)).double()
        m, ref = binarization_margin(model64, x)
        if m >= margin:
            return x, ref.numpy()
        best = max(best, m)
    pytest.fail(f"no tie-free input in {tries} draws (best margin {best:.2e} < {margin:.0e}): the test needs "
                "smaller inputs or another randomization")


def torchrun_train(cfg, config_path, nproc: int = 2):
    """Save ``cfg`` to ``config_path`` and run ``bireid train`` on it under torchrun with ``nproc`` single-threaded
    CPU processes; fails the test unless it exits 0. Returns the CompletedProcess (text stdout / stderr)."""
    import os
    import subprocess
    import sys

    cfg.save(config_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr",
           "127.0.0.1", "--master_port", str(free_port()), "-m", "bireid", "train", "--config", str(config_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a torchrun rendezvous)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_gallery(folder):
    """Six random JPEGs in Market-1501 naming (pids 1-3, cameras 1-2), each of its own size: (folder, paths)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir()
    paths = []
    for pid in (1, 2, 3):
        for cam in (1, 2):
            p = folder / f"{pid:04d}_c{cam}s1_000100_01.jpg"
            Image.fromarray(rng.integers(0, 256, (40 + pid, 20 + cam, 3), dtype=np.uint8)).save(p, quality=95)
            paths.append(p)
    return folder, paths
