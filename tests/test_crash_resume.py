"""A training run killed with SIGKILL mid-epoch resumes from its last checkpoint and finishes as if never killed.

The kill is placed, not timed: the run kills itself from the trainer's ``on_step`` hook after step 2 of the 3
steps of epoch 2, so the epoch-1 checkpoint exists and epoch 2 is certainly under way. Every child process has
a deadline; one that passes it is killed and the test fails saying which.
"""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from helpers import tiny_config

from bireid.checkpoint import read_checkpoint
from bireid.engine.trainer import train

KILL_AT = (1, 1)  # (epoch, step), 0-based: after step 2 of epoch 2
CRASHING_RUN = """
import os, signal, sys
from bireid.config import load_yaml
from bireid.engine.trainer import train

def crash(epoch, step):
    if (epoch, step) == ({0}, {1}):
        print(f"killed after step {{step + 1}} of epoch {{epoch + 1}}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

train(load_yaml(sys.argv[1]), on_step=crash)
"""


def _run(cmd: list[str], what: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:  # run() has killed the child
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"{what} did not finish within {timeout:.0f} s (killed); its output ended with:\n{out[-2000:]}")


def test_sigkill_mid_epoch_then_resume(tiny_synth, tmp_path):
    over = {"train.epochs": 4, "data.num_identities": 2, "data.num_instances": 2}  # 6 ids / P=2: 3 steps an epoch
    cli = [sys.executable, "-m", "bireid", "train", "--config"]
    tiny_config(tiny_synth, tmp_path / "run", **over).save(tmp_path / "run.yaml")
    out, ckpt = tmp_path / "run", tmp_path / "run" / "last.safetensors"

    script = tmp_path / "crashing_run.py"
    script.write_text(CRASHING_RUN.format(*KILL_AT))
    res = _run([sys.executable, str(script), str(tmp_path / "run.yaml")], "the run to be killed")
    assert res.returncode == -signal.SIGKILL, f"rc {res.returncode}: {res.stdout[-2000:]}{res.stderr[-2000:]}"
    assert "killed after step 2 of epoch 2" in res.stdout
    _, meta, _ = read_checkpoint(ckpt)  # the checkpoint that survived is complete and readable
    assert meta["epoch"] == 1
    assert [json.loads(x)["epoch"] for x in (out / "log.jsonl").read_text().splitlines()] == [1]
    assert not (out / "model.safetensors").exists()

    res = _run(cli + [str(tmp_path / "run.yaml"), "--resume"], "the resumed run")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert f"resumed from {ckpt} at epoch 1/4" in res.stdout
    hist = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]  # the curve continues; nothing restarted at epoch 1

    # The lost half epoch left no trace: the final weights are those of a run that was never killed.
    train(tiny_config(tiny_synth, tmp_path / "ref", **over))
    got, meta, _ = read_checkpoint(out / "model.safetensors")
    ref, _, _ = read_checkpoint(tmp_path / "ref" / "model.safetensors")
    assert meta["epoch"] == 4 and got.keys() == ref.keys()
    for k in ref:
        assert torch.equal(got[k], ref[k]), k
