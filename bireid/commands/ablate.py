"""bireid ablate: the BiRe-ID ablation -- real, Bi-Real, and BiRe-ID with KR-GAL / FR-GAL / both -- trained
with the same seeds, data and budget, for any task, summarised as a markdown table (mean ± std over seeds)."""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import DEFAULT_TASK, Config, ConfigError, from_dict, load_yaml, read_yaml, set_key, validate
from ..errors import UserError
from ..methods import get_method

HELP = "ablation: real vs Bi-Real vs BiRe-ID (KR-GAL, FR-GAL, both, attention alpha) over several seeds, any task"
DESCRIPTION = """Train every variant with the same seeds, data and budget and write a markdown table:
variant | the task's metrics, mean ± std (re-ID: Rank-1, mAP; classification: top-1, top-5; point clouds: OA,
mAcc) | the primary metric's difference to the plain binary baseline paired by seed (mean ± std, seeds ahead) |
median step time | step cost relative to the plain binary step (Bi-Real, else the BiRe-ID backbone without GAL).

Variants:
  real           full-precision ResNet (the accuracy reference)
  xnor           1-bit XNOR-Net (STE sign, per-channel mean|W| scale)
  bireal         1-bit Bi-Real baseline (no alpha, no GAL)
  reactnet       1-bit ReActNet (RSign, RPReLU; distillation only when --set model.teacher=CK)
  bireid-none    BiRe-ID backbone (learned channel-wise alpha), no GAL
  bireid-kr      + KR-GAL only
  bireid-fr      + FR-GAL only
  bireid-both    + KR-GAL and FR-GAL (the paper's method)
  bireid-attn    + both, attention-aware alpha (gal.alpha_mode=attention)

Data (--task reid): 'synthetic' is the built-in benchmark; 'mars-market' trains on MARS (mini) and evaluates
on Market-1501 (mini) query/gallery, both under --data-root (default ../shared/data/reid). Other tasks: any of
the task's data sets (default: its default, e.g. cifar10, modelnet10) at --data-root. The short ablation of the
paper's two modules is --variants real bireid-none bireid-kr bireid-fr bireid-both (bireid-none: the 1-bit
baseline, the same backbone without GAL).
Each run lives in RUNS_DIR/VARIANT/seedS; a finished run (results.json with the same config, apart from where and
how it ran and the settings of a module it does not use, e.g. FR-GAL's in a KR-GAL-only run) is reused, an
interrupted one (last.safetensors) is resumed, so re-running the command continues an ablation. --jobs N runs N
trainings at once, each a `bireid train` process logging to its run folder (train.out); with --device cuda and
several GPUs they are spread over the GPUs.
Examples:
  bireid ablate --dataset synthetic --seeds 0 1 2 --epochs 12
  bireid ablate --dataset mars-market --epochs 30 --device cuda --set data.height=256 --set data.width=128 \\
      --out benchmarks/RESULTS.md
  bireid ablate --task classification --data-root /data/cifar-10-binary.tar.gz --epochs 200 --jobs 5 \\
      --device cuda --variants real bireid-none bireid-kr bireid-fr bireid-both
  bireid ablate --task pointcloud --data-root ../shared/data/pointcloud/modelnet10 --epochs 20"""


@dataclass(frozen=True)
class Variant:
    name: str
    method: str
    kr: bool = False
    fr: bool = False
    alpha_mode: str = "learned"
    label: str = ""


