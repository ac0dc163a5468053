#!/usr/bin/env bash
# Run the whole test suite offline: lint, types, unit tests, then integration tests on the
# real default stack (the first run converts the default model into the cache, ~2 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check langchain_icalign unit_tests integration_tests examples benchmarks
.venv/bin/ruff format --check langchain_icalign unit_tests integration_tests examples benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest unit_tests integration_tests -p no:cacheprovider "$@"
