#!/usr/bin/env bash
# Issue 16's GPU recipes (not run here: the development machine has no GPU). Each is one `bireid ablate` over the
# five variants x 3 seeds (real, the 1-bit baseline bireid-none, + KR-GAL, + FR-GAL, both), JOBS trainings at once
# on the GPU(s) (with several GPUs the runs are spread over them); re-running continues where it stopped.
#
#   CIFAR_BIN=/data/cifar-10-binary.tar.gz MODELNET40=/data/ModelNet40 JOBS=5 benchmarks/tasks_gpu.sh [cifar|modelnet]
#
# CIFAR-10: ResNet-18 with the 3x3 CIFAR stem (last stride 2, FR-GAL from stage 4 to stages 1-3) at the standard
# 200-epoch budget, batch 128, Adam 1e-3 with cosine decay (bireid's default optimizer; weight decay 5e-4 on real
# weights, 0 on latent binary weights), AMP. ModelNet40: PointNet at 1,024 points (OFF meshes sampled by area),
# 200 epochs, batch 32. Expect roughly 1-2 GPU-minutes per CIFAR epoch per run on a recent GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-5}
VARIANTS="real bireid-none bireid-kr bireid-fr bireid-both"
what=${1:-all}
if [[ $what == cifar || $what == all ]]; then
  : "${CIFAR_BIN:?set CIFAR_BIN to cifar-10-binary.tar.gz (or its folder)}"
  .venv/bin/bireid ablate --task classification --dataset cifar10 --data-root "$CIFAR_BIN" --epochs 200 \
    --variants $VARIANTS --seeds 0 1 2 --jobs "$JOBS" --device cuda --set model.arch=resnet18 \
    --set model.stem=cifar --set model.last_stride=2 --set "gal.fr_stages=[1,2,3]" --set data.workers=4 \
    --runs-dir runs/issue16-gpu/cifar10-resnet18 --out benchmarks/RESULTS.md \
    --title "Ablation: CIFAR-10, ResNet-18 (CIFAR stem), 200 epochs (GPU)"
fi
if [[ $what == modelnet || $what == all ]]; then
  : "${MODELNET40:?set MODELNET40 to the ModelNet40 folder (OFF meshes)}"
  .venv/bin/bireid ablate --task pointcloud --dataset modelnet40 --data-root "$MODELNET40" --epochs 200 \
    --variants $VARIANTS --seeds 0 1 2 --jobs "$JOBS" --device cuda --set data.workers=4 \
    --runs-dir runs/issue16-gpu/modelnet40 --out benchmarks/RESULTS.md \
    --title "Ablation: ModelNet40, PointNet, 200 epochs (GPU)"
fi