VARIANTS: dict[str, Variant] = {v.name: v for v in [
    Variant("real", "real", label="real-valued (full precision)"),
    Variant("xnor", "xnor", label="XNOR-Net (1-bit, per-filter mean-abs scale)"),
    Variant("bireal", "bireal", label="Bi-Real (1-bit baseline)"),
    Variant("reactnet", "reactnet", label="ReActNet (RSign, RPReLU; no teacher)"),
    Variant("bireid-none", "bireid", label="BiRe-ID backbone, learned alpha, no GAL"),
    Variant("bireid-kr", "bireid", kr=True, label="+ KR-GAL"),
    Variant("bireid-fr", "bireid", fr=True, label="+ FR-GAL"),
    Variant("bireid-both", "bireid", kr=True, fr=True, label="+ KR-GAL + FR-GAL"),
    Variant("bireid-attn", "bireid", kr=True, fr=True, alpha_mode="attention",
            label="+ KR-GAL + FR-GAL, attention alpha"),
]}
# The paper's ablation; xnor and reactnet (the method comparison) run when named with --variants. The short form
# real, bireid-none (the 1-bit baseline: the same backbone without GAL), bireid-kr, bireid-fr, bireid-both is the
# issue-16 table of the classification tasks.
DEFAULT_VARIANTS = ["real", "bireal", "bireid-none", "bireid-kr", "bireid-fr", "bireid-both", "bireid-attn"]
BASELINE = "bireal"  # the "plain binary step" the relative step cost refers to
DEFAULT_SHARED = "../shared/data/reid"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..tasks import list_tasks

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--task", default=DEFAULT_TASK, choices=list_tasks(),
                   help=f"what is learned (default: {DEFAULT_TASK})")
    p.add_argument("--dataset", default=None,
                   help="one of the task's data sets (default: the task's: synthetic for reid), or mars-market (re-ID: "
                        "train on MARS, test on Market-1501)")
    p.add_argument("--data-root", default="",
                   help="synthetic: where the benchmark is generated (default: the trainer's); mars-market: the "
                        f"folder holding mars-mini/ and market1501-mini/ (default {DEFAULT_SHARED}); other tasks: the "
                        "data set's folder or file")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs per run (default: the config's)")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=DEFAULT_VARIANTS, metavar="VARIANT",
                   help=f"variants to run (default: {' '.join(DEFAULT_VARIANTS)}); known: {', '.join(VARIANTS)}")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: the config's)")
    p.add_argument("--runs-dir", default="runs/ablate", help="folder for the runs (default: runs/ablate)")
    p.add_argument("--out", default="",
                   help="markdown file for the table: a missing file is created; in an existing file the section "
                        "written by an earlier ablation with the same --title is replaced, else appended "
                        "(default: RUNS_DIR/ABLATION.md)")
    p.add_argument("--title", default="", help="section title (default: 'Ablation: DATASET')")
    p.add_argument("--config", metavar="YAML", help="base settings for every run (method and gal flags are set "
                   "per variant)")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[],
                   help="override a base setting, e.g. --set data.height=256 (repeatable)")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs trained at once, each in its own process (default 1: one after another, in this "
                        "process). Each gets max(1, cores/N) torch threads and at most that many data workers; "
                        "on one GPU, N runs share it (13 runs of a 256x128 ablation fit an H200); with --device "
                        "cuda and several GPUs, they take the GPUs in turn")


# ------------------------------------------------------------------------------------------------ configs
def base_config(args: argparse.Namespace) -> Config:
    """The settings shared by every run: the task's defaults, --config, --set, then --dataset/--data-root/--epochs/
    --device."""
    from ..tasks import get_task, task_defaults

    task = get_task(getattr(args, "task", None) or DEFAULT_TASK)
    doc = read_yaml(args.config) if args.config else {}
    if not isinstance(doc.get("task", {}), dict):
        raise ConfigError(f"{args.config}: 'task' must be a section (task: {{name: ...}})")
    doc.setdefault("task", {})["name"] = task.name
    try:
        cfg = from_dict(doc, task_defaults)
    except ConfigError as e:
        raise ConfigError(f"{args.config}: {e}") from None
    for item in args.set or []:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE, got '{item}'")
        k, v = item.split("=", 1)
        set_key(cfg, k.strip(), yaml.safe_load(v) if v.strip() else "")
    if cfg.task.name != task.name:
        raise UserError(f"--set task.name={cfg.task.name} contradicts --task {task.name}; use --task")
    dataset = args.dataset or cfg.data.dataset
    if dataset in PRESETS:
        PRESETS[dataset](cfg, args.data_root)
    else:
        if dataset not in task.datasets:
            raise UserError(f"--dataset: {task.datasets.unknown_message(dataset)} (or a preset: "
                            f"{', '.join(PRESETS)})")
        set_key(cfg, "data.dataset", dataset)
        if args.data_root:
            set_key(cfg, "data.root", args.data_root)
        if not (cfg.data.root or task.datasets.get(dataset).default_root):
            raise UserError(f"--task {task.name} --dataset {dataset} needs --data-root (the data set's folder or file)")
    if args.epochs is not None:
        set_key(cfg, "train.epochs", args.epochs)
    if args.device:
        set_key(cfg, "train.device", args.device)
    validate(cfg)
    return cfg


