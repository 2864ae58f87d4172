"""Shared fixtures: a tiny synthetic data set generated once per session by the project's own generator."""

import os

import pytest
import torch

# Tests are many small models: one thread each avoids oversubscribing the 2 CI cores.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """Root of a small synthetic Market-1501-format set (6 train ids, 6 test ids)."""
    from bireid.config import Config
    from bireid.data.synth import ensure_synthetic

    root = tmp_path_factory.mktemp("synth") / "synthetic"
    # The trainer asks for the config's difficulty; generating with it here lets every test reuse this set.
    ensure_synthetic(root, num_train_ids=6, num_test_ids=6, seed=0, difficulty=Config().data.synth_difficulty)
    return root
