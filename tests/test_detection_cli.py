"""Detection through the real CLI: train --task detection, eval, export (+ detect on the exported model),
complexity, ablate --task detection."""

from __future__ import annotations

import json

from test_tasks_cli import run_cli

TINY = ["--workers", "0", "--data.batch_size", "4", "--data.test_batch_size", "8", "--epochs", "1",
        "--model.width", "8", "--height", "64", "--width", "64", "--set", "data.synth_scenes=[8,4]",
        "--set", "train.progress=false", "--set", "optim.warmup_epochs=0"]


def test_train_eval_export_detect(capsys, tmp_path):
    run, scenes = tmp_path / "run", tmp_path / "scenes"
    rc, out, _ = run_cli(capsys, ["train", "--task", "detection", "--data-root", scenes, "--output-dir", run,
                                  "--method", "bireid", *TINY])
    assert rc == 0 and "AP50" in out and "VOC AP50" in out
    rc, out, _ = run_cli(capsys, ["eval", "--checkpoint", run / "model.safetensors", "--json"])
    assert rc == 0 and {"AP", "AP50", "voc_AP50"} <= set(json.loads(out))
    rc, out, _ = run_cli(capsys, ["export", "--checkpoint", run / "model.safetensors", "--out", tmp_path / "d.bnn",
                                  "--verify", "--verify-images", scenes / "images"])
    assert rc == 0 and "verify: max relative difference" in out
    rc, out, _ = run_cli(capsys, ["detect", "--model", tmp_path / "d.bnn", "--images", scenes / "images", "--out",
                                  tmp_path / "found", "--score", "0.05"])
    assert rc == 0 and len(json.loads((tmp_path / "found" / "detections.json").read_text())) == 12
    rc, out, _ = run_cli(capsys, ["complexity", "--task", "detection", "--method", "bireid"])
    assert rc == 0


def test_ablate_detection(capsys, tmp_path):
    rc, out, _ = run_cli(capsys, ["ablate", "--task", "detection", "--data-root", tmp_path / "scenes", "--seeds", "0",
                                  "--epochs", "1", "--variants", "real", "bireid-both", "--runs-dir", tmp_path / "runs",
                                  "--set", "data.workers=0", "--set", "data.batch_size=4", "--set", "model.width=8",
                                  "--set", "data.height=64", "--set", "data.width=64", "--set",
                                  "data.synth_scenes=[8,4]", "--set", "train.progress=false", "--set",
                                  "optim.warmup_epochs=0"])
    assert rc == 0
    table = (tmp_path / "runs" / "ABLATION.md").read_text()
    assert "AP50" in table and "+ KR-GAL + FR-GAL" in table and "real-valued" in table
