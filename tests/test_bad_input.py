"""Bad input, tried on purpose: the real CLI (``bireid.cli.main``) driven over broken data folders, broken
images, unwritable outputs, wrong values, broken checkpoints, existing runs and broken ``.bnn`` files.

Every case checks the exit code (2 for an error the user can fix), that the one-line message names the
problem AND the offending path or key, that no Python traceback is printed, and that nothing written before
(a previous run, a previous export, the user's files) is changed.

Set ``BIREID_BAD_INPUT_LOG=file.jsonl`` to record what each case printed (docs/bad-input.md is built from it).
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bireid.cli import main

TINY = ["--height", "64", "--width", "32", "--model.width", "8", "--epochs", "1", "--workers", "0",
        "--data.num_identities", "3", "--data.num_instances", "2", "--set", "train.progress=false"]
SYNTH = ["--data.synth_train_ids", "6", "--data.synth_test_ids", "6"]


# ------------------------------------------------------------------------------------------------ helpers
def _note(case: str, rc: int, text: str, tmp: Path, *extra_paths: Path) -> None:
    """Append what a case printed to $BIREID_BAD_INPUT_LOG (paths shortened) for the docs table."""
    log = os.environ.get("BIREID_BAD_INPUT_LOG")
    if not log:
        return
    for p, label in [(tmp, "<tmp>"), *((p, "<synth>") for p in extra_paths)]:
        text = text.replace(str(p), label)
    text = re.sub(r"/\S*/pytest-\d+/[^/\s]+", "<tmp>", text)  # folders of module-scoped fixtures
    with open(log, "a") as f:
        f.write(json.dumps({"case": case, "rc": rc, "message": text.strip()}) + "\n")


def run_cli(capsys, argv: list) -> tuple[int, str, str]:
    """Run ``bireid ARGV`` in this process; return (exit code, stdout, stderr), asserting no traceback."""
    capsys.readouterr()  # drop anything printed before
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    assert "Traceback" not in cap.out + cap.err, cap.out + cap.err
    return rc, cap.out, cap.err


def expect_error(capsys, argv: list, *needles: str, case: str, tmp: Path, synth: Path | None = None) -> str:
    """The command must exit 2 with ``bireid CMD: error: ...`` containing every needle; returns the message."""
    rc, out, err = run_cli(capsys, argv)
    head = f"bireid {argv[0]}: error: "
    assert rc == 2, f"exit code {rc}\nstdout: {out}\nstderr: {err}"
    assert head in err, err
    msg = err.split(head, 1)[1].strip()
    for n in needles:
        assert str(n) in msg, f"{n!r} not in the message: {msg}"
    _note(case, rc, head + msg, tmp, *([synth] if synth else []))
    return msg


def digest(folder: Path) -> dict[str, tuple[str, int]]:
    """{relative path: (sha256, mtime_ns)} of every file under ``folder``."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def train_args(root: Path, out: Path, *extra: str, dataset: str = "market1501") -> list:
    args = ["train", *TINY, "--dataset", dataset, "--data-root", root, "--output-dir", out, *extra]
    return args + SYNTH if dataset == "synthetic" else args


@pytest.fixture(autouse=True)
def _cwd(tmp_path, monkeypatch):
    # Nothing a failing case might write (runs/train, runs/_data) may land in the repository.
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def market_copy(tiny_synth, tmp_path):
    """Factory: a Market-1501-layout copy of the tiny synthetic set with 2 training images per identity, so
    that with P=3, K=2 every training image is read in epoch 1 (6 ids -> 2 batches of 3 ids x 2 images).

    It is parsed as ``market1501`` (not ``synthetic``, which would regenerate a tampered set)."""

    def make(name: str = "data") -> Path:
        root = tmp_path / name
        shutil.copytree(tiny_synth, root)
        (root / "synth.json").unlink()
        seen: collections.Counter = collections.Counter()
        for f in sorted((root / "bounding_box_train").iterdir()):
            seen[f.name[:4]] += 1
            if seen[f.name[:4]] > 2:
                f.unlink()
        return root

    return make