def _mars_market(cfg: Config, data_root: str) -> None:
    """Train on MARS (mini), evaluate on Market-1501 (mini) query/gallery, both under ``data_root``."""
    shared = Path(data_root or DEFAULT_SHARED)
    mars, market = shared / "mars-mini", shared / "market1501-mini"
    for folder in (mars, market):
        if not folder.is_dir():
            raise UserError(f"--dataset mars-market needs {folder} (set --data-root to the folder holding "
                            "mars-mini/ and market1501-mini/)")
    if "mars" not in _task(cfg).datasets:
        raise UserError(f"--dataset mars-market is a re-ID data set; the task is {cfg.task.name}")
    set_key(cfg, "data.dataset", "mars")
    set_key(cfg, "data.root", str(mars))
    set_key(cfg, "data.eval_dataset", "market1501")
    set_key(cfg, "data.eval_root", str(market))


# --dataset values that name a combination of data sets rather than one: name -> (config, --data-root) -> None.
PRESETS: dict[str, Callable[[Config, str], None]] = {"mars-market": _mars_market}


def run_config(base: Config, variant: Variant, seed: int, runs_dir: Path) -> Config:
    """The config of one run: ``base`` with the variant's method / GAL switches, the seed and its folder; data
    folders absolute, as the trainer saves them (so a finished run is recognised)."""
    from ..data import absolute_data_paths

    cfg = absolute_data_paths(base, _task(base).datasets)
    cfg.model.method = variant.method
    cfg.gal.kr_gal = variant.kr
    cfg.gal.fr_gal = variant.fr
    cfg.gal.alpha_mode = variant.alpha_mode
    cfg.train.seed = seed
    cfg.train.resume = False
    cfg.train.output_dir = str(runs_dir / variant.name / f"seed{seed}")
    validate(cfg)
    return cfg


# How and where a run is executed, not what it is: a finished run is reused whatever these were (a runs folder
# copied or moved elsewhere holds the same runs).
EXECUTION_KEYS = ("resume", "device", "progress", "threads", "workers", "output_dir")


def _config_differences(folder: Path, cfg: Config) -> list[str]:
    """How the run saved in ``folder`` differs from ``cfg`` ("key: saved vs wanted"; empty: the same run).

    The saved config is read through the current Config, so a key added to bireid after the run was saved takes
    its default (the behaviour the run had) instead of making every older run look different."""
    from ..data import absolute_data_paths
    from ..tasks import get_task, task_defaults

    try:
        # Runs saved before data folders were stored absolute: resolved from here, as they were run.
        saved = load_yaml(folder / "config.yaml", task_defaults)
        old = absolute_data_paths(saved, get_task(saved.task.name).datasets).to_dict()
    except ConfigError as e:
        return [f"its config.yaml cannot be read ({e})"]
    mine = cfg.to_dict()
    # Settings of a module neither run uses (e.g. FR-GAL's in a run without it) cannot make them differ.
    unused = (get_method(saved.model.method).unused_config_keys(saved)
              & get_method(cfg.model.method).unused_config_keys(cfg))
    diffs = []
    for sec in sorted(set(old) | set(mine)):
        a, b = old.get(sec, {}), mine.get(sec, {})
        for key in sorted(set(a) | set(b)):
            if key not in EXECUTION_KEYS and f"{sec}.{key}" not in unused and a.get(key) != b.get(key):
                diffs.append(f"{sec}.{key}: {a.get(key)!r} vs {b.get(key)!r}")
    return diffs


