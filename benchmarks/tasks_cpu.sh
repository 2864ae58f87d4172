#!/usr/bin/env bash
# Issue 16's CPU tables: the KR-GAL / FR-GAL ablation on CIFAR-10 (ResNet-20) and ModelNet10 (PointNet), at a
# CPU budget, one training process at a time, seed by seed (after each seed both tables are complete for the
# seeds so far; re-running continues: finished runs are reused, interrupted ones resumed).
#
#   CIFAR_ROOT=runs/_data/cifar10 MODELNET_ROOT=../shared/data/pointcloud/modelnet10 benchmarks/tasks_cpu.sh
#
# CIFAR_ROOT: CIFAR-10 as a folder per class (train/<class>/*.jpg, test/<class>/*.jpg; e.g. the JPEG set beside
# this project, extracted: tar xzf ../shared/data/classification/cifar10-jpeg.tar.gz -C runs/_data), or the
# official binary release (then set CIFAR_DATASET=cifar10). Budgets: CIFAR-10 2 epochs, ModelNet10 5 epochs at
# 512 points (15-30 minutes a run on the busy shared 2-core machine). THREADS (default 1) torch threads per run.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CIFAR_ROOT:?set CIFAR_ROOT}" "${MODELNET_ROOT:?set MODELNET_ROOT}"
CIFAR_DATASET=${CIFAR_DATASET:-folders}
THREADS=${THREADS:-1}
SEEDS=${SEEDS:-"0 1 2"}
OUT=${OUT:-runs/issue16}
VARIANTS="real bireid-none bireid-kr bireid-fr bireid-both"
COMMON=(--variants $VARIANTS --set train.threads="$THREADS" --set data.workers=0 --set optim.warmup_epochs=0
        --set train.progress=false --out "$OUT/ABLATION.md")
cifar() {
  nice -n 15 .venv/bin/bireid ablate --task classification --dataset "$CIFAR_DATASET" --data-root "$CIFAR_ROOT" \
    --epochs 2 --runs-dir "$OUT/cifar10" --title "Ablation: CIFAR-10, ResNet-20, 2 epochs (CPU budget)" \
    "${COMMON[@]}" --seeds "$@"
}
modelnet() {
  nice -n 15 .venv/bin/bireid ablate --task pointcloud --dataset modelnet10 --data-root "$MODELNET_ROOT" \
    --epochs 5 --set data.num_points=512 --runs-dir "$OUT/modelnet10" \
    --title "Ablation: ModelNet10, PointNet, 5 epochs at 512 points (CPU budget)" "${COMMON[@]}" --seeds "$@"
}
done_seeds=()
for s in $SEEDS; do
  done_seeds+=("$s")
  cifar "${done_seeds[@]}"
  modelnet "${done_seeds[@]}"
done