def train_images(root: Path) -> list[Path]:
    return sorted((root / "bounding_box_train").iterdir())


@pytest.fixture(scope="module")
def good_run(tiny_synth, tmp_path_factory):
    """A finished tiny run (real ResNet-18, width 8) on the synthetic set: model/last checkpoints etc."""
    out = tmp_path_factory.mktemp("good") / "run"
    rc = main([str(a) for a in train_args(tiny_synth, out, dataset="synthetic")])
    assert rc == 0 and (out / "model.safetensors").is_file()
    return out


# ------------------------------------------------------------------------------------------------ data folders
def test_empty_data_folder(capsys, tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    expect_error(capsys, train_args(root, tmp_path / "out"), "missing folder", str(root / "bounding_box_train"),
                 case="market1501: empty data folder", tmp=tmp_path)


def test_missing_data_folder(capsys, tmp_path):
    root = tmp_path / "nowhere"
    expect_error(capsys, train_args(root, tmp_path / "out"), "does not exist", str(root),
                 case="market1501: data folder does not exist", tmp=tmp_path)
    assert not root.exists()


@pytest.mark.parametrize("dataset", ["market1501", "synthetic"])
def test_data_root_is_a_file(capsys, tmp_path, dataset):
    root = tmp_path / "data.zip"
    root.write_bytes(b"PK\x03\x04 not a folder")
    expect_error(capsys, train_args(root, tmp_path / "out", dataset=dataset), str(root), "not a folder"
                 if dataset == "synthetic" else "is a file", case=f"{dataset}: data root is a file", tmp=tmp_path)
    assert root.read_bytes() == b"PK\x03\x04 not a folder"  # the synthetic generator must not replace it


def test_unparsable_file_name(capsys, tmp_path, market_copy):
    root = market_copy()
    bad = root / "bounding_box_train" / "holiday_photo.jpg"
    shutil.copy(train_images(root)[0], bad)
    expect_error(capsys, train_args(root, tmp_path / "out"), "cannot parse pid and camera", str(bad),
                 case="market1501: file name that does not parse (holiday_photo.jpg)", tmp=tmp_path)


def test_missing_query_folder(capsys, tmp_path, market_copy):
    root = market_copy()
    shutil.rmtree(root / "query")
    expect_error(capsys, train_args(root, tmp_path / "out"), "missing folder", str(root / "query"),
                 case="market1501: no query folder", tmp=tmp_path)


def test_training_folder_without_images(capsys, tmp_path, market_copy):
    root = market_copy()
    for f in train_images(root):
        f.unlink()
    expect_error(capsys, train_args(root, tmp_path / "out"), "has no images", str(root / "bounding_box_train"),
                 case="market1501: bounding_box_train holds no images", tmp=tmp_path)


def test_eval_on_missing_data_folder(capsys, tmp_path, good_run):
    root = tmp_path / "nowhere"
    expect_error(capsys, ["eval", "--checkpoint", good_run / "model.safetensors", "--dataset", "market1501",
                          "--data-root", root], "does not exist", str(root),
                 case="eval --dataset market1501 --data-root <missing folder>", tmp=tmp_path)


# ------------------------------------------------------------------------------------------------ images
def _corrupt_jpeg(p: Path) -> Path:
    p.write_bytes(b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 8)
    return p


def _truncated_jpeg(p: Path) -> Path:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


def _corrupt_png(p: Path) -> Path:
    q = p.with_suffix(".png")
    p.unlink()
    q.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"garbage" * 4)
    return q


CORRUPTIONS = {"corrupt JPEG": _corrupt_jpeg, "truncated JPEG": _truncated_jpeg, "corrupt PNG": _corrupt_png}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_bad_image_with_policy_error_names_the_file(capsys, tmp_path, market_copy, kind):
    root = market_copy()
    bad = CORRUPTIONS[kind](train_images(root)[3])
    out = tmp_path / "out"
    expect_error(capsys, train_args(root, out, "--data.bad_images", "error"), "bad image", str(bad),
                 case=f"{kind} in the training set, data.bad_images=error", tmp=tmp_path)
    assert not (out / "model.safetensors").exists()


