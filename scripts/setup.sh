#!/usr/bin/env bash
# Set up .venv with the package, its offline default stack and the test tools.
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# torch 2.13.0 resolves to a CPU build on the project's machines; set TORCH_SPEC to choose
# another build (for example a CUDA one on a GPU machine).
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade "pip>=25.1"
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "[setup] installing $TORCH_SPEC"
  "${PIP[@]}" install -q "$TORCH_SPEC"
fi
echo "[setup] installing langchain-icalign with the default stack and test tools"
"${PIP[@]}" install -q -e ".[defaults]" --group test --group lint
echo "[setup] done: .venv is ready"
