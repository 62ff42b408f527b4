#!/usr/bin/env bash
# The offline demo: set up, then run the whole DVC pipeline on synthetic faces
# at 64x64 with a short training budget, as a DVC experiment named "demo".
# Afterwards the workspace holds the demo params, models, metrics, report and
# MLflow runs (mlflow.db).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate
dvc exp run --name demo --force \
  -S data.source=synthetic -S image_size=64 -S epochs=8 -S batch_size=16 \
  -S split.protocol=random "$@"
echo
echo "demo: done. Results:"
echo "  metrics/*.json     (dvc metrics show)"
echo "  reports/report.md  reports/report.html  reports/grid.png"
echo "  mlflow ui          (then open http://127.0.0.1:5000)"