def test_bad_image_read_in_a_worker_process_names_the_file(capsys, tmp_path, market_copy):
    """With DataLoader workers the error crosses a process boundary: still one line naming the file."""
    root = market_copy()
    bad = _corrupt_jpeg(train_images(root)[0])
    expect_error(capsys, train_args(root, tmp_path / "out", "--data.bad_images", "error", "--workers", "2"),
                 "bad image", str(bad), case="corrupt JPEG read by a DataLoader worker (--workers 2), "
                 "data.bad_images=error", tmp=tmp_path)


def test_bad_images_with_policy_skip_finish_and_count(capsys, tmp_path, market_copy):
    root = market_copy()
    imgs = train_images(root)
    bad = [fn(imgs[i]) for i, fn in zip((0, 3, 5), CORRUPTIONS.values())]
    bad_query = _corrupt_jpeg(sorted((root / "query").iterdir())[0])
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, train_args(root, out, "--data.bad_images", "skip"))
    assert rc == 0, err
    assert (out / "model.safetensors").is_file() and (out / "results.json").is_file()
    warn = [ln for ln in err.splitlines() if ln.startswith("bireid train: warning: skipped")]
    # One line per pass: the training epoch (3 images) and the query pass at the final evaluation (1).
    assert any("skipped 3 unreadable image(s)" in w and all(str(b) in w for b in bad) for w in warn), err
    assert any("skipped 1 unreadable image(s)" in w and str(bad_query) in w for w in warn), err
    assert "RuntimeWarning" not in err  # printed as a CLI warning, not Python's source-line format
    for w in warn:
        _note("corrupt JPEG + truncated JPEG + corrupt PNG in training, 1 corrupt query image, "
              "data.bad_images=skip", rc, w, tmp_path)


def _odd_images(root: Path) -> dict[str, Path]:
    """Replace training images by valid but unusual ones; returns {what: path}."""
    imgs = train_images(root)

    def swap(i: int, img: Image.Image, suffix: str) -> Path:
        imgs[i].unlink()
        p = imgs[i].with_suffix(suffix)
        img.save(p)
        return p

    rgb = [Image.open(p).convert("RGB") for p in imgs]
    sixteen = (np.asarray(rgb[3].convert("L")).astype(np.uint16) * 257)
    return {
        "grayscale (L) PNG": swap(0, rgb[0].convert("L"), ".png"),
        "RGBA PNG": swap(1, rgb[1].convert("RGBA"), ".png"),
        "CMYK JPEG": swap(2, rgb[2].convert("CMYK"), ".jpg"),
        "16-bit grayscale PNG": swap(3, Image.fromarray(sixteen), ".png"),
        "1x1 JPEG": swap(4, Image.new("RGB", (1, 1), (200, 30, 30)), ".jpg"),
        "6000x3000 JPEG": swap(5, Image.new("RGB", (3000, 6000), (30, 200, 30)), ".jpg"),
        "palette (P) PNG": swap(6, rgb[6].convert("P"), ".png"),
        "gray + alpha (LA) PNG": swap(7, rgb[7].convert("LA"), ".png"),
    }


def test_unusual_but_valid_images_train_even_with_policy_error(capsys, tmp_path, market_copy):
    from bireid.data import RandomIdentitySampler, build_dataset

    root = market_copy()
    odd = _odd_images(root)
    assert Image.open(odd["16-bit grayscale PNG"]).mode.startswith("I;16")
    assert Image.open(odd["CMYK JPEG"]).mode == "CMYK"
    # Every training image is drawn in epoch 0, so each odd image really goes through the loader.
    ds = build_dataset("market1501", root)
    drawn = RandomIdentitySampler([s.pid for s in ds.train], 3, 2, seed=0).global_batches()
    assert {ds.train[i].path for b in drawn for i in b} >= {str(p) for p in odd.values()}
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, train_args(root, out, "--data.bad_images", "error"))
    assert rc == 0, err
    assert "warning" not in err and (out / "model.safetensors").is_file()
    loss = json.loads((out / "log.jsonl").read_text().splitlines()[0])["loss"]
    assert np.isfinite(loss)
    _note(", ".join(odd) + " in the training set (data.bad_images=error)", rc,
          "trains normally: every image is converted to RGB (16-bit scaled by 1/257, alpha composited on black) "
          "and resized to the input size", tmp_path)


