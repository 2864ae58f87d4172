"""bireid export: a trained checkpoint -> a torch-free ``.bnn`` model (and optionally ONNX)."""

from __future__ import annotations

import argparse

HELP = "export a checkpoint to the bit-packed .bnn runtime format (and ONNX)"
DESCRIPTION = """Export a trained model for deployment: the .bnn file runs with numpy and the compiled
XNOR-popcount engine only (bireid.runtime); BatchNorm and the binary scales are folded. The input size and
normalization are taken from the checkpoint's config and stored in the file, with the config itself (so that
`bireid eval --model x.bnn` evaluates on the data the checkpoint was evaluated on).

--verify compares the engine with PyTorch on real inputs: --verify-images DIR, else the query/gallery images
of the checkpoint's evaluation set (classification, point clouds and detection: samples of its test split; a
synthetic scene set that is not there is generated into a temporary folder), else (only when neither exists, and
said so) random inputs. It reports the per-input cosine similarity of the two outputs and the agreement of what is
deployed: a detector's detections (bireid detect's decoding: the same number of boxes after NMS, within 1e-3
relative), else a small retrieval (each input's nearest neighbours among the others). It fails when an input's
cosine is below 0.99, or fewer than 90% of the inputs give the same detections, or the mean top-k overlap is below
90%: a wrong export scrambles outputs, while a near-threshold sign flip in a binary layer moves one output by
~1e-3 and changes neither. Every requested file is written first; a failed verification then
exits with status 3 (status 2: the export itself failed)."""

VERIFY_IMAGES = 64  # images compared (spread over the set)
MIN_COSINE = 0.99
MIN_OVERLAP = 0.9
TOPK = 5
EXIT_VERIFY_FAILED = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--checkpoint", required=True, help="model checkpoint (.safetensors) of a training run")
    p.add_argument("--out", required=True, help="output .bnn file")
    p.add_argument("--onnx", help="also write an ONNX file (float simulation of the binary layers)")
    p.add_argument("--verify", action="store_true", help="check the exported model against PyTorch on images")
    p.add_argument("--verify-images", metavar="DIR", help="folder of images for --verify (subfolders included; "
                   "default: the checkpoint's query/gallery images)")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from ..deploy.export import ExportError, export_bnn
    from ..errors import UserError
    from ..factory import load_model
    from ..images import list_images
    from ..tasks import get_task

    out = Path(args.out)
    for path, flag in ((out, "--out"), (Path(args.onnx) if args.onnx else None, "--onnx")):
        if path is None:
            continue
        if path.is_dir():
            raise UserError(f"{flag} {path} is a directory; give the file to write")
        for parent in path.parents:
            if parent.exists() and not parent.is_dir():
                raise UserError(f"{flag} {path}: {parent} is a file, not a folder")
    verify_paths = None
    if args.verify_images:
        verify_paths = list_images(args.verify_images, recursive=True)
        if not verify_paths:
            raise UserError(f"--verify-images {args.verify_images}: no images found")
    model, cfg = load_model(args.checkpoint, "cpu")
    task = get_task(cfg.task.name)
    _, h, w = task.input_shape(cfg)  # a point cloud of P points is a (3, P, 1) input
    size = (int(h), int(w))
    mean, std = task.input_norm
    extra = {"checkpoint": str(Path(args.checkpoint).resolve()), "config": cfg.to_dict()}
    try:
        path = export_bnn(model, args.out, input_size=size, mean=mean, std=std,
                          name=f"{cfg.model.arch}-{cfg.model.method}", extra=extra)
    except ExportError as e:
        raise UserError(f"cannot export {args.checkpoint}: {e}") from None
    except OSError as e:
        # e.g. a full disk: the atomic writer left any previous file at --out untouched.
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    from ..runtime import BNNModel

    rt = BNNModel.load(path)
    shape = rt.output_shape  # (D,) or a map (H, W, C), e.g. a detector's head
    output = f"{shape[0]}-d output" if len(shape) == 1 else f"{'x'.join(map(str, shape))} (HxWxC) output"
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB): input {size[0]}x{size[1]}, "
          f"{rt.meta['binary_convs']} binary convs, {output}")
    if args.onnx:
        from ..deploy.onnx_export import export_onnx

        print(f"wrote {export_onnx(model, args.onnx, size)}")
    if not args.verify:
        return 0
    batch, what = task_samples(cfg, task, args.checkpoint) if verify_paths is None else (None, "")
    if batch is not None:
        report = compare_outputs(model, rt, batch, task.outputs_agree)
    else:
        images, what = verification_images(cfg, args.checkpoint, verify_paths)
        report = verify_export(model, rt, images, task.outputs_agree)
    print(f"verify: {report.summary()}; compared on {what}")
    if not report.ok:
        print(f"bireid export: error: the exported model does not reproduce PyTorch's outputs "
              f"({report.problem()}); the requested files were written", file=sys.stderr)
        return EXIT_VERIFY_FAILED
    return 0


