"""Helpers shared by tests (importable as `helpers`: pytest puts tests/ on sys.path)."""


def tiny_config(root, out, **over):
    """A config that trains a width-8 ResNet-18 on 64x32 images in seconds."""
    from bireid.config import Config, set_key

    cfg = Config()
    for k, v in {"data.dataset": "synthetic", "data.root": str(root), "data.synth_train_ids": 6,
                 "data.synth_test_ids": 6, "data.height": 64, "data.width": 32, "data.num_identities": 3,
                 "data.num_instances": 2, "data.workers": 0, "data.test_batch_size": 32, "model.width": 8,
                 "train.epochs": 2, "train.output_dir": str(out), "train.progress": False,
                 "optim.warmup_epochs": 1, "optim.lr": 1e-3, **over}.items():
        set_key(cfg, k, v)
    return cfg


class FakeTerminal:
    """A stderr that says it is a terminal (tqdm draws progress bars only there) and keeps what is written."""

    def __init__(self):
        self.parts: list[str] = []

    def write(self, s):
        self.parts.append(s)
        return len(s)

    def flush(self):
        pass

    def isatty(self):
        return True

    @property
    def text(self) -> str:
        return "".join(self.parts)