# ------------------------------------------------------------------------------------------------ output folders
def test_output_folder_made_read_only(capsys, tmp_path, tiny_synth):
    ro = tmp_path / "read_only"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        probe = ro / "probe"
        try:
            probe.write_text("x")
            probe.unlink()
            pytest.skip("chmod 555 does not stop writes here (running as root): unwritable output folders are "
                        "covered by test_output_folder_under_a_regular_file and test_output_folder_is_a_file")
        except PermissionError:
            pass
        expect_error(capsys, train_args(tiny_synth, ro / "run", dataset="synthetic"), str(ro / "run"),
                     case="output folder inside a read-only (chmod 555) folder", tmp=tmp_path, synth=tiny_synth)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_output_folder_under_a_regular_file(capsys, tmp_path, tiny_synth):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("my notes")
    expect_error(capsys, train_args(tiny_synth, blocker / "run", dataset="synthetic"), str(blocker / "run"),
                 f"{blocker} is a file", case="--output-dir below a regular file (unwritable location)",
                 tmp=tmp_path, synth=tiny_synth)
    assert blocker.read_text() == "my notes"


def test_output_folder_is_a_file(capsys, tmp_path, tiny_synth):
    blocker = tmp_path / "results"
    blocker.write_text("keep me")
    expect_error(capsys, train_args(tiny_synth, blocker, dataset="synthetic"), str(blocker), "is an existing file",
                 "train.output_dir", case="--output-dir is an existing file", tmp=tmp_path, synth=tiny_synth)
    assert blocker.read_text() == "keep me"


# ------------------------------------------------------------------------------------------------ values
VALUE_CASES = {
    "negative batch size (--data.num_identities -1)": (["--data.num_identities", "-1"],
                                                       ["data.num_identities", "-1"]),
    "zero epochs (--epochs 0)": (["--epochs", "0"], ["train.epochs", "positive"]),
    "unknown method (--method foo)": (["--method", "foo"], ["model.method", "'foo'", "bireid"]),
    "resolution not divisible (--height 100)": (["--height", "100"], ["data.height", "100", "divisible by 32"]),
    "zero model width (--model.width 0)": (["--model.width", "0"], ["model.width", "positive"]),
    "not a number (--lr fast)": (["--lr", "fast"], ["optim.lr", "fast"]),
    "unknown config key (--set data.heigth=64)": (["--set", "data.heigth=64"],
                                                  ["data.heigth", "did you mean 'data.height'"]),
    "a section given a value (--set data=5)": (["--set", "data=5"], ["'data' is a section"]),
    "null value (--set data.height=null)": (["--set", "data.height=null"], ["data.height", "no value"]),
    "unknown device (--device tpu)": (["--device", "tpu"], ["tpu", "cpu, cuda"]),
}


@pytest.mark.parametrize("case", list(VALUE_CASES))
def test_wrong_values(capsys, tmp_path, tiny_synth, case):
    extra, needles = VALUE_CASES[case]
    out = tmp_path / "out"
    expect_error(capsys, train_args(tiny_synth, out, *extra, dataset="synthetic"), *needles, case=case,
                 tmp=tmp_path, synth=tiny_synth)
    assert not out.exists()  # refused before anything was written


def test_unknown_dataset(capsys, tmp_path, tiny_synth):
    expect_error(capsys, train_args(tiny_synth, tmp_path / "out", dataset="market9000"), "unknown data set",
                 "market9000", "market1501", case="unknown dataset (--dataset market9000)", tmp=tmp_path,
                 synth=tiny_synth)


def test_more_identities_per_batch_than_the_data_has(capsys, tmp_path, tiny_synth):
    expect_error(capsys, train_args(tiny_synth, tmp_path / "out", "--data.num_identities", "10",
                                    dataset="synthetic"), "data.num_identities", "6 identities",
                 case="--data.num_identities 10 with a 6-identity training set", tmp=tmp_path, synth=tiny_synth)


