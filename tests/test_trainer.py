import json

import pytest
import torch
from helpers import tiny_config

from bireid.checkpoint import read_checkpoint
from bireid.config import ConfigError
from bireid.engine.optim import lr_factor
from bireid.engine.trainer import TrainingDiverged, train


def test_train_writes_run_folder_and_metrics(tiny_synth, tmp_path):
    cfg = tiny_config(tiny_synth, tmp_path / "run", **{"train.log_format": "csv", "train.eval_every": 1,
                                                       "train.epochs": 3})
    res = train(cfg)
    for name in ("config.yaml", "log.csv", "curves.png", "last.safetensors", "model.safetensors", "results.json"):
        assert (tmp_path / "run" / name).exists(), name
    assert 0.0 <= res["mAP"] <= 1.0 and 0.0 <= res["rank1"] <= 1.0
    assert res["num_valid_queries"] > 0
    lines = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(lines) == 4 and "mAP" in lines[0]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["epochs"] == 3


def test_training_loss_decreases(tiny_synth, tmp_path):
    cfg = tiny_config(tiny_synth, tmp_path / "run", **{"train.epochs": 6, "optim.lr": 3e-3})
    hist = train(cfg)["history"]
    assert hist[-1]["ce"] < hist[0]["ce"]


def test_resume_reproduces_uninterrupted_run(tiny_synth, tmp_path):
    full = train(tiny_config(tiny_synth, tmp_path / "a", **{"train.epochs": 3}))
    part = tiny_config(tiny_synth, tmp_path / "b", **{"train.epochs": 3})
    stopped = train(part, stop_after_epochs=1)
    assert stopped["stopped_at_epoch"] == 1
    part.train.resume = True
    resumed = train(part)
    a, _, _ = read_checkpoint(tmp_path / "a" / "model.safetensors")
    b, _, _ = read_checkpoint(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:  # resuming on CPU reproduces the uninterrupted run bit for bit
        assert torch.equal(a[k], b[k]), k
    assert [r["loss"] for r in resumed["history"]] == [r["loss"] for r in full["history"]]
    log = (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in log] == [1, 2, 3]


def test_existing_run_is_not_overwritten(tiny_synth, tmp_path):
    cfg = tiny_config(tiny_synth, tmp_path / "run", **{"train.epochs": 1})
    train(cfg)
    before = (tmp_path / "run" / "last.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg)
    assert (tmp_path / "run" / "last.safetensors").read_bytes() == before


def test_divergence_stops_with_last_good_checkpoint(tiny_synth, tmp_path, monkeypatch):
    import bireid.modeling.losses as tr  # the re-ID objective the trainer calls looks the CE up here

    cfg = tiny_config(tiny_synth, tmp_path / "run", **{"train.epochs": 3})
    real_ce = tr.cross_entropy_label_smooth
    calls = {"n": 0}
    steps_per_epoch = 2  # 6 identities / P=3

    def flaky(logits, y, eps):
        calls["n"] += 1
        out = real_ce(logits, y, eps)
        return out * float("nan") if calls["n"] > steps_per_epoch else out

    monkeypatch.setattr(tr, "cross_entropy_label_smooth", flaky)
    with pytest.raises(TrainingDiverged, match="last good checkpoint .* is intact"):
        train(cfg)
    _, meta, _ = read_checkpoint(tmp_path / "run" / "last.safetensors")
    assert meta["epoch"] == 1


def test_lr_schedule_warmup_cosine_step(tiny_synth, tmp_path):
    cfg = tiny_config(tiny_synth, tmp_path, **{"train.epochs": 10, "optim.warmup_epochs": 2})
    f = [lr_factor(s, 10, cfg) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[19] < 1.0 and f[20] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[20:], f[21:])) and f[-1] < 0.05
    cfg.optim.scheduler, cfg.optim.milestones = "step", [5, 8]
    assert lr_factor(49, 10, cfg) == pytest.approx(1.0) and lr_factor(50, 10, cfg) == pytest.approx(0.1)
    assert lr_factor(85, 10, cfg) == pytest.approx(0.01)


def test_cuda_request_without_cuda_is_a_clear_error(tiny_synth, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        train(tiny_config(tiny_synth, tmp_path, **{"train.device": "cuda"}))
