"""The classification tasks as tasks: config defaults, the model families (shapes, published sizes), metrics, training
steps that lower the loss, the shared trainer end to end (run folder, resume, reload), export equality, ablate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from task_fixtures import tiny_task_config, write_image_folders, write_modelnet

from bireid.checkpoint import read_checkpoint
from bireid.complexity import count_complexity
from bireid.config import ConfigError, set_key
from bireid.distributed import DistInfo
from bireid.engine.setup import build_parts
from bireid.engine.step import train_step
from bireid.engine.trainer import train
from bireid.evaluation import class_accuracy, classification_metrics, topk_correct
from bireid.factory import check_model_config, create_model, load_model, model_kwargs
from bireid.methods import get_method
from bireid.nn import BinaryConv2d, GlobalMaxPool
from bireid.tasks import get_task, new_config


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    return write_image_folders(tmp_path_factory.mktemp("img"), n_train=8, n_test=4)


@pytest.fixture(scope="module")
def cloud_root(tmp_path_factory):
    return write_modelnet(tmp_path_factory.mktemp("pts"), n_train=8, n_test=4, n_points=48)


def roots(image_root, cloud_root):
    return {"classification": image_root, "pointcloud": cloud_root}


# ------------------------------------------------------------------------------------------------ config
def test_task_defaults_come_before_the_users_settings(tmp_path):
    from bireid.cli import build_parser
    from bireid.config import config_from_args
    from bireid.tasks import task_defaults

    parse = build_parser().parse_args
    cfg = config_from_args(parse(["train", "--task", "classification", "--arch", "resnet18"]), task_defaults)
    assert (cfg.task.name, cfg.model.arch, cfg.model.stem, cfg.data.height, cfg.data.pad) == \
        ("classification", "resnet18", "cifar", 32, 4)
    (tmp_path / "c.yaml").write_text("task: {name: pointcloud}\ndata: {num_points: 256}\n")
    cfg = config_from_args(parse(["train", "--config", str(tmp_path / "c.yaml"), "--set", "model.dropout=0.1"]),
                           task_defaults)
    assert (cfg.model.arch, cfg.data.num_points, cfg.model.dropout, cfg.gal.fr_grid) == ("pointnet", 256, 0.1, [1, 1])
    reid = config_from_args(parse(["train"]), task_defaults)
    assert (reid.task.name, reid.model.arch, reid.data.height) == ("reid", "resnet18", 128)
    with pytest.raises(ConfigError, match="unknown task 'clasification' .*did you mean 'classification'"):
        config_from_args(parse(["train", "--task", "clasification"]), task_defaults)


def test_an_architecture_outside_the_tasks_family_is_refused():
    cfg = new_config("pointcloud")
    set_key(cfg, "model.arch", "resnet20")
    with pytest.raises(ConfigError, match="'resnet20' is not a pointcloud architecture; --task pointcloud takes "
                                          "pointnet"):
        check_model_config(cfg)


# ------------------------------------------------------------------------------------------------ models
@pytest.mark.parametrize("method", ["real", "bireid"])
def test_cifar_resnets_shapes(method):
    m = create_model("resnet20", 10, method, task="classification", stem="cifar", last_stride=2).train()
    out = m(torch.randn(2, 3, 32, 32))
    assert out["logits"].shape == (2, 10)
    assert [tuple(s.shape[1:]) for s in out["stages"]] == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
    r18 = create_model("resnet18", 10, method, task="classification", stem="cifar", last_stride=2).eval()
    assert r18(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert [tuple(s.shape[1:]) for s in r18.backbone(torch.randn(1, 3, 32, 32))][-1] == (512, 4, 4)
    binary = [n for n, mod in m.named_modules() if isinstance(mod, BinaryConv2d)]
    assert len(binary) == (18 if method == "bireid" else 0)  # every 3x3 conv of the 9 blocks; stem and FC real


def test_resnet20_and_pointnet_sizes_match_the_papers():
    # ResNet-20 (He et al. 2016, Table 6): 0.27M parameters; its convs with parameter-free (option A) shortcuts are
    # the 40.55M MACs the pruning literature quotes: stem 3*16*9*32^2 + 6 * 16*16*9*32^2 + (16*32 + 5 * 32*32)*9*16^2
    # + (32*64 + 5 * 64*64)*9*8^2 = 40,550,400; + the FC (640) + our two 1x1 projection shortcuts (2 x 131,072).
    r20 = create_model("resnet20", 10, "real", task="classification", stem="cifar", last_stride=2)
    rep = count_complexity(r20, (32, 32))
    assert rep.float_flops == 40_550_400 + 640 + 2 * 131_072
    assert round(sum(p.numel() for p in r20.parameters()) / 1e6, 2) == 0.27
    # PointNet without T-Nets (Qi et al. 2017, Table 6, "vanilla"): 0.8M parameters, 148M FLOPs per 1,000 points
    # (40 classes).
    pn = create_model("pointnet", 40, "real", task="pointcloud", num_points=1000)
    rep = count_complexity(pn, (1000, 1))
    assert round(rep.float_flops / 1e6) == 148 and round(sum(p.numel() for p in pn.parameters()) / 1e6, 1) == 0.8


@pytest.mark.parametrize("method", ["real", "bireid", "xnor"])
def test_pointnet_shapes_and_binary_layers(method):
    m = create_model("pointnet", 5, method, task="pointcloud", num_points=40, width=16).train()
    out = m(torch.randn(3, 3, 40, 1))
    assert out["logits"].shape == (3, 5)
    assert [tuple(s.shape[1:]) for s in out["stages"]] == [(16, 40, 1), (32, 40, 1), (256, 1, 1), (64, 1, 1)]
    binary = [mod for mod in m.modules() if isinstance(mod, BinaryConv2d)]
    assert len(binary) == (0 if method == "real" else 6) and all(b.kernel_size == (1, 1) for b in binary)
    assert not isinstance(m.backbone.stem[0], BinaryConv2d)
    pool = next(mod for mod in m.modules() if isinstance(mod, GlobalMaxPool))
    # EMA-max: Phi(delta)^40 = 1/2, checked with erf (Phi(x) = (1 + erf(x / sqrt 2)) / 2)
    assert (0.5 * (1 + math.erf(pool.shift / math.sqrt(2)))) ** 40 == pytest.approx(0.5, abs=1e-9)
    # Permutation invariance: shuffling the points leaves the logits unchanged.
    m.eval()
    x = torch.randn(2, 3, 40, 1)
    assert torch.allclose(m(x), m(x[:, :, torch.randperm(40)]), atol=1e-5)


# ------------------------------------------------------------------------------------------------ metrics
def test_topk_and_class_accuracy_by_hand():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.3], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = torch.tensor([1, 2, 0, 0])  # top-1 right: rows 0, 3; top-2 right: rows 0, 1, 3
    assert topk_correct(logits, labels, (1, 2, 5)) == {1: 2, 2: 3, 5: 4}
    pred = np.array([1, 0, 2, 0])
    assert class_accuracy(pred, labels.numpy()) == pytest.approx((1 + 0 + 0.5) / 3)
    m = classification_metrics(logits, labels)
    assert (m["top1"], m["top5"], m["num_samples"]) == (0.5, 1.0, 4)


# ------------------------------------------------------------------------------------------------ training
@pytest.mark.parametrize("task", ["classification", "pointcloud"])
def test_training_steps_lower_the_loss(task, image_root, cloud_root, tmp_path):
    torch.manual_seed(0)
    cfg = tiny_task_config(task, roots(image_root, cloud_root)[task], tmp_path, **{"model.method": "bireid"})
    train_ds, _ = get_task(task).build_datasets(cfg)
    parts = build_parts(cfg, train_ds, torch.device("cpu"), DistInfo())
    assert [type(a).__name__ for a in parts.aux_losses] == ["KernelRefinement", "FeatureRefinement"]
    images, targets, *_ = next(iter(parts.loader))
    parts.model.train()

    def ce() -> float:
        with torch.no_grad():
            return float(nn.functional.cross_entropy(parts.model(images)["logits"], targets))

    before = ce()
    logs = [train_step(parts, images, targets, cfg, 0, s) for s in range(3)]
    assert {"ce", "kr_mse", "fr_mse", "kr_d_loss", "fr_d_loss"} <= set(logs[0])
    assert ce() < before


@pytest.mark.parametrize("task,method", [("classification", "bireid"), ("pointcloud", "bireal")])
def test_trainer_end_to_end_resume_and_reload(task, method, image_root, cloud_root, tmp_path):
    root = roots(image_root, cloud_root)[task]
    full = train(tiny_task_config(task, root, tmp_path / "a", **{"model.method": method}))
    for name in ("config.yaml", "log.jsonl", "curves.png", "last.safetensors", "model.safetensors", "results.json"):
        assert (tmp_path / "a" / name).exists(), name
    res = json.loads((tmp_path / "a" / "results.json").read_text())
    assert res["num_samples"] == 12 and 0 <= res["top1"] <= 1 and res["top5"] == 1.0  # 3 classes: top-5 = all
    assert "top1" in json.loads((tmp_path / "a" / "log.jsonl").read_text().splitlines()[-1])
    part = tiny_task_config(task, root, tmp_path / "b", **{"model.method": method})
    assert train(part, stop_after_epochs=1)["stopped_at_epoch"] == 1
    part.train.resume = True
    resumed = train(part)
    assert [r["loss"] for r in resumed["history"]] == pytest.approx([r["loss"] for r in full["history"]], rel=1e-6)
    a, _, _ = read_checkpoint(tmp_path / "a" / "model.safetensors")
    b, _, _ = read_checkpoint(tmp_path / "b" / "model.safetensors")
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    model, cfg = load_model(tmp_path / "a" / "model.safetensors")
    assert cfg.task.name == task and type(model).__name__ == "Classifier"
    other = tiny_task_config("classification" if task == "pointcloud" else "pointcloud",
                             roots(image_root, cloud_root)["classification" if task == "pointcloud" else "pointcloud"],
                             tmp_path / "a")
    other.train.resume = True
    with pytest.raises(Exception, match="was trained for --task"):
        train(other)


# ------------------------------------------------------------------------------------------------ export
@pytest.mark.parametrize("task,arch,shape", [("classification", "resnet20", (3, 32, 32)),
                                             ("pointcloud", "pointnet", (3, 64, 1))])
@pytest.mark.parametrize("method", ["bireid", "real"])
def test_export_runs_the_same_logits(task, arch, shape, method, tmp_path):
    from bireid.deploy.export import export_bnn
    from bireid.runtime import BNNModel

    torch.manual_seed(0)
    cfg = new_config(task)
    for k, v in {"model.method": method, "data.num_points": shape[1], "model.arch": arch}.items():
        set_key(cfg, k, v)
    model = create_model(**model_kwargs(cfg, 7))
    for m in model.modules():  # trained-looking BatchNorm statistics, so the folding is exercised
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    model.eval()
    x = torch.randn(6, *shape)
    with torch.no_grad():
        ref = model(x).numpy()
    mean, std = get_task(task).input_norm
    rt = BNNModel.load(export_bnn(model, tmp_path / "m.bnn", input_size=shape[1:], mean=mean, std=std))
    got = rt.forward(x.numpy())
    assert got.shape == (6, 7)
    assert np.abs(got - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())
    assert (got.argmax(1) == ref.argmax(1)).all()
    if method == "bireid":
        assert rt.meta["binary_convs"] == (18 if task == "classification" else 6)


# ------------------------------------------------------------------------------------------------ ablate
def test_ablate_table_for_a_classification_task(tmp_path):
    from bireid.commands import ablate

    def fake_train(cfg):
        score = {"real": 0.9}.get(cfg.model.method, 0.6) + 0.02 * cfg.gal.fr_gal + 0.01 * cfg.train.seed
        return {"top1": score, "top5": 0.99, "class_acc": score, "step_time": 0.2 if cfg.gal.kr_gal else 0.1}

    base = new_config("classification")
    res = ablate.run_ablation(base, ["real", "bireid-none", "bireid-fr", "bireid-kr"], [0, 1], tmp_path / "r",
                              train_fn=fake_train, log=lambda s: None)
    table = ablate.format_table(res, get_task("classification"))
    assert table.splitlines()[0].startswith("| variant | method | top-1 (%) | top-5 (%) | Δ top-1 vs bireid-none")
    row = next(line for line in table.splitlines() if line.startswith("| bireid-fr "))
    assert "| 62.50 ± 0.71 | 99.00 ± 0.00 | +2.00 ± 0.00 (2/2 seeds ahead) |" in row
    assert "2.00×" in next(line for line in table.splitlines() if line.startswith("| bireid-kr "))


def test_reactnet_distils_from_a_real_classifier(image_root, tmp_path):
    """A real classification model as ReActNet's teacher: its eval-mode output is already logits."""
    torch.manual_seed(0)
    teacher = create_model("resnet20", 3, "real", task="classification", stem="cifar", width=16).eval()
    cfg = tiny_task_config("classification", image_root, tmp_path, **{"model.method": "reactnet"})
    student = create_model(**model_kwargs(cfg, 3))
    (aux,) = get_method("reactnet").build_aux(student, cfg, 3, teacher=teacher)
    x = torch.randn(4, 3, 16, 16)
    student.train()
    out = student(x)
    kl = aux.generator_loss(student, x, out, torch.zeros(4, dtype=torch.long))["distill"]
    with torch.no_grad():
        t = teacher(x)
    ref = nn.functional.kl_div(out["logits"].log_softmax(1), t.log_softmax(1), reduction="batchmean", log_target=True)
    assert torch.allclose(kl, ref * cfg.loss.distill_weight, atol=1e-6)
