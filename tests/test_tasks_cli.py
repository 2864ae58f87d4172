"""The classification tasks through the real CLI: train, eval, export --verify, complexity, ablate, two-process DDP,
and bad input (exit code 2, one line naming the problem and the path or key, no traceback)."""

from __future__ import annotations

import json

import pytest
from helpers import torchrun_train
from task_fixtures import tiny_task_config, write_image_folders, write_modelnet

from bireid.cli import main

TINY = ["--workers", "0", "--data.batch_size", "6", "--data.test_batch_size", "16", "--epochs", "1",
        "--model.width", "16", "--set", "train.progress=false", "--set", "optim.warmup_epochs=0"]


def run_cli(capsys, argv):
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.out + cap.err, cap.out + cap.err
    return rc, cap.out, cap.err


def expect_error(capsys, argv, *needles):
    rc, out, err = run_cli(capsys, argv)
    assert rc == 2, out + err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"bireid {argv[0]}: error: ") and all(n in line for n in needles), line
    return line


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    return {"classification": write_image_folders(base / "img", n_train=4, n_test=2),
            "pointcloud": write_modelnet(base / "pts", n_train=4, n_test=2, n_points=40)}


@pytest.mark.parametrize("task,extra", [
    ("classification", ["--dataset", "folders", "--height", "16", "--width", "16", "--method", "bireid"]),
    ("pointcloud", ["--dataset", "modelnet", "--data.num_points", "32", "--method", "bireid"]),
])
def test_train_eval_export_verify(capsys, tmp_path, data, task, extra):
    run = tmp_path / "run"
    rc, out, _ = run_cli(capsys, ["train", "--task", task, "--data-root", data[task], "--output-dir", run,
                                  *TINY, *extra])
    assert rc == 0 and f"[{task} bireid" in out and "top-1" in out and "mean class accuracy" in out
    rc, out, _ = run_cli(capsys, ["eval", "--checkpoint", run / "model.safetensors", "--json"])
    res = json.loads(out)
    assert rc == 0 and res["num_samples"] == 6 and "top1" in res and "speedup" in res["complexity"]
    rc, out, _ = run_cli(capsys, ["export", "--checkpoint", run / "model.safetensors", "--out", tmp_path / "m.bnn",
                                  "--verify"])
    assert rc == 0 and "verify: max relative difference" in out and "test samples of" in out
    rc, out, _ = run_cli(capsys, ["eval", "--model", tmp_path / "m.bnn", "--compare", run / "model.safetensors"])
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("top-1", "top-5"))}
    assert rc == 0 and set(rows) == {"top-1", "top-5"} and "+0.00" in rows["top-1"], out
    # Evaluation reads the test split only: a folder without the training data is enough.
    import shutil

    test_only = tmp_path / "test_only"
    if task == "classification":
        shutil.copytree(data[task] / "test", test_only / "test")
    else:
        for c in data[task].iterdir():
            shutil.copytree(c / "test", test_only / c.name / "test")
    rc, out, _ = run_cli(capsys, ["eval", "--checkpoint", run / "model.safetensors", "--data-root", test_only,
                                  "--json"])
    assert rc == 0 and json.loads(out)["num_samples"] == 6


def test_complexity_per_task(capsys):
    rc, out, _ = run_cli(capsys, ["complexity", "--task", "pointcloud", "--method", "real", "--json"])
    d = json.loads(out)
    assert rc == 0 and d["model"]["task"] == "pointcloud" and d["totals"]["bops"] == 0
    assert d["input_size"] == [1024, 1] and d["totals"]["float_flops"] == 1024 * 147_648 + 657_920
    rc, out, _ = run_cli(capsys, ["complexity", "--task", "classification", "--json"])
    t = json.loads(out)["totals"]
    assert rc == 0 and t["binary_layers"] == 18 and t["speedup"] > 20


def test_bad_input_names_the_problem(capsys, tmp_path, data):
    img = ["train", "--task", "classification", *TINY, "--output-dir", tmp_path / "r"]
    expect_error(capsys, [*img, "--dataset", "market1501", "--data-root", data["classification"]],
                 "data.dataset", "unknown classification data set 'market1501'")
    expect_error(capsys, img, "--data-root is required for --dataset cifar10")
    expect_error(capsys, [*img, "--dataset", "folders", "--data-root", tmp_path / "nowhere"], "does not exist",
                 str(tmp_path / "nowhere"))
    expect_error(capsys, [*img, "--arch", "pointnet", "--dataset", "folders", "--data-root", data["classification"]],
                 "model.arch", "not a classification architecture")
    expect_error(capsys, ["train", "--task", "pointcloud", *TINY, "--data.point_scale", "[2, 1]",
                          "--data-root", data["pointcloud"]], "data.point_scale")
    expect_error(capsys, ["ablate", "--task", "pointcloud", "--dataset", "cifar10"],
                 "unknown point-cloud data set 'cifar10'")
    expect_error(capsys, ["ablate", "--task", "pointcloud"], "needs --data-root")
    assert not (tmp_path / "r" / "last.safetensors").exists()


@pytest.mark.slow
def test_two_process_gloo_classification(tmp_path, data):
    """Two CPU processes train on shards of each global batch and evaluate shards of the test split, gathered."""
    cfg = tiny_task_config("classification", data["classification"], tmp_path / "ddp", **{"train.epochs": 2})
    torchrun_train(cfg, tmp_path / "ddp.yaml")
    res = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert res["num_samples"] == res["num_test"] == 6  # both ranks' shards were gathered
    hist = [json.loads(x) for x in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [1, 2]


@pytest.mark.slow
def test_ablate_jobs_runs_trainings_as_processes(tmp_path, data):
    """--jobs 2: two `bireid train` processes at once, their results read back from the run folders."""
    from bireid.commands import ablate

    base = tiny_task_config("pointcloud", data["pointcloud"], tmp_path / "unused", **{"train.epochs": 1})
    res = ablate.run_ablation(base, ["real", "bireid-none"], [0], tmp_path / "runs", log=lambda s: None, jobs=2)
    assert sorted(res) == ["bireid-none", "real"] and all(0 <= r[0]["top1"] <= 1 for r in res.values())
    for v in res:
        assert (tmp_path / "runs" / v / "seed0" / "train.out").read_text().count("top-1") == 1
    again = ablate.run_ablation(base, ["real"], [0], tmp_path / "runs", log=lambda s: None, jobs=2)
    assert again["real"][0]["top1"] == res["real"][0]["top1"]  # a finished run is reused, not retrained
