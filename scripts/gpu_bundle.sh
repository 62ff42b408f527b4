#!/usr/bin/env bash
# Build the offline study bundle (src/facesketch/offline) for a GPU machine with JAX but no TensorFlow
# and no package index: the study's settings (256 px, 200 epochs, batch 8, every model and task, the
# seeded random split) over the CUHK archives in ARCHIVE_DIR, into .gpu-bundle/ (git-ignored, under
# 60 MiB). docs/gpu.md gives the one command that runs it there and the one that scores it back here.
#
#   bash scripts/gpu_bundle.sh /folder/with/CUHK_training_photo.zip/and/sketch.zip
set -euo pipefail
cd "$(dirname "$0")/.."
archives=$(cd "${1:?usage: scripts/gpu_bundle.sh ARCHIVE_DIR}" && pwd)
bash scripts/setup.sh
source .venv/bin/activate
dvc exp run --name gpu-bundle-data --force split \
  -S image_size=256 -S epochs=200 -S batch_size=8 -S split.protocol=random \
  -S data.source=archive_dir -S data.archive_dir="$archives" -S 'data.cuhk.subsets=[train]'
python -m facesketch.offline build .gpu-bundle --workspace .
