#!/usr/bin/env bash
# The published study at its own settings on one GPU: every model on both tasks,
# 256x256 RGB, 200 epochs, batch 8, the seeded 80/20 random split, as the DVC
# experiment "study-gpu". XLA and mixed_float16 switch on by themselves on a GPU
# (params.yaml: runtime). Extra arguments go to `dvc exp run`, e.g.
#
#   bash scripts/study_gpu.sh                                   # the CUHK archives from their site
#   bash scripts/study_gpu.sh -S data.source=archive_dir -S data.archive_dir=/data/cuhk
#
# Without a visible GPU it stops, unless --cpu-ok comes first (to prove the path
# with a short budget, e.g. --cpu-ok -S epochs=1); the train stages print their
# time estimate after the first steps either way.
#
# --backend jax trains under Keras' JAX backend (runtime.backend: jax), for a GPU
# whose CUDA TensorFlow's build does not support (CUDA 13: the jax-cuda extra's
# wheels bring their own CUDA libraries); --backend tensorflow (the default) uses
# TensorFlow's CUDA 12 build (the gpu extra). Without a package index at all, use
# the offline bundle instead (docs/gpu.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cpu_ok=0
backend=tensorflow
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-ok) cpu_ok=1; shift ;;
    --backend) backend="${2:-}"; shift 2 ;;
    *) break ;;
  esac
done
case "$backend" in
  tensorflow) gpu_extra=gpu ;;
  jax) gpu_extra=jax-cuda ;;
  *) echo "study_gpu: --backend '$backend' is not valid; expected tensorflow or jax" >&2; exit 2 ;;
esac
# The CUDA libraries (several GB) only where a GPU driver answers.
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  FACESKETCH_EXTRAS=app,test,identity,$gpu_extra bash scripts/setup.sh
else
  bash scripts/setup.sh
fi
source .venv/bin/activate
gpus=$(python -c "from facesketch.core import backend as b; b.select('$backend'); b.init(); print(len(b.gpus()))")
if [ "$gpus" = 0 ]; then
  echo "study_gpu: Keras' $backend backend sees no GPU (nvidia-smi? the driver's CUDA version?)." >&2
  if [ "$cpu_ok" = 0 ]; then
    echo "study_gpu: on a CPU the study takes days (see docs/speed.md); pass --cpu-ok to run anyway." >&2
    exit 2
  fi
fi
echo "study_gpu: $gpus GPU(s) under Keras' $backend backend; running the study as the DVC experiment study-gpu"
start=$SECONDS
dvc exp run --name study-gpu --force \
  -S image_size=256 -S epochs=200 -S batch_size=8 -S split.protocol=random -S runtime.backend=$backend "$@"
echo
echo "study_gpu: done in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s; the results table (reports/report.md):"
sed -n '/^| task/,/^$/p' reports/report.md
