#!/usr/bin/env bash
# Issue 18's CPU table: the detection ablation (real, 1-bit baseline, +KR-GAL, +FR-GAL, both) on the synthetic
# pedestrian scenes at a CPU budget, then the figure of the 1-bit (both modules) detector's engine detections.
#
#   benchmarks/detection_cpu.sh            # SEEDS="0" EPOCHS=... WIDTH=... to change the budget
#   SEEDS="0 1 2" SIZE=64 WIDTH=16 EPOCHS=10 benchmarks/detection_cpu.sh      # the table in RESULTS.md 9.2
#
# The GPU recipe (the same table at a real budget; BATCH and DEVICE are passed only when set):
#   SCENES="[4000,500]" SIZE=256 WIDTH=64 EPOCHS=60 BATCH=32 DEVICE=cuda SEEDS="0 1 2" benchmarks/detection_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-"0"}
EPOCHS=${EPOCHS:-6}
WIDTH=${WIDTH:-32}
SCENES=${SCENES:-"[300,100]"}
SIZE=${SIZE:-96}
THREADS=${THREADS:-1}
OUT=${OUT:-runs/issue18}
BUDGET=${DEVICE:+GPU budget}
BUDGET=${BUDGET:-CPU budget}
nice -n 10 .venv/bin/bireid ablate --task detection --data-root "$OUT/scenes" --epochs "$EPOCHS" \
  --variants real bireid-none bireid-kr bireid-fr bireid-both --seeds $SEEDS --runs-dir "$OUT/runs" \
  ${DEVICE:+--device "$DEVICE"} ${BATCH:+--set data.batch_size="$BATCH"} \
  --set model.width="$WIDTH" --set data.synth_scenes="$SCENES" --set data.height="$SIZE" --set data.width="$SIZE" \
  --set data.workers=0 --set train.threads="$THREADS" --set train.progress=false --set optim.warmup_epochs=1 \
  --title "Ablation: synthetic pedestrian scenes, ResNet-18-det width $WIDTH, ${SIZE}x${SIZE}, $EPOCHS epochs ($BUDGET)" \
  --out "$OUT/ABLATION.md"
run=$(ls -d "$OUT"/runs/bireid-both/seed*/ | head -1)
nice -n 10 .venv/bin/python benchmarks/detection_figure.py "$run/model.safetensors" "$OUT/detections.png"
