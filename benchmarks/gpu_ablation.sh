#!/usr/bin/env bash
# The BiRe-ID ablation on one GPU: real, bireid-none, +KR-GAL, +FR-GAL, both; 3 seeds; 80 epochs at 256x128 on the
# built-in synthetic benchmark -- 15 runs trained at once (`bireid ablate --jobs 15`), which share one large GPU
# well (13 runs x 40 epochs at 256x128 took about 3 minutes on one H200 with 16 cores).
#
#   bash benchmarks/gpu_ablation.sh [RUNS_DIR] [EXTRA ablate ARGS...]
#
# Writes RUNS_DIR/ABLATION.md (the table) and RUNS_DIR/ablation_results.json; re-running continues an interrupted
# ablation (finished runs are reused, interrupted ones resumed). Needs a CUDA GPU; AMP is on by default.
set -euo pipefail
RUNS=${1:-runs/gpu_ablation}
shift || true
PY=${PYTHON:-python3}
DATA=${DATA:-runs/_data/synthetic}
JOBS=${JOBS:-15}
"$PY" -m bireid ablate --dataset synthetic --data-root "$DATA" --seeds 0 1 2 \
    --variants real bireid-none bireid-kr bireid-fr bireid-both --epochs 80 --device cuda \
    --set data.height=256 --set data.width=128 --jobs "$JOBS" --runs-dir "$RUNS" \
    --title "Ablation: synthetic, 256x128, 80 epochs, one GPU" "$@"
