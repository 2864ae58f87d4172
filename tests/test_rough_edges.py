"""Rough edges a user hit: a synthetic set made with `bireid synth` is never deleted by training, `synth` and
`train` share one default difficulty, long silences have progress bars, a torchrun run reports once."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers import FakeTerminal, tiny_config, torchrun_train

from bireid.cli import build_parser, main
from bireid.config import Config
from bireid.data.synth import generate_synthetic, read_manifest

SMALL = ["--train-ids", "2", "--test-ids", "2", "--cameras", "2", "--height", "64", "--width", "32"]


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def test_training_never_replaces_a_set_made_by_synth(tmp_path, capsys):
    root = tmp_path / "mine"
    assert main(["synth", "--out", str(root), *SMALL, "--difficulty", "0.5"]) == 0
    before = _files(root)
    out = tmp_path / "run"
    argv = ["train", "--data-root", str(root), "--output-dir", str(out), "--epochs", "1", "--data.synth_train_ids",
            "2", "--data.synth_test_ids", "2", "--data.num_identities", "2", "--data.num_instances", "2",
            "--data.workers", "0", "--no-train.progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(root) in err and "difficulty: 0.5 in the set vs 0.2 asked" in err and "--force" in err
    assert _files(root) == before, "the user's set is untouched"
    assert read_manifest(root)["params"]["difficulty"] == 0.5
    # Asking for its difficulty trains on it as it is: its 64x32 images and 2 cameras are the set's own (training
    # cannot ask for them).
    assert main([*argv, "--data.synth_difficulty", "0.5"]) == 0
    assert _files(root) == before, "the user's set is used, not regenerated"
    assert (out / "model.safetensors").is_file()
    # Evaluation alone takes any set made by `bireid synth` (e.g. a larger test split of unseen identities), as
    # it is: 3 test identities and another seed here, against the 2 and seed 0 the run was trained with.
    other = tmp_path / "bigger_test"
    assert main(["synth", "--out", str(other), *SMALL[:2], "--test-ids", "3", *SMALL[4:], "--seed", "5"]) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out / "model.safetensors"), "--dataset", "synthetic",
                 "--data-root", str(other), "--json", "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_query"] == read_manifest(other)["summary"]["query"]["images"]


def test_synth_and_train_share_one_default_difficulty(tmp_path):
    synth_args = build_parser().parse_args(["synth"])
    assert synth_args.difficulty == Config().data.synth_difficulty
    root = generate_synthetic(tmp_path / "s", num_train_ids=2, num_test_ids=2, num_cameras=2, height=64, width=32)
    assert read_manifest(root)["params"]["difficulty"] == Config().data.synth_difficulty


def test_first_synthetic_generation_shows_progress(tmp_path, monkeypatch):
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term)
    generate_synthetic(tmp_path / "s", num_train_ids=2, num_test_ids=2, num_cameras=2, height=64, width=32)
    assert "generating the synthetic set" in term.text and "img/s" in term.text


def test_evaluation_shows_progress(tiny_synth, tmp_path, monkeypatch, capsys):
    from bireid.engine.trainer import train

    train(tiny_config(tiny_synth, tmp_path / "run", **{"train.epochs": 1}))
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term)
    assert main(["eval", "--checkpoint", str(tmp_path / "run" / "model.safetensors"), "--progress"]) == 0
    assert "query" in term.text and "gallery" in term.text and "batch" in term.text
    capsys.readouterr()
    term.parts.clear()
    # the final evaluation of a training run (train.progress on)
    train(tiny_config(tiny_synth, tmp_path / "run2", **{"train.epochs": 1, "train.progress": True}))
    assert "gallery" in term.text


@pytest.mark.slow
def test_torchrun_reports_the_result_once(tiny_synth, tmp_path):
    cfg = tiny_config(tiny_synth, tmp_path / "ddp", **{"train.epochs": 1, "data.num_identities": 6})
    proc = torchrun_train(cfg, tmp_path / "ddp.yaml")
    finals = [line for line in proc.stdout.splitlines() if line.startswith("run folder:")]
    results = [line for line in proc.stdout.splitlines() if "mAP" in line and line.startswith("[")]
    assert len(finals) == 1 and len(results) == 1, proc.stdout