def task_samples(cfg, task, checkpoint: str):
    """(A batch of up to VERIFY_IMAGES test samples through the task's test transform, a description) for a task
    with a test split (classification, point clouds, detection), else (None, ""). The checkpoint's evaluation set
    is read where it is; a generated one (synthetic scenes) that is not there is generated into a temporary folder;
    (None, "") when neither works."""
    import copy
    import tempfile

    import numpy as np
    import torch

    from ..data import DatasetError, build_eval_dataset, evaluated_set
    from ..images import ImageError
    from .eval import evaluation_set

    if task.test_input is None:
        return None, ""
    cfg = copy.deepcopy(cfg)  # both ways of reading the set write the folder read into the config
    name, root = evaluated_set(cfg, task.datasets)
    have = bool(root) and _exists(root, checkpoint, cfg)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if have:
                eval_ds, where = evaluation_set(cfg, checkpoint), ""
            else:
                cfg.data.eval_dataset, cfg.data.eval_root = name, tmp
                eval_ds, where = build_eval_dataset(cfg, task.datasets), f" (generated: '{root}' is not here)"
            split = eval_ds.test
            if len(split) < 2:
                return None, ""
            idx = np.linspace(0, len(split) - 1, min(VERIFY_IMAGES, len(split))).round().astype(int)
            transform = task.transform(cfg, False)
            batch = torch.stack([transform(task.test_input(eval_ds, int(i))) for i in idx]).numpy()
        except (DatasetError, ImageError, OSError) as e:
            if have:  # one that is not here (a parsed set, absent from the empty folder): the fallback says so
                print(f"verify: cannot read the checkpoint's data set ({e})")
            return None, ""
    return batch, f"{len(idx)} test samples of {eval_ds.name}{where}"


def compare_outputs(model, rt, batch, agree=None) -> VerifyReport:
    """PyTorch's and the engine's outputs for the same prepared inputs (``agree``: the task's ``outputs_agree``)."""
    import torch

    with torch.no_grad():
        ref = model(torch.from_numpy(batch)).numpy()
    return VerifyReport(ref, rt.forward(batch), TOPK, agree)


def verification_images(cfg, checkpoint: str, paths=None) -> tuple[list, str]:
    """Up to VERIFY_IMAGES images for --verify and a description: the given files, else the checkpoint's
    evaluation set when its folder exists, else random images (said so)."""
    import numpy as np

    from ..data import DatasetError, evaluated_set
    from .eval import evaluation_set

    def spread(items: list) -> list:
        if len(items) <= VERIFY_IMAGES:
            return list(items)
        return [items[i] for i in np.linspace(0, len(items) - 1, VERIFY_IMAGES).round().astype(int)]

    if paths:
        chosen = spread(paths)
        return chosen, f"{len(chosen)} images of --verify-images"
    name, root = evaluated_set(cfg)
    try:
        if root and _exists(root, checkpoint, cfg):
            ds = evaluation_set(cfg, checkpoint)
            chosen = spread([s.path for s in ds.query + ds.gallery])
            if len(chosen) >= 2:
                return chosen, f"{len(chosen)} query/gallery images of {ds.name} ({cfg.data.eval_root})"
    except DatasetError as e:
        print(f"verify: cannot read the checkpoint's evaluation set ({e})")
    rng = np.random.default_rng(0)
    h, w = cfg.data.height, cfg.data.width
    chosen = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(16)]
    return chosen, (f"16 RANDOM images (no real images: the checkpoint's evaluation set {name} at '{root}' is "
                    "not here; pass --verify-images DIR for a meaningful check)")


