#!/usr/bin/env bash
# Run the whole test suite offline: lint, types, unit tests, then integration tests on the
# real default stack (the first run converts the default model into the cache, ~2 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check langchain_icalign unit_tests integration_tests examples benchmarks
.venv/bin/ruff format --check langchain_icalign unit_tests integration_tests examples benchmarks
.venv/bin/mypy
# Two workers, one torch thread each: on two cores this beats one worker with two threads
# (much of a test is Python, subprocess start-up and I/O, which one thread leaves idle).
# A file's tests stay together on one worker (module fixtures load the model once); each
# worker has its own cache root sharing the converted models (integration_tests/conftest.py).
# ICALIGN_TEST_WORKERS=0 runs in this process instead.
WORKERS=${ICALIGN_TEST_WORKERS:-2}
if [ "$WORKERS" = "0" ]; then
  .venv/bin/python -m pytest unit_tests integration_tests -p no:cacheprovider "$@"
else
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} .venv/bin/python -m pytest unit_tests integration_tests \
    -p no:cacheprovider -n "$WORKERS" --dist loadfile "$@"
fi