def test_unknown_flag_is_an_argparse_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data.heigth", "64"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "unrecognized arguments: --data.heigth" in err and "Traceback" not in err
    _note("unknown flag (--data.heigth 64)", 2, err.strip().splitlines()[-1], tmp_path)


YAML_CASES = {
    "malformed --config YAML": (b"data: {height: 64\nmodel: [\n", ["not valid YAML", "line"]),
    "unknown key in --config YAML": (b"data:\n  heigth: 64\n", ["data.heigth", "did you mean 'data.height'"]),
    "--config YAML that is a list": (b"- 1\n- 2\n", ["mapping"]),
    "--config file that is binary": (b"\xff\xfe\x00\x01garbage", ["not a UTF-8 text file"]),
}


@pytest.mark.parametrize("case", list(YAML_CASES))
def test_bad_config_file(capsys, tmp_path, case):
    content, needles = YAML_CASES[case]
    cfg = tmp_path / "exp.yaml"
    cfg.write_bytes(content)
    out = tmp_path / "out"
    expect_error(capsys, ["train", "--config", cfg, "--output-dir", out], str(cfg), *needles, case=case,
                 tmp=tmp_path)
    assert not out.exists()


def test_missing_config_file(capsys, tmp_path):
    cfg = tmp_path / "nope.yaml"
    expect_error(capsys, ["train", "--config", cfg], "not found", str(cfg), case="--config file does not exist",
                 tmp=tmp_path)


