#!/usr/bin/env bash
# The offline demo: set up, then run the whole DVC pipeline on synthetic faces
# at 32x32 with a short training budget (64 pairs, 2 epochs), as a DVC
# experiment named "demo". The budget exercises every stage in minutes on a
# 2-core CPU; it is not enough to train the models well (see README).
# Afterwards the workspace holds the demo params, models, metrics, report and
# MLflow runs (mlflow.db).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate
dvc exp run --name demo --force \
  -S data.source=synthetic -S data.synthetic.count=64 -S image_size=32 -S epochs=2 -S batch_size=8 \
  -S split.protocol=random "$@"
echo
echo "demo: done. Results:"
echo "  metrics/*.json     (dvc metrics show)"
echo "  reports/report.md  reports/report.html  reports/grid.png"
echo "  mlflow ui          (then open http://127.0.0.1:5000)"