def run_one(cfg: Config, train_fn: Callable[[Config], dict]) -> dict[str, Any]:
    """Train one run, reusing a finished run with the same config and resuming an interrupted one."""
    folder = Path(cfg.train.output_dir)
    done = folder / "results.json"
    if folder.exists() and (done.exists() or (folder / "last.safetensors").exists()):
        diffs = _config_differences(folder, cfg)
        if diffs:
            shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
            raise UserError(f"{folder} holds a run with a different configuration ({shown}); choose another "
                            "--runs-dir or remove that folder")
        if done.exists():
            try:
                return json.loads(done.read_text())
            except json.JSONDecodeError as e:
                raise UserError(f"{done} is not valid JSON ({e}); remove it to retrain that run") from None
        cfg = copy.deepcopy(cfg)
        cfg.train.resume = True
    res = train_fn(cfg)
    missing = [k for k in (_task(cfg).primary_metric, "step_time") if res.get(k) is None]
    if missing:
        raise RuntimeError(f"the trainer returned no {', '.join(missing)} for {folder}")
    return {k: v for k, v in res.items() if k != "history"}


def _task(cfg: Config):
    from ..tasks import get_task

    return get_task(cfg.task.name)


class SubprocessTrainer:
    """``train_fn`` for parallel ablations: trains a config in a child ``python -m bireid train`` process.

    Why processes, not threads: each run owns its torch thread pool, data workers and CUDA context, and a
    crash stays in its run. The child's output goes to ``<run folder>/train.out``; its results come back
    through the run folder's ``results.json``, exactly what an in-process run would have returned.
    """

    def __init__(self, jobs: int, cores: int | None = None) -> None:
        cores = cores or os.cpu_count() or 1
        self.threads = max(1, cores // max(1, jobs))

    def __call__(self, cfg: Config) -> dict[str, Any]:
        cfg = copy.deepcopy(cfg)
        cfg.train.progress = False
        if cfg.train.threads <= 0:
            cfg.train.threads = self.threads
        cfg.data.workers = min(cfg.data.workers, self.threads)
        folder = Path(cfg.train.output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        spec = folder / "ablate_run.yaml"
        cfg.save(spec)
        with open(folder / "train.out", "w") as out:
            rc = subprocess.call([sys.executable, "-m", "bireid", "train", "--config", str(spec)], stdout=out,
                                 stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": str(self.threads)})
        if rc != 0:
            tail = (folder / "train.out").read_text(errors="replace").strip().splitlines()[-1:]
            raise UserError(f"the run in {folder} failed (exit {rc}): {tail[0] if tail else 'no output'} "
                            f"(whole log: {folder / 'train.out'})")
        return json.loads((folder / "results.json").read_text())


def _spread_devices(cfgs: list[Config]) -> None:
    """Give runs on ``cuda`` (no index) the GPUs in turn when there are several."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n > 1:
        for i, cfg in enumerate(c for c in cfgs if c.train.device == "cuda"):
            cfg.train.device = f"cuda:{i % n}"


def run_ablation(base: Config, variants: Sequence[str], seeds: Sequence[int], runs_dir: Path,
                 train_fn: Callable[[Config], dict] | None = None,
                 log: Callable[[str], None] = print, jobs: int = 1) -> dict[str, list[dict[str, Any]]]:
    """Train every (variant, seed), ``jobs`` at a time; returns ``{variant: [result per seed]}`` (each with its
    seed), in the order of ``variants`` and ``seeds`` whatever order the runs finish in."""
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    if train_fn is None:
        if jobs > 1:
            train_fn = SubprocessTrainer(jobs)
        else:
            from ..engine.trainer import train as train_fn
    if not seeds:
        raise UserError("--seeds needs at least one seed")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise UserError(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    task = _task(base)
    todo = [(name, seed, run_config(base, VARIANTS[name], seed, runs_dir)) for name in variants for seed in seeds]
    if jobs > 1:
        _spread_devices([cfg for _, _, cfg in todo])
    if isinstance(train_fn, SubprocessTrainer):
        # Once, here: the synthetic set is generated on first use, and N children must not race to write it
        # (and a missing or malformed data set fails here, before N processes start).
        task.build_datasets(base)

    def one(item: tuple[str, int, Config]) -> dict[str, Any]:
        name, seed, cfg = item
        log(f"[ablate] {name} seed {seed} -> {cfg.train.output_dir}")
        res = run_one(cfg, train_fn)
        res["seed"] = seed
        scores = "  ".join(f"{label} {100 * float(res[key]):.2f}" for key, label in task.table_metrics
                           if res.get(key) is not None)
        log(f"[ablate] {name} seed {seed}: {scores}  step {res['step_time']:.4f}s")
        return res

    if jobs == 1:
        done = [one(item) for item in todo]
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(one, item) for item in todo]
            errors = [f.exception() for f in futures]
        failed = [e for e in errors if e is not None]
        if failed:
            raise UserError(f"{len(failed)} of {len(todo)} runs failed; first: {failed[0]}")
        done = [f.result() for f in futures]
    results: dict[str, list[dict[str, Any]]] = {}
    for (name, _, _), res in zip(todo, done):
        results.setdefault(name, []).append(res)
    return results


# ------------------------------------------------------------------------------------------------ table
def _mean_std(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    vals = [scale * float(v) for v in values]
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{statistics.fmean(vals):.{digits}f} ± {statistics.stdev(vals):.{digits}f}"


def _paired_delta(runs: Sequence[dict[str, Any]], ref: Sequence[dict[str, Any]], key: str = "mAP") -> str:
    """Difference in metric ``key`` to the reference variant, paired by seed: mean ± std, and on how many seeds it
    is ahead.

    Why: seeds move every variant together (data order, initialisation), so the per-seed difference is a
    much tighter measure of what a component buys than two independent means ± std.
    """
    ref_map = {r.get("seed"): float(r[key]) for r in ref}
    diffs = [100 * (float(r[key]) - ref_map[r.get("seed")]) for r in runs if r.get("seed") in ref_map]
    if not diffs:
        return "n/a"
    wins = sum(d > 0 for d in diffs)
    mean = f"{statistics.fmean(diffs):+.2f}"
    spread = f" ± {statistics.stdev(diffs):.2f}" if len(diffs) > 1 else ""
    return f"{mean}{spread} ({wins}/{len(diffs)} seeds ahead)"


def format_table(results: dict[str, list[dict[str, Any]]], task: Any = None) -> str:
    """Markdown table: one row per variant; std is the sample std over seeds (omitted for one seed).

    Columns: the task's metrics (``task.table_metrics``; re-ID when no task is given), the paired difference in its
    primary metric and the step cost, both relative to the plain binary baseline (``bireal``, else
    ``bireid-none``) when it is among the variants.
    """
    if task is None:
        from ..tasks import get_task

        task = get_task(DEFAULT_TASK)
    key = task.primary_metric
    label = dict(task.table_metrics).get(key, key)
    base_time, ref_name = None, ""
    for ref in (BASELINE, "bireid-none"):
        if ref in results:
            base_time = statistics.fmean(float(r["step_time"]) for r in results[ref])
            ref_name = ref
            break
    head = f"step cost vs {ref_name}" if base_time else "step cost vs the binary baseline"
    delta = f"Δ {label} vs {ref_name}, paired by seed" if ref_name else f"Δ {label} vs the binary baseline"
    metric_cols = " | ".join(f"{lb} (%)" for _, lb in task.table_metrics)
    lines = [f"| variant | method | {metric_cols} | {delta} | step time (s) | {head} |",
             "|---|---|" + "---|" * len(task.table_metrics) + "---|---|---|"]
    for name, runs in results.items():
        v = VARIANTS[name]
        t = statistics.fmean(float(r["step_time"]) for r in runs)
        rel = f"{t / base_time:.2f}×" if base_time else "n/a"
        d = "—" if name == ref_name else (_paired_delta(runs, results[ref_name], key) if ref_name else "n/a")
        scores = " | ".join(_mean_std([r[k] for r in runs], 100) for k, _ in task.table_metrics)
        lines.append(f"| {name} | {v.label} | {scores} | {d} | {t:.4f} | {rel} |")
    return "\n".join(lines)


def format_section(title: str, results: dict[str, list[dict[str, Any]]], base: Config, seeds: Sequence[int],
                   command: str) -> str:
    d, t = base.data, base.train
    task = _task(base)
    data = d.dataset + (f" (root {d.root})" if d.root else "")
    if getattr(d, "eval_dataset", ""):
        data += f", evaluated on {d.eval_dataset} ({d.eval_root})"
    shape = "x".join(map(str, task.input_shape(base)[1:]))
    info = (f"Data: {data}. {task.describe_model(base)}, input {shape}, {t.epochs} epochs"
            + (f" (at most {t.max_steps_per_epoch} steps each)" if t.max_steps_per_epoch else "")
            + f", device {t.device}, seeds {' '.join(map(str, seeds))} (mean ± sample std over seeds). "
            f"GAL: kr_lambda {base.gal.kr_lambda}, kr_adv_weight {base.gal.kr_adv_weight}, fr_mu "
            f"{base.gal.fr_mu}, fr_adv_weight {base.gal.fr_adv_weight}, fr_stages {base.gal.fr_stages}. "
            "Step time: median seconds per training step (forward, backward, optimizer and discriminator "
            "steps), averaged over seeds.")
    return (f"{_marker(title, 'begin')}\n## {title}\n\n{info}\n\nCommand: `{command}`\n\n"
            f"{format_table(results, task)}\n{_marker(title, 'end')}\n")


def _marker(title: str, which: str) -> str:
    return f"<!-- bireid-ablate {which}: {title} -->"


def write_section(path: Path, section: str, title: str) -> None:
    """Create ``path``, or replace the section with this title in it, or append the section."""
    if path.exists() and not path.is_file():
        raise UserError(f"--out {path} is not a file")
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(_marker(title, "begin")) + r".*?" + re.escape(_marker(title, "end")) + r"\n?",
                         re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section, text, count=1)
    else:
        text = text + ("\n" if text and not text.endswith("\n") else "") + ("\n" if text else "") + section
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None


def run(args: argparse.Namespace) -> int:
    base = base_config(args)
    task = _task(base)
    runs_dir = Path(args.runs_dir)
    results = run_ablation(base, args.variants, args.seeds, runs_dir, jobs=args.jobs)
    title = args.title or f"Ablation: {args.dataset or base.data.dataset}"
    command = "bireid " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["ablate"] else \
        "bireid ablate ..."
    section = format_section(title, results, base, args.seeds, command)
    out = Path(args.out) if args.out else runs_dir / "ABLATION.md"
    write_section(out, section, title)
    raw = runs_dir / "ablation_results.json"
    try:
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_text(json.dumps(results, indent=2, default=float))
    except OSError as e:
        raise UserError(f"cannot write {raw}: {e.strerror}") from None
    print(format_table(results, task))
    print(f"table written to {out}; per-run results in {raw}")
    return 0
