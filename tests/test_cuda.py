"""CUDA smoke test: a bireid run with AMP trains an epoch, resumes, evaluates, and agrees with a CPU run.

Skipped, with the reason, where torch sees no GPU; it runs wherever one is present. What it checks:
- training with AMP (float16 autocast + GradScaler) is on and its losses agree with the CPU run's (float32) on
  the first epoch: the same init (built on the CPU from the seed) and the same batches (the sampler and the
  augmentations draw from Python's RNG), so only rounding differs. Compared: the identity CE (measured
  ~1e-4 apart under float16 autocast), KR-GAL's reconstruction term (~2e-5) and FR-GAL's (~3e-3). Left out:
  the batch-hard triplet term (its hinge and hardest-sample choice move it by several % for the same rounding)
  and the adversarial terms (KR-GAL draws its filters with the device's generator, which differs);
- resuming on CUDA continues every state: the scaler (each overflow halves its scale from 2**16 and skips the
  model step, so the model Adam's step count must equal the steps taken minus those skipped, summed over both
  halves of the run), and both GALs' discriminator Adam (4 steps, never skipped);
- evaluating the final weights on CUDA (float16 autocast) and on the CPU gives the same features (cosine >
  0.99: a binary network may flip a few signs near a threshold under other rounding) and mAP (within 0.05).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_config

from bireid.checkpoint import read_checkpoint
from bireid.data import build_datasets, build_test_loaders
from bireid.distributed import DistInfo
from bireid.engine.evaluate import evaluate_model
from bireid.engine.trainer import train
from bireid.evaluation import extract_features
from bireid.factory import load_model

STEPS = 2 * 2  # 2 epochs x 2 steps (6 identities, P = 3)
INIT_SCALE = 2.0**16  # torch.amp.GradScaler's initial scale; overflows halve it (no growth within 2000 steps)


def check_amp_run_against_cpu(tiny_synth, tmp_path, device: str, capsys) -> None:
    """The smoke test's body, on ``device`` (a test calls it with "cuda")."""
    over = {"model.method": "bireid", "train.epochs": 2, "train.amp": True}
    cpu = train(tiny_config(tiny_synth, tmp_path / "cpu", **over))

    cfg = tiny_config(tiny_synth, tmp_path / "dev", **over, **{"train.device": device})
    assert train(cfg, stop_after_epochs=1)["stopped_at_epoch"] == 1
    cfg.train.resume = True
    dev = train(cfg)
    assert "at epoch 1/2" in capsys.readouterr().out
    assert [r["epoch"] for r in dev["history"]] == [1, 2]

    _, _, st = read_checkpoint(tmp_path / "dev" / "last.safetensors")
    assert st["scaler"], "AMP was off: the GradScaler saved no state"
    skipped = math.log2(INIT_SCALE / st["scaler"]["scale"])
    assert skipped == int(skipped) and 0 <= skipped < STEPS, st["scaler"]
    model_steps = {float(s["step"]) for s in st["optimizer"]["state"].values()}
    assert max(model_steps, default=0.0) == STEPS - skipped, (model_steps, st["scaler"])
    for aux in st["aux"]:  # KR-GAL, FR-GAL
        d_steps = {float(v) for k, v in aux.items() if k.startswith("disc_optimizer.") and k.endswith(".step")}
        assert d_steps == {STEPS}

    for key, rel in (("ce", 1e-2), ("kr_mse", 1e-2), ("fr_mse", 5e-2)):
        a, b = dev["history"][0][key], cpu["history"][0][key]
        assert math.isfinite(a) and a == pytest.approx(b, rel=rel), (key, a, b)
    assert math.isfinite(dev["history"][1]["loss"])

    model, _ = load_model(tmp_path / "dev" / "model.safetensors", "cpu")
    _, eval_ds = build_datasets(cfg)
    query, _ = build_test_loaders(cfg, eval_ds)
    f_cpu, _, _ = extract_features(model, query, "cpu", flip=cfg.eval.flip)
    f_dev, _, _ = extract_features(model.to(device), query, device, flip=cfg.eval.flip)
    cos = F.cosine_similarity(f_cpu, f_dev, dim=1)
    assert float(cos.min()) > 0.99, cos
    on_cpu = evaluate_model(model.cpu(), cfg, eval_ds, torch.device("cpu"), DistInfo())
    assert 0.0 <= dev["mAP"] <= 1.0 and on_cpu["mAP"] == pytest.approx(dev["mAP"], abs=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_bireid_amp_epoch_resume_and_evaluation_on_cuda_agree_with_cpu(tiny_synth, tmp_path, capsys):
    check_amp_run_against_cpu(tiny_synth, tmp_path, "cuda", capsys)
