"""Benchmark of the re-ID evaluation at the real Market-1501 test size.

Random 512-d float32 features (512 = the ResNet-18 feature size used by the BiRe-ID models) for 3,368
queries x 15,913 gallery items with Market-like structure: 751 identities, 6 cameras, 2,798 distractors
(pid 0) in the gallery. Features are identity centres + a camera bias + noise, so the metrics are neither
0 nor 1 and the ranking code does real work. Times ``compute_distance`` (squared Euclidean) and
``evaluate_rank`` separately, median of ``--repeats`` runs; ``--rerank`` also times k-reciprocal re-ranking
once (it needs the three distance matrices, about 1.5 GB at this size). Prints a markdown table.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_eval.py [--threads 2] [--repeats 3] [--rerank]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from bireid.evaluation import compute_distance, evaluate_rank, k_reciprocal_rerank


def market_like(
    num_query: int, num_gallery: int, num_ids: int, num_cams: int, dim: int, noise: float, cam_std: float, seed: int = 0
):
    rng = np.random.default_rng(seed)
    num_distractors = round(num_gallery * 2798 / 15913)
    q_pids = rng.permutation(np.resize(np.arange(1, num_ids + 1), num_query))
    g_pids = np.concatenate(
        [np.resize(np.arange(1, num_ids + 1), num_gallery - num_distractors), np.zeros(num_distractors, dtype=np.int64)]
    )
    q_cams = rng.integers(0, num_cams, num_query)
    g_cams = rng.integers(0, num_cams, num_gallery)
    centres = rng.standard_normal((num_ids + 1, dim), dtype=np.float32)
    cam_bias = cam_std * rng.standard_normal((num_cams, dim), dtype=np.float32)

    def feats(pids, cams):
        f = centres[pids] + cam_bias[cams] + noise * rng.standard_normal((len(pids), dim), dtype=np.float32)
        # every distractor is its own random person, with the same feature scale as everyone else
        d = pids == 0
        scale = float(np.sqrt(1.0 + cam_std**2 + noise**2))
        f[d] = scale * rng.standard_normal((int(d.sum()), dim), dtype=np.float32)
        return f

    return feats(q_pids, q_cams), q_pids, q_cams, feats(g_pids, g_cams), g_pids, g_cams


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-query", type=int, default=3368)
    ap.add_argument("--num-gallery", type=int, default=15913)
    ap.add_argument("--num-ids", type=int, default=751)
    ap.add_argument("--num-cams", type=int, default=6)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--noise", type=float, default=1.4, help="per-image noise std (identity centres have std 1)")
    ap.add_argument("--cam-std", type=float, default=0.8, help="std of the per-camera feature bias")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads for the distance matmul")
    ap.add_argument("--rerank", action="store_true", help="also time k-reciprocal re-ranking (one run)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    qf, qp, qc, gf, gp, gc = market_like(
        args.num_query, args.num_gallery, args.num_ids, args.num_cams, args.dim, args.noise, args.cam_std
    )
    t_dist, t_rank = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        dist = compute_distance(qf, gf, "euclidean")
        t1 = time.perf_counter()
        res = evaluate_rank(dist, qp, gp, qc, gc, max_rank=50)
        t2 = time.perf_counter()
        t_dist.append(t1 - t0)
        t_rank.append(t2 - t1)
    med_d, med_r = statistics.median(t_dist), statistics.median(t_rank)

    rows = [
        ("compute_distance (squared Euclidean)", f"{med_d:.2f}"),
        ("evaluate_rank (CMC/mAP/mINP)", f"{med_r:.2f}"),
        ("total", f"{med_d + med_r:.2f}"),
    ]
    if args.rerank:
        t0 = time.perf_counter()
        q_q = compute_distance(qf, qf)
        g_g = compute_distance(gf, gf)
        rr = k_reciprocal_rerank(dist, q_q, g_g)
        t1 = time.perf_counter()
        res_rr = evaluate_rank(rr, qp, gp, qc, gc, max_rank=50)
        rows.append(("k-reciprocal re-ranking incl. q-q/g-g distances (1 run)", f"{t1 - t0:.2f}"))

    cpu = platform.processor() or platform.machine()
    load = f", 1-min load average at the end {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"### Re-ID evaluation timing ({args.num_query} x {args.num_gallery}, {args.dim}-d float32)\n")
    print(
        f"CPU: {cpu}, {os.cpu_count()} logical cores visible, torch threads {args.threads}; "
        f"median of {args.repeats} runs{load}\n"
    )
    print("| step | seconds |")
    print("|---|---|")
    for name, sec in rows:
        print(f"| {name} | {sec} |")
    print(
        f"\nsynthetic metrics: Rank-1 {res.rank1:.3f}, mAP {res.mAP:.3f}, mINP {res.mINP:.3f}, "
        f"valid queries {res.num_valid_queries}, skipped {res.num_skipped_queries}"
    )
    if args.rerank:
        print(f"after re-ranking: Rank-1 {res_rr.rank1:.3f}, mAP {res_rr.mAP:.3f}, mINP {res_rr.mINP:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
