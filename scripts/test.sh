#!/usr/bin/env bash
# Run the whole test suite offline: lint, types, unit tests, then integration tests on the
# real default stack (the first run converts the default model into the cache, ~2 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check langchain_icalign unit_tests integration_tests examples benchmarks
.venv/bin/ruff format --check langchain_icalign unit_tests integration_tests examples benchmarks
.venv/bin/mypy
# Two workers, one torch thread each (the whole run: 12 min here against 22 in one process
# with two threads, measured together with test trims, so the split is not known). A file's
# tests stay together on one worker (module fixtures load the model once); each worker has
# its own cache root sharing the converted models (integration_tests/conftest.py).
# ICALIGN_TEST_WORKERS=0 runs in this process instead.
WORKERS=${ICALIGN_TEST_WORKERS:-2}
ARGS=(unit_tests integration_tests -p no:cacheprovider)
if [ "$WORKERS" != "0" ]; then
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
  ARGS+=(-n "$WORKERS" --dist loadfile)
fi
.venv/bin/python -m pytest "${ARGS[@]}" "$@"
