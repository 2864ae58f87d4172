"""Evaluating what is deployed and the folders users have: `bireid eval --model x.bnn` (+ --compare), `bireid
export --verify` on real images, query/gallery-only folders, what --dataset/--data-root name, and the data
folders a checkpoint stores (absolute now; relative ones of older checkpoints still found)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_config

from bireid.checkpoint import read_checkpoint, save_checkpoint
from bireid.cli import main
from bireid.config import Config, set_key
from bireid.deploy import FeatureExtractor
from bireid.engine.trainer import train
from bireid.evaluation import evaluate_features
from bireid.factory import create_model, model_kwargs
from bireid.runtime import BNNModel


@pytest.fixture(scope="module")
def run(tiny_synth, tmp_path_factory) -> Path:
    """A briefly trained 1-bit (Bi-Real) model on the tiny synthetic set, and its .bnn export."""
    out = tmp_path_factory.mktemp("run") / "bireal"
    train(tiny_config(tiny_synth, out, **{"model.method": "bireal", "train.epochs": 2, "model.width": 16}))
    assert main(["export", "--checkpoint", str(out / "model.safetensors"), "--out", str(out / "m.bnn")]) == 0
    return out


@pytest.fixture(scope="module")
def query_gallery(tiny_synth, tmp_path_factory) -> Path:
    """A Market-1501 folder with query/ and bounding_box_test/ only (what users evaluating have)."""
    root = tmp_path_factory.mktemp("qg") / "market-qg"
    for sub in ("query", "bounding_box_test"):
        shutil.copytree(tiny_synth / sub, root / sub)
    return root


def _json(capsys, argv) -> dict:
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _engine_metrics(bnn: Path, root: Path, flip: bool = False, metric: str = "euclidean") -> dict:
    """Reference: the extractor's features of every query/gallery file (parsed here from the file names),
    scored by the metrics code."""
    from bireid.data import build_dataset

    ds = build_dataset("market1501", root, eval_only=True)
    fx = FeatureExtractor(bnn)

    def feats(samples):
        batch = np.stack([fx.preprocess(s.path) for s in samples])
        f = fx.model.forward(batch)
        if flip:
            f = (f + fx.model.forward(np.ascontiguousarray(batch[..., ::-1]))) / 2
        return f, np.array([s.pid for s in samples]), np.array([s.camid for s in samples])

    (qf, qp, qc), (gf, gp, gc) = feats(ds.query), feats(ds.gallery)
    return evaluate_features(qf, qp, qc, gf, gp, gc, metric=metric).as_dict()


# ------------------------------------------------------------------------------------------------ eval --model
def test_eval_of_the_bnn_model_scores_the_engine_features(run, query_gallery, capsys):
    bnn, ck = run / "m.bnn", run / "model.safetensors"
    for flip, metric in ((False, "euclidean"), (True, "cosine")):
        argv = ["eval", "--model", str(bnn), "--dataset", "market1501", "--data-root", str(query_gallery),
                "--metric", metric, "--flip" if flip else "--no-flip", "--json"]
        got = _json(capsys, argv)
        ref = _engine_metrics(bnn, query_gallery, flip, metric)
        for key in ("rank1", "rank5", "mAP", "mINP"):
            assert got[key] == pytest.approx(ref[key], abs=1e-9), (key, flip, metric)
    # the same defaults as the checkpoint: evaluated on the checkpoint's set (stored in the .bnn by export)
    stored = _json(capsys, ["eval", "--model", str(bnn), "--json"])
    torch_res = _json(capsys, ["eval", "--checkpoint", str(ck), "--json"])
    assert stored["num_query"] == torch_res["num_query"] and stored["num_gallery"] == torch_res["num_gallery"]
    assert stored["mAP"] == pytest.approx(torch_res["mAP"], abs=0.02)


def test_eval_compare_prints_both_side_by_side(run, capsys):
    bnn, ck = run / "m.bnn", run / "model.safetensors"
    assert main(["eval", "--model", str(bnn), "--compare", str(ck), "--rerank"]) == 0
    out = capsys.readouterr().out
    assert ".bnn (engine)" in out and "checkpoint (PyTorch)" in out and "re-ranking on" in out
    row = next(line for line in out.splitlines() if line.startswith("mAP"))
    a, b, diff = row.split()[1:]
    assert abs(float(a.rstrip("%")) - float(b.rstrip("%")) - float(diff)) < 0.011
    res = _json(capsys, ["eval", "--model", str(bnn), "--compare", str(ck), "--json"])
    assert set(res) == {".bnn", "checkpoint"} and abs(res[".bnn"]["mAP"] - res["checkpoint"]["mAP"]) < 0.02
    assert main(["eval", "--checkpoint", str(ck), "--compare", str(ck)]) == 2  # --compare needs --model


# ------------------------------------------------------------------------------------------------ users' folders
def _checkpoint(path: Path, **keys) -> Path:
    """An (untrained) Bi-Real checkpoint whose stored config has ``keys``."""
    cfg = Config()
    for k, v in {"model.method": "bireal", "model.width": 8, "data.height": 64, "data.width": 32,
                 "data.workers": 0, "train.progress": False, **keys}.items():
        set_key(cfg, k, v)
    model = create_model(**model_kwargs(cfg, 6))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model.state_dict(), {"config": cfg.to_dict(), "num_classes": 6})
    return path


def test_eval_on_a_query_gallery_only_folder(query_gallery, tmp_path, capsys):
    ck = _checkpoint(tmp_path / "ck.safetensors")
    res = _json(capsys, ["eval", "--checkpoint", str(ck), "--dataset", "market1501", "--data-root",
                         str(query_gallery), "--json"])
    assert res["num_query"] == len(list((query_gallery / "query").iterdir()))


def test_eval_needs_only_the_evaluated_set(query_gallery, tmp_path, capsys):
    """Trained on MARS (folder gone), evaluated on Market-1501: eval reads the Market folder only, and
    --data-root alone names the folder of the set that is evaluated (market1501), not of the training set."""
    ck = _checkpoint(tmp_path / "ck.safetensors", **{"data.dataset": "mars", "data.root": str(tmp_path / "gone"),
                                                     "data.eval_dataset": "market1501",
                                                     "data.eval_root": str(tmp_path / "also-gone")})
    res = _json(capsys, ["eval", "--checkpoint", str(ck), "--data-root", str(query_gallery), "--json"])
    assert res["num_query"] == len(list((query_gallery / "query").iterdir()))
    stored = tmp_path / "market"
    shutil.copytree(query_gallery, stored)
    ck2 = _checkpoint(tmp_path / "ck2.safetensors", **{"data.dataset": "mars", "data.root": str(tmp_path / "gone"),
                                                       "data.eval_dataset": "market1501",
                                                       "data.eval_root": str(stored)})
    assert _json(capsys, ["eval", "--checkpoint", str(ck2), "--json"])["num_query"] == res["num_query"]


def test_checkpoints_store_absolute_data_paths(tiny_synth, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    shutil.copytree(tiny_synth, work / "data" / "synthetic")
    monkeypatch.chdir(work)
    train(tiny_config("data/synthetic", "runs/r", **{"train.epochs": 1}))
    capsys.readouterr()
    _, meta, _ = read_checkpoint(work / "runs" / "r" / "model.safetensors")
    assert meta["config"]["data"]["root"] == str(work / "data" / "synthetic")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = _json(capsys, ["eval", "--checkpoint", str(work / "runs" / "r" / "model.safetensors"), "--json"])
    assert res["num_query"] > 0
    assert not (elsewhere / "data").exists(), "nothing is generated here: the stored folder was used"


def test_old_checkpoints_with_relative_paths_still_load(query_gallery, tmp_path, monkeypatch, capsys):
    """A checkpoint of an older bireid: data folder relative to where training ran (tmp/proj), read from
    elsewhere: found from the folder training ran in, with a warning saying so."""
    proj = tmp_path / "proj"
    shutil.copytree(query_gallery, proj / "data" / "market")
    ck = _checkpoint(proj / "runs" / "x" / "model.safetensors",
                     **{"data.dataset": "market1501", "data.root": "data/market", "train.output_dir": "runs/x"})
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--checkpoint", str(ck), "--json"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out)["num_query"] > 0
    assert "relative to the folder training ran in" in cap.err and str(proj / "data" / "market") in cap.err
    # still resolved from the current folder first, as before
    monkeypatch.chdir(proj)
    assert main(["eval", "--checkpoint", str(ck), "--json"]) == 0
    assert "relative" not in capsys.readouterr().err
    # found nowhere: a clear message, then the parser's error naming the folder
    monkeypatch.chdir(tmp_path)
    shutil.rmtree(proj / "data")
    assert main(["eval", "--checkpoint", str(ck)]) == 2
    err = capsys.readouterr().err
    assert "pass --data-root" in err and "data/market" in err


# ------------------------------------------------------------------------------------------------ export --verify
def test_export_verify_uses_real_images_and_reports_retrieval_agreement(run, query_gallery, tmp_path, capsys):
    ck = run / "model.safetensors"
    assert main(["export", "--checkpoint", str(ck), "--out", str(tmp_path / "a.bnn"), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "query/gallery images of synthetic" in out
    assert "feature cosine similarity min" in out and "top-5 neighbour overlap 100.0%" in out
    assert main(["export", "--checkpoint", str(ck), "--out", str(tmp_path / "b.bnn"), "--verify",
                 "--verify-images", str(query_gallery)]) == 0
    assert "images of --verify-images" in capsys.readouterr().out
    gone = _checkpoint(tmp_path / "gone.safetensors", **{"data.dataset": "market1501",
                                                          "data.root": str(tmp_path / "nowhere")})
    main(["export", "--checkpoint", str(gone), "--out", str(tmp_path / "c.bnn"), "--verify"])
    assert "RANDOM images" in capsys.readouterr().out


def test_export_verify_tolerates_a_flipped_sign_and_never_skips_outputs(run, tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnx")
    ck = run / "model.safetensors"
    real = BNNModel.forward

    def one_near_threshold_flip(self, x, *a, **kw):  # what one sign flipped near a threshold does to a feature
        f = real(self, x, *a, **kw)
        f[0] += 3e-3 * np.abs(f).max() * np.sign(f[0])
        return f

    monkeypatch.setattr(BNNModel, "forward", one_near_threshold_flip)
    assert main(["export", "--checkpoint", str(ck), "--out", str(tmp_path / "a.bnn"), "--verify"]) == 0
    assert "max relative difference 3.0" in capsys.readouterr().out

    def scrambled(self, x, *a, **kw):  # a broken export: features that do not belong to their images
        return np.roll(real(self, x, *a, **kw), 1, axis=0)

    monkeypatch.setattr(BNNModel, "forward", scrambled)
    onnx_out = tmp_path / "b.onnx"
    rc = main(["export", "--checkpoint", str(ck), "--out", str(tmp_path / "b.bnn"), "--verify", "--onnx",
               str(onnx_out)])
    cap = capsys.readouterr()
    assert rc == 3 and onnx_out.is_file() and (tmp_path / "b.bnn").is_file()
    assert "does not reproduce" in cap.err and "cosine <" in cap.err
