"""Resuming runs with auxiliary losses: GAL discriminators with their own Adam, and a distillation teacher.

A run interrupted after epoch 1 and resumed must end bit for bit where the uninterrupted run ends: every tensor
of the final resumable checkpoint (model weights, model optimizer, discriminator weights and their Adam moments,
RNG states) and the logged losses. Resuming with another set of auxiliary losses than the checkpoint's is a
clear error naming the difference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_config

from bireid.checkpoint import CheckpointError, read_checkpoint
from bireid.engine.trainer import train

TIMES = ("epoch_time", "eval_time")


def _leaves(obj, prefix=""):
    """Every leaf of a nested checkpoint state, by path."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{prefix}/{i}")
    else:
        yield prefix, obj


def _assert_checkpoints_identical(a_path, b_path) -> int:
    """Every tensor and every other value of two resumable checkpoints is identical (wall times aside); returns
    the number of tensors compared."""
    a_model, a_meta, a_states = read_checkpoint(a_path)
    b_model, b_meta, b_states = read_checkpoint(b_path)
    a = dict(_leaves({"model": a_model, "states": a_states}))
    b = dict(_leaves({"model": b_model, "states": b_states}))
    assert a.keys() == b.keys()
    n = 0
    for k, va in a.items():
        vb = b[k]
        if isinstance(va, torch.Tensor):
            assert va.dtype == vb.dtype and va.shape == vb.shape and torch.equal(va, vb), k
            n += 1
        elif isinstance(va, np.ndarray):  # the NumPy RNG state
            assert va.dtype == vb.dtype and np.array_equal(va, vb), k
        else:
            assert type(va) is type(vb) and (va == vb or va != va), k  # va != va: a NaN in both
    strip = [{k: v for k, v in r.items() if k not in TIMES} for r in a_meta["history"]]
    assert strip == [{k: v for k, v in r.items() if k not in TIMES} for r in b_meta["history"]]
    return n


def _interrupted_equals_uninterrupted(tiny_synth, tmp_path, **over) -> dict:
    over = {"train.epochs": 3, **over}
    train(tiny_config(tiny_synth, tmp_path / "full", **over))
    part = tiny_config(tiny_synth, tmp_path / "part", **over)
    assert train(part, stop_after_epochs=1)["stopped_at_epoch"] == 1
    part.train.resume = True
    train(part)
    n = _assert_checkpoints_identical(tmp_path / "full" / "last.safetensors", tmp_path / "part" / "last.safetensors")
    assert n > 0
    _, _, states = read_checkpoint(tmp_path / "full" / "last.safetensors")
    return states


def test_gal_resume_is_bit_identical(tiny_synth, tmp_path):
    states = _interrupted_equals_uninterrupted(
        tiny_synth, tmp_path, **{"model.method": "bireid", "gal.kr_gal": True, "gal.fr_gal": True,
                                 "gal.disc_noise": 0.1})
    # The comparison covered both GALs' discriminators and their Adam moments, after steps in every epoch.
    kr, fr = states["aux"]
    for aux in (kr, fr):
        assert any(k.startswith("discs.") for k in aux)
        steps = [v for k, v in aux.items() if k.startswith("disc_optimizer.") and k.endswith(".step")]
        assert steps and all(float(s) == 3 * 2 for s in steps)  # 3 epochs x 2 steps
        assert any(k.endswith(".exp_avg_sq") for k in aux)


@pytest.fixture(scope="module")
def teacher(tiny_synth, tmp_path_factory):
    """A briefly trained real-valued teacher on the same training set."""
    out = tmp_path_factory.mktemp("teacher")
    train(tiny_config(tiny_synth, out, **{"train.epochs": 1}))
    return out / "model.safetensors"


def test_distillation_resume_is_bit_identical(tiny_synth, tmp_path, teacher):
    _interrupted_equals_uninterrupted(tiny_synth, tmp_path, **{"model.method": "reactnet",
                                                               "model.teacher": str(teacher)})


@pytest.mark.parametrize("change,names", [
    ({"gal.fr_gal": False}, ("FeatureRefinement", "not in this run")),
    ({"gal.kr_gal": False}, ("KernelRefinement", "not in this run")),
])
def test_resume_with_other_gal_losses_is_an_error(tiny_synth, tmp_path, change, names):
    over = {"model.method": "bireid", "train.epochs": 2}
    cfg = tiny_config(tiny_synth, tmp_path / "run", **over)
    train(cfg, stop_after_epochs=1)
    before = (tmp_path / "run" / "last.safetensors").read_bytes()
    cfg = tiny_config(tiny_synth, tmp_path / "run", **over, **change)
    cfg.train.resume = True
    with pytest.raises(CheckpointError, match="auxiliary losses") as e:
        train(cfg)
    for name in names:
        assert name in str(e.value)
    assert (tmp_path / "run" / "last.safetensors").read_bytes() == before


@pytest.mark.parametrize("first,then,names", [
    (False, True, ("DistillationLoss", "not in the checkpoint")),
    (True, False, ("DistillationLoss", "not in this run")),
])
def test_resume_with_teacher_added_or_removed_is_an_error(tiny_synth, tmp_path, teacher, first, then, names):
    def cfg_with(use_teacher: bool):
        return tiny_config(tiny_synth, tmp_path / "run", **{"model.method": "reactnet", "train.epochs": 2,
                                                            "model.teacher": str(teacher) if use_teacher else ""})

    train(cfg_with(first), stop_after_epochs=1)
    cfg = cfg_with(then)
    cfg.train.resume = True
    with pytest.raises(CheckpointError, match="auxiliary losses") as e:
        train(cfg)
    for name in names:
        assert name in str(e.value)


def test_resume_of_a_checkpoint_without_aux_names_checks_their_number(tiny_synth, tmp_path):
    """Checkpoints written before the losses' names were stored: a different number of states is refused."""
    from bireid.checkpoint import save_checkpoint

    over = {"model.method": "bireid", "train.epochs": 2}
    train(tiny_config(tiny_synth, tmp_path / "run", **over), stop_after_epochs=1)
    ckpt = tmp_path / "run" / "last.safetensors"
    state, meta, states = read_checkpoint(ckpt)
    del meta["aux_losses"]
    save_checkpoint(ckpt, state, meta, states)
    cfg = tiny_config(tiny_synth, tmp_path / "run", **over, **{"gal.fr_gal": False})
    cfg.train.resume = True
    with pytest.raises(CheckpointError, match="holds 2 auxiliary-loss states, this run builds 1"):
        train(cfg)
