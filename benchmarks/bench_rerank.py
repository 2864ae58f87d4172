"""Benchmark of k-reciprocal re-ranking (``k_reciprocal_rerank``) against other implementations.

Market-like random features (``bench_eval.market_like``: identity centres + camera bias + noise, 512-d,
Market-1501's proportion of distractors) for ``--num-query`` x ``--num-gallery`` items; the three squared
Euclidean distance matrices are computed once, then each implementation re-ranks them ``--repeats`` times,
round-robin (so machine load hits all alike); medians are printed with the largest deviation of each
implementation from bireid's and the mAP after re-ranking. ``--compare PATH[:FUNC]`` adds an implementation
from a Python file (default function name ``k_reciprocal_rerank``, called with ``(q_g, q_q, g_g, k1, k2,
lambda_value)``), e.g. a previous version of bireid's module or the loop-based transcription of the published
code in ``tests/test_rerank.py``:

    git show 41834ac:bireid/evaluation/rerank.py > /tmp/rerank_old.py
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_rerank.py --threads 2 --repeats 3 \\
        --compare /tmp/rerank_old.py --compare tests/test_rerank.py:published_rerank
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bireid.evaluation import compute_distance, evaluate_rank, k_reciprocal_rerank

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eval import market_like  # noqa: E402  (a sibling script, not a package)


def load_impl(spec: str):
    path, _, func = spec.partition(":")
    p = Path(path)
    if not p.is_file():
        raise SystemExit(f"--compare: no such file {path}")
    sys.path.insert(0, str(p.resolve().parent))  # e.g. tests/ for tests' own imports
    mod_spec = importlib.util.spec_from_file_location(f"_bench_impl_{abs(hash(spec))}", p)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    name = func or "k_reciprocal_rerank"
    if not hasattr(mod, name):
        raise SystemExit(f"--compare: {path} has no function {name}")
    return getattr(mod, name)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = f", 1-min load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (f"CPU: {cpu}, {os.cpu_count()} logical cores visible, torch CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}, numpy {np.__version__}{load}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-query", type=int, default=500)
    ap.add_argument("--num-gallery", type=int, default=3000)
    ap.add_argument("--num-ids", type=int, default=142, help="identities (Market-1501's 751 scaled to the gallery)")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--k1", type=int, default=20)
    ap.add_argument("--k2", type=int, default=6)
    ap.add_argument("--lambda-value", type=float, default=0.3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--compare", action="append", default=[], metavar="PATH[:FUNC]")
    args = ap.parse_args()
    if args.repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    impls = {"bireid": k_reciprocal_rerank}
    impls.update({spec: load_impl(spec) for spec in args.compare})  # before any work: fail fast
    torch.set_num_threads(args.threads)

    qf, qp, qc, gf, gp, gc = market_like(args.num_query, args.num_gallery, args.num_ids, 6, args.dim, 1.4, 0.8)
    q_g, q_q, g_g = compute_distance(qf, gf), compute_distance(qf, qf), compute_distance(gf, gf)
    times = {name: [] for name in impls}
    outs = {}
    for _ in range(args.repeats):
        for name, fn in impls.items():
            t0 = time.perf_counter()
            outs[name] = np.asarray(fn(q_g, q_q, g_g, args.k1, args.k2, args.lambda_value))
            times[name].append(time.perf_counter() - t0)

    print(f"### k-reciprocal re-ranking ({args.num_query} x {args.num_gallery}, {args.dim}-d, k1={args.k1}, "
          f"k2={args.k2}, lambda={args.lambda_value})\n")
    print(f"{machine()}; torch threads {args.threads}; median of {args.repeats} runs, round-robin\n")
    print("| implementation | seconds (median) | max abs. difference from bireid | mAP after re-ranking |")
    print("|---|---|---|---|")
    for name in impls:
        diff = float(np.abs(outs[name] - outs["bireid"]).max())
        m_ap = evaluate_rank(outs[name], qp, gp, qc, gc).mAP
        print(f"| {name} | {statistics.median(times[name]):.2f} | {diff:.2e} | {m_ap:.4f} |")
    print(f"\nwithout re-ranking: mAP {evaluate_rank(q_g, qp, gp, qc, gc).mAP:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