def _exists(root: str, checkpoint: str, cfg) -> bool:
    import warnings
    from pathlib import Path

    from .eval import locate_stored_root

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Path(locate_stored_root(root, checkpoint, cfg.train.output_dir)).exists()


class VerifyReport:
    """PyTorch vs engine outputs of the same inputs: per-input cosine, and the agreement of what is deployed: the
    task's ``agree(ref, got)`` (a detector's detections), else a small retrieval (top-k neighbours among the
    inputs)."""

    def __init__(self, ref, got, topk: int, agree=None):
        import numpy as np

        self.rule, self.agreed = "", 0
        if agree is not None:
            same, self.rule = agree(ref, got)
            self.agreed = int(np.sum(same))
        ref, got = ref.reshape(len(ref), -1), got.reshape(len(got), -1)  # a detector's head maps, flattened
        a = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12)
        b = got / np.maximum(np.linalg.norm(got, axis=1, keepdims=True), 1e-12)
        self.cosine = (a * b).sum(1)
        self.topk = min(topk, len(ref) - 1)
        self.overlap = float("nan")
        if agree is not None:
            self.overlap = self.agreed / len(ref)
        elif self.topk >= 1:
            na, nb = _neighbours(a, self.topk), _neighbours(b, self.topk)
            self.overlap = float(np.mean([len(set(x) & set(y)) / self.topk for x, y in zip(na, nb)]))
        self.rel_diff = float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-12))

    @property
    def ok(self) -> bool:
        return bool(self.cosine.min() >= MIN_COSINE and not self.overlap < MIN_OVERLAP)

    def summary(self) -> str:
        rank = f"; top-{self.topk} neighbour overlap {100 * self.overlap:.1f}% (mean over images)" if self.topk else ""
        if self.rule:
            rank = f"; {self.rule} on {self.agreed}/{len(self.cosine)} inputs"
        return (f"max relative difference {self.rel_diff:.2e}; feature cosine similarity min "
                f"{self.cosine.min():.6f}, mean {self.cosine.mean():.6f}{rank}")

    def problem(self) -> str:
        bad = []
        if self.cosine.min() < MIN_COSINE:
            bad.append(f"{int((self.cosine < MIN_COSINE).sum())} image(s) with cosine < {MIN_COSINE}")
        if self.overlap < MIN_OVERLAP and self.rule:
            bad.append(f"{self.rule} on only {self.agreed}/{len(self.cosine)} inputs (< {100 * MIN_OVERLAP:.0f}%)")
        elif self.overlap < MIN_OVERLAP:
            bad.append(f"top-{self.topk} overlap {100 * self.overlap:.1f}% < {100 * MIN_OVERLAP:.0f}%")
        return "; ".join(bad)


def _neighbours(f, k: int):
    import numpy as np

    sim = f @ f.T
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def verify_export(model, rt, images: list, agree=None) -> VerifyReport:
    """Features of ``images`` (paths or arrays) from PyTorch and from the engine, on the same inputs."""
    import numpy as np

    from ..images import load_image, preprocess, rgb_from_array

    batch = np.stack([preprocess(load_image(x) if not isinstance(x, np.ndarray) else rgb_from_array(x),
                                 rt.input_size, rt.mean, rt.std) for x in images])
    return compare_outputs(model, rt, batch, agree)
