"""A training run killed with SIGKILL mid-epoch resumes from its last checkpoint and finishes normally."""

import json
import os
import signal
import subprocess
import sys
import time

from helpers import tiny_config

from bireid.checkpoint import read_checkpoint


def test_sigkill_mid_epoch_then_resume(tiny_synth, tmp_path):
    out = tmp_path / "run"
    cfg = tiny_config(tiny_synth, out, **{"train.epochs": 4, "data.num_identities": 2, "data.num_instances": 2})
    cfg_path = tmp_path / "c.yaml"
    cfg.save(cfg_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "bireid", "train", "--config", str(cfg_path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ckpt = out / "last.safetensors"
    deadline = time.time() + 240
    # Wait for the first epoch's checkpoint, then for the second epoch to be under way, and kill.
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and (out / "log.jsonl").exists():
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed: " + proc.stdout.read()[-2000:]
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _, meta, _ = read_checkpoint(ckpt)  # the checkpoint that survived is complete and readable
    done = int(meta["epoch"])
    assert 1 <= done < 4

    res = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert f"resumed from {ckpt} at epoch {done}/4" in res.stdout
    hist = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]  # the curve continues; nothing restarted at epoch 1
    _, meta, _ = read_checkpoint(out / "model.safetensors")
    assert meta["epoch"] == 4
