#!/usr/bin/env bash
# The BiRe-ID ablation's CPU proxy (issue 12): real, bireid-none, bireid-both (the default `bireid`), +KR-GAL,
# +FR-GAL; 3 seeds; 80 epochs at 64x32 on a synthetic set rendered at 32x16. Training at twice the images' native
# size is what opens the real-vs-1-bit gap of the GPU benchmark (256x128 on 128x64 renders); at native size the
# gap is 1-4 mAP, here 9 (benchmarks/RESULTS.md 6.4). One run takes about 10 minutes on one core of the 2-core
# VM; the 15 runs, two at a time, about 80 minutes.
#
#   bash benchmarks/cpu_proxy.sh [RUNS_DIR] [EXTRA ablate ARGS...]
#
# Writes RUNS_DIR/ABLATION.md (or --out FILE) and RUNS_DIR/ablation_results.json; re-running continues an
# interrupted ablation (finished runs are reused, interrupted ones resumed).
set -euo pipefail
RUNS=${1:-runs/cpu_proxy}
shift || true
PY=${PYTHON:-python3}
DATA=${DATA:-runs/_data/synthetic_32x16}
JOBS=${JOBS:-2}
"$PY" -m bireid synth --height 32 --width 16 --out "$DATA"
"$PY" -m bireid ablate --dataset synthetic --data-root "$DATA" --seeds 0 1 2 \
    --variants bireid-none bireid-both real bireid-kr bireid-fr --epochs 80 \
    --set data.height=64 --set data.width=32 --set train.threads=1 --set data.workers=0 --set train.progress=false \
    --jobs "$JOBS" --runs-dir "$RUNS" --title "CPU proxy: synthetic 32x16 set at 64x32, 80 epochs" "$@"
