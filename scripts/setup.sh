#!/usr/bin/env bash
# Create .venv (if missing) and install facesketch with its web page (the app extra) and test tools into it.
# Safe to re-run: pip skips what is already installed.
#   --browser   also install Debian's Chromium (apt-get, as root or through sudo) when it is missing:
#               the web page's test drives it; no tool ever downloads a browser of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "setup: installing Debian's chromium for the browser test"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
echo "setup: installing facesketch and its dependencies (TensorFlow is ~600 MB the first time)"
# FACESKETCH_EXTRAS: the optional extras to install (default: app,test,identity,jax; the GPU recipe adds gpu;
# without identity the identity metric is absent and the report says why; without jax the JAX tests skip)
.venv/bin/python -m pip install --quiet --progress-bar off -e ".[${FACESKETCH_EXTRAS:-app,test,identity,jax}]"
echo "setup: done. Activate with: source .venv/bin/activate"
