"""Data-parallel training on two CPU processes (gloo): gradients are averaged over the ranks.

Under DDP each rank computes the loss on its own share of the global batch (BatchNorm statistics and
batch-hard mining per share) and the gradients are averaged. So after every step the ranks hold identical
weights, equal to one process that averages the per-share losses of the same global batch. Both facts fail
without the averaging: each rank would step with its own gradient (and a summed gradient doubles SGD's step).
"""

import json
import os
import subprocess
import sys
import textwrap

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import free_port, tiny_config
from torch.nn.parallel import DistributedDataParallel

from bireid import create_model
from bireid.data import build_dataset
from bireid.modeling.losses import batch_hard_triplet_loss, cross_entropy_label_smooth

WORLD = 2
STEPS = 3
METHODS = ("real", "bireid")  # a float model, and the binary one (sign + straight-through, learned alpha)


def _setup(method: str):
    """Identical model and optimizer on every rank, and the global batches: STEPS x (WORLD shares of P x K)."""
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=6, method=method, width=8)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(STEPS):
        images = torch.randn(WORLD * 4, 3, 64, 32, generator=gen)
        # each share holds 2 identities x 2 images, so batch-hard mining has positives and negatives
        pids = torch.randperm(6, generator=gen)[: WORLD * 2].repeat_interleave(2)
        batches.append((images, pids))
    return model, opt, batches


def _share_loss(model, images, pids, rank):
    share = slice(rank * 4, (rank + 1) * 4)
    out = model(images[share])
    tri, _ = batch_hard_triplet_loss(out["feat"], pids[share], 0.3)
    return cross_entropy_label_smooth(out["logits"], pids[share], 0.1) + tri


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _ddp_worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        record = {}
        for method in METHODS:
            model, opt, batches = _setup(method)
            ddp = DistributedDataParallel(model)
            record[method] = []
            for images, pids in batches:
                opt.zero_grad()
                _share_loss(ddp, images, pids, rank).backward()
                opt.step()
                record[method].append(_params(model))
        torch.save(record, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _single_process(method: str, shares=range(WORLD)) -> list[dict[str, torch.Tensor]]:
    """The same steps in one process: the mean of the per-share losses (``shares``) of each global batch."""
    model, opt, batches = _setup(method)
    out = []
    for images, pids in batches:
        opt.zero_grad()
        (sum(_share_loss(model, images, pids, r) for r in shares) / len(shares)).backward()
        opt.step()
        out.append(_params(model))
    return out


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_ddp_steps_average_gradients(tmp_path):
    torch.set_num_threads(1)
    mp.start_processes(_ddp_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, start_method="spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    tol = 1e-6  # measured: 0 (bit-identical) on this machine; room for another reduction order
    for method in METHODS:
        single = _single_process(method)
        for step in range(STEPS):
            for k, v in ranks[0][method][step].items():  # all-reduce leaves bit-identical gradients
                assert torch.equal(v, ranks[1][method][step][k]), (method, step, k)
            assert _max_diff(ranks[0][method][step], single[step]) < tol, (method, step)
        # The tolerance sees a missing average: stepping with one share's gradient, or with the sum, is far off.
        assert _max_diff(_single_process(method, shares=[0])[0], single[0]) > 100 * tol
        model, opt, batches = _setup(method)
        images, pids = batches[0]
        sum(_share_loss(model, images, pids, r) for r in range(WORLD)).backward()
        opt.step()
        assert _max_diff(_params(model), single[0]) > 100 * tol


# The public train() under torchrun; the script records each rank's DDP-wrapped model (a class-level hook, so it
# does not depend on where the trainer builds DDP) and saves its final weights.
_TRAIN_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import torch
    from torch.nn.parallel import DistributedDataParallel
    from bireid.config import load_yaml
    from bireid.engine.trainer import train

    wrapped = []
    _init = DistributedDataParallel.__init__

    def _recording_init(self, module, *args, **kw):
        _init(self, module, *args, **kw)
        wrapped.append(module)

    DistributedDataParallel.__init__ = _recording_init
    train(load_yaml(sys.argv[1]))
    assert len(wrapped) == 1, f"expected one DDP-wrapped model, got {len(wrapped)}"
    state = {k: v.detach() for k, v in wrapped[0].named_parameters()}
    torch.save(state, os.path.join(sys.argv[2], f"weights_rank{os.environ['RANK']}.pt"))
    """
)


def test_torchrun_train_keeps_ranks_identical(tiny_synth, tmp_path):
    out = tmp_path / "ddp"
    cfg = tiny_config(tiny_synth, out, **{"data.num_identities": 6, "data.num_instances": 4, "train.epochs": 2,
                                          "optim.warmup_epochs": 0})
    cfg_path, script = tmp_path / "ddp.yaml", tmp_path / "train_ddp.py"
    cfg.save(cfg_path)
    script.write_text(_TRAIN_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD), "--master_addr",
           "127.0.0.1", "--master_port", str(free_port()), str(script), str(cfg_path), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # Each rank trained on its own shard of every batch; only the averaged gradients keep them equal.
    w0, w1 = (torch.load(tmp_path / f"weights_rank{r}.pt") for r in range(WORLD))
    for k, v in w0.items():
        assert torch.equal(v, w1[k]), k
    hist = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [1, 2]  # one log, written by rank 0 only
    res = json.loads((out / "results.json").read_text())
    # Evaluation features were gathered from both ranks: every query and gallery image was scored.
    test_set = build_dataset("market1501", tiny_synth)  # the synthetic set is in Market-1501's layout
    assert (res["num_query"], res["num_gallery"]) == (len(test_set.query), len(test_set.gallery))
    # Stray files would mean a second rank wrote too.
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "curves.png", "last.safetensors",
                                                     "log.jsonl", "model.safetensors", "results.json"]