# ------------------------------------------------------------------------------------------------ checkpoints
def _meta(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


def test_eval_checkpoint_of_another_method(capsys, tmp_path, good_run):
    """A checkpoint whose weights come from a Bi-Real model while its config says 'real'."""
    import torch

    from bireid.checkpoint import read_checkpoint, save_checkpoint
    from bireid.factory import create_model, model_kwargs

    _, meta, _ = read_checkpoint(good_run / "model.safetensors")
    from bireid.config import from_dict, set_key

    cfg = from_dict(meta["config"])
    set_key(cfg, "model.method", "bireal")
    torch.manual_seed(0)
    other = create_model(**model_kwargs(cfg, meta["num_classes"]))
    ckpt = tmp_path / "mixed.safetensors"
    save_checkpoint(ckpt, other.state_dict(), meta)
    expect_error(capsys, ["eval", "--checkpoint", ckpt], str(ckpt), "does not fit this model",
                 case="eval: checkpoint whose weights are from another method (bireal weights, real config)",
                 tmp=tmp_path)


def test_resume_with_another_method_changes_nothing(capsys, tmp_path, tiny_synth, good_run):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    before = digest(run)
    expect_error(capsys, train_args(tiny_synth, run, "--resume", "--method", "bireal", dataset="synthetic"),
                 str(run / "last.safetensors"), "model.method='real'", "'bireal'",
                 case="train --resume with another --method than the run's", tmp=tmp_path, synth=tiny_synth)
    assert digest(run) == before


def _truncated(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def _newer_version(src: Path, dst: Path) -> Path:
    from safetensors.torch import load_file, save_file

    md = _meta(src)
    header = json.loads(md["bireid"])
    header["version"] += 1
    save_file(load_file(str(src)), str(dst), metadata={"bireid": json.dumps(header)})
    return dst


def _foreign_safetensors(src: Path, dst: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(3)}, str(dst))
    return dst


def _png(src: Path, dst: Path) -> Path:
    dst = dst.with_suffix(".png")
    Image.new("RGB", (8, 8)).save(dst)
    return dst


def _empty(src: Path, dst: Path) -> Path:
    dst.write_bytes(b"")
    return dst


CKPT_CASES = {
    "truncated checkpoint (first half)": (_truncated, ["not a readable safetensors checkpoint"]),
    "empty checkpoint file": (_empty, ["not a readable safetensors checkpoint"]),
    "non-checkpoint file (a PNG)": (_png, ["not a readable safetensors checkpoint"]),
    "safetensors file that is not a bireid checkpoint": (_foreign_safetensors, ["not a bireid checkpoint"]),
    "checkpoint from a newer format version": (_newer_version, ["newer than this bireid supports"]),
}


@pytest.mark.parametrize("case", list(CKPT_CASES))
def test_eval_broken_checkpoint(capsys, tmp_path, good_run, case):
    make, needles = CKPT_CASES[case]
    ckpt = make(good_run / "model.safetensors", tmp_path / "model.safetensors")
    expect_error(capsys, ["eval", "--checkpoint", ckpt], str(ckpt), *needles, case=f"eval: {case}", tmp=tmp_path)


def test_eval_missing_checkpoint_and_folder(capsys, tmp_path, good_run):
    expect_error(capsys, ["eval", "--checkpoint", tmp_path / "nope.safetensors"], "not found",
                 str(tmp_path / "nope.safetensors"), case="eval: checkpoint does not exist", tmp=tmp_path)
    expect_error(capsys, ["eval", "--checkpoint", good_run], "is a folder", str(good_run),
                 case="eval: --checkpoint is the run folder", tmp=tmp_path)


# ------------------------------------------------------------------------------------------------ run folders
def test_existing_run_without_resume_is_left_untouched(capsys, tmp_path, tiny_synth, good_run):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    (run / "my_notes.txt").write_text("do not delete")
    before = digest(run)
    expect_error(capsys, train_args(tiny_synth, run, dataset="synthetic"), str(run), "already holds a run",
                 "--resume", "nothing was overwritten", case="train into an existing run folder without --resume",
                 tmp=tmp_path, synth=tiny_synth)
    assert digest(run) == before


def test_resume_without_checkpoint(capsys, tmp_path, tiny_synth):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("# hand-written\n")
    before = digest(run)
    expect_error(capsys, train_args(tiny_synth, run, "--resume", dataset="synthetic"), "no checkpoint to resume",
                 str(run / "last.safetensors"), case="train --resume with no checkpoint in the folder",
                 tmp=tmp_path, synth=tiny_synth)
    assert digest(run) == before


# ------------------------------------------------------------------------------------------------ runtime
def _runtime_built() -> bool:
    try:
        import bireid.commands.export  # noqa: F401
        import bireid.runtime.format  # noqa: F401
    except ImportError:
        return False
    return True


needs_runtime = pytest.mark.skipif(not _runtime_built(), reason="runtime not built yet")


@pytest.fixture(scope="module")
def exported(good_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("bnn") / "model.bnn"
    assert main(["export", "--checkpoint", str(good_run / "model.safetensors"), "--out", str(out)]) == 0
    return out


class _FullDisk:
    """A file object that fails with ENOSPC once more than ``limit`` bytes were written."""

    def __init__(self, f, limit: int) -> None:
        self.f, self.limit, self.n = f, limit, 0

    def write(self, b) -> int:
        self.n += len(b)
        if self.n > self.limit:
            raise OSError(28, "No space left on device")
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()


@needs_runtime
def test_interrupted_export_keeps_the_previous_file(capsys, tmp_path, good_run, exported, monkeypatch):
    import bireid.runtime.format as fmt

    dest = tmp_path / "model.bnn"
    shutil.copy(exported, dest)
    before = digest(tmp_path)

    def full_disk_open(*a, **k):  # open() as format.py sees it, failing midway through the write
        return _FullDisk(open(*a, **k), limit=4096)

    monkeypatch.setattr(fmt, "open", full_disk_open, raising=False)
    msg = expect_error(capsys, ["export", "--checkpoint", good_run / "model.safetensors", "--out", dest],
                       "No space left on device", case="export interrupted by a failing write (disk full)",
                       tmp=tmp_path)
    assert digest(tmp_path) == before  # previous file intact, no temporary file left behind
    assert f"cannot write {dest}" in msg


@needs_runtime
def test_export_to_unusable_destinations(capsys, tmp_path, good_run):
    ckpt = good_run / "model.safetensors"
    blocker = tmp_path / "notes.txt"
    blocker.write_text("my notes")
    expect_error(capsys, ["export", "--checkpoint", ckpt, "--out", blocker / "model.bnn"], str(blocker),
                 case="export --out below a regular file", tmp=tmp_path)
    folder = tmp_path / "exports"
    folder.mkdir()
    expect_error(capsys, ["export", "--checkpoint", ckpt, "--out", folder], str(folder), "directory",
                 case="export --out is an existing folder", tmp=tmp_path)
    assert blocker.read_text() == "my notes" and list(folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports", "notes.txt"]  # no temporary file left


@needs_runtime
@pytest.mark.parametrize("case", ["newer format version", "truncated file"])
def test_broken_bnn_file(capsys, tmp_path, exported, case):
    data = bytearray(exported.read_bytes())
    if case == "newer format version":
        (version,) = struct.unpack_from("<I", data, 8)
        struct.pack_into("<I", data, 8, version + 1)
        needles = ["newer than this bireid supports"]
    else:
        data = data[: len(data) // 2]
        needles = ["truncated"]
    bad = tmp_path / "model.bnn"
    bad.write_bytes(bytes(data))
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (32, 64), (100, 50, 20)).save(images / "a.jpg")
    out = tmp_path / "feats.npy"
    expect_error(capsys, ["extract", "--model", bad, "--images", images, "--out", out], str(bad), *needles,
                 case=f"extract with a .bnn: {case}", tmp=tmp_path)
    assert not out.exists()


# ------------------------------------------------------------------------------------------------ separate process
def test_separate_process_exit_code_and_stderr(tmp_path, market_copy):
    """``python -m bireid``: the exit status is 2 and stderr is the one message line, nothing else."""
    root = market_copy()
    shutil.copy(train_images(root)[0], root / "bounding_box_train" / "IMG_0001.jpg")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "bireid", *map(str, train_args(root, tmp_path / "out"))],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"bireid train: error: market1501: cannot parse pid and camera from file name 'IMG_0001.jpg' "
        f"({root / 'bounding_box_train' / 'IMG_0001.jpg'}); expected names like 0002_c1s1_000451_03.jpg"]


# ------------------------------------------------------------------------------------------------ determinism
def test_same_seed_and_config_give_bit_identical_weights_on_cpu(capsys, tmp_path, tiny_synth):
    """The claim of docs/bad-input.md: on CPU, the same seed + config reproduce the run bit for bit (here
    with the method that draws the most random numbers: bireid's GAL discriminators sample filters)."""
    from bireid.checkpoint import read_checkpoint

    states = []
    for name in ("a", "b"):
        out = tmp_path / name
        rc, _, err = run_cli(capsys, train_args(tiny_synth, out, "--method", "bireid", "--seed", "7",
                                                dataset="synthetic"))
        assert rc == 0, err
        states.append(read_checkpoint(out / "model.safetensors")[0])
    assert states[0].keys() == states[1].keys()
    assert all(np.array_equal(states[0][k].numpy(), states[1][k].numpy()) for k in states[0])


def markdown_table(log: str) -> str:
    """The docs/bad-input.md table from a $BIREID_BAD_INPUT_LOG file: one row per case, in test order."""
    rows: dict[str, list[str]] = {}
    codes: dict[str, int] = {}
    for line in Path(log).read_text().splitlines():
        r = json.loads(line)
        msg = " ".join(r["message"].split())  # multi-line YAML errors on one line
        msg = msg if len(msg) <= 320 else msg[:317] + "..."
        rows.setdefault(r["case"], []).append(msg.replace("|", "\\|"))
        codes[r["case"]] = r["rc"]
    out = ["| input tried | exit | what bireid does (message excerpt) |", "|---|---|---|"]
    for case, msgs in rows.items():
        out.append(f"| {case.replace('|', '/')} | {codes[case]} | " + "<br>".join(f"`{m}`" for m in msgs) + " |")
    return "\n".join(out)


if __name__ == "__main__":  # python tests/test_bad_input.py LOG.jsonl > table.md
    print(markdown_table(sys.argv[1]))
