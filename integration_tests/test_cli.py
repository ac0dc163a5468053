"""The icalign command end to end, in subprocesses, on the real default stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def icalign(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "langchain_icalign.cli", *args],
        capture_output=True,
        text=True,
        env=ENV,
        input=stdin,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demos") / "demos.jsonl"
    records = [
        {
            "prompt": "How do I water a cactus?",
            "response": "Sparingly: soak the soil, then let it dry out fully.",
        },
        {"prompt": "What rhymes with moon?", "response": "Spoon, tune, June, dune and soon."},
        {"prompt": "What rhymes with moon?", "response": "Spoon, tune, June, dune and soon."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_every_command_has_help():
    for args in ([], ["chat"], ["index"], ["demos"]):
        done = icalign(*args, "--help")
        assert done.returncode == 0, done.stderr
        assert "usage: icalign" in done.stdout


def test_index_twice_adds_nothing_the_second_time(tmp_path, demo_file):
    store, report = str(tmp_path / "store"), tmp_path / "report.json"
    first = icalign("index", str(demo_file), "--store", store, "--report", str(report))
    assert first.returncode == 0, first.stderr
    counts = json.loads(report.read_text())["counts"]
    assert (counts["added"], counts["duplicates"]) == (2, 1)
    assert "added" in first.stderr  # the table people read
    second = icalign("index", str(demo_file), "--store", store, "--report", str(report))
    assert second.returncode == 0, second.stderr
    counts = json.loads(report.read_text())["counts"]
    assert (counts["added"], counts["already_stored"], counts["total_in_store"]) == (0, 2, 2)


def test_index_bad_file_names_file_and_line_and_writes_nothing(tmp_path, demo_file):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"prompt": "ok", "response": "fine"}\n{"prompt": "no answer"}\n', encoding="utf-8"
    )
    store = str(tmp_path / "store")
    done = icalign("index", str(demo_file), str(bad), "--store", store)
    assert done.returncode == 1
    assert f"{bad}:2: missing field 'response'" in done.stderr
    assert not (tmp_path / "store").exists() or "now holds" not in done.stderr


def test_demos_shows_selection_and_prompt(tmp_path, demo_file):
    store = str(tmp_path / "store")
    assert icalign("index", str(demo_file), "--store", store).returncode == 0
    done = icalign("demos", "How often should I water my cactus?", "--store", store)
    assert done.returncode == 0, done.stderr
    assert "How do I water a cactus?" in done.stdout
    assert "score" in done.stdout
    assert done.stdout.rstrip().endswith("Here\u2019s an example answer:")


def test_chat_one_shot_streams_an_answer():
    done = icalign(
        "chat", "What is the capital of France?", "--max-new-tokens", "12", "--seed", "0"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "Question:" not in done.stdout


def test_chat_interactive_keeps_history():
    done = icalign(
        "chat",
        "--format",
        "urial",
        "--max-new-tokens",
        "8",
        "--temperature",
        "0",
        stdin="Name a fruit.\nAnother one?\n/exit\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("assistant> ") == 2


EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_runs_offline(example):
    env = {**ENV, "ICALIGN_MAX_NEW_TOKENS": "8"}
    done = subprocess.run(
        [sys.executable, str(example)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip()


def test_agent_example_calls_the_tool_and_answers_from_its_result():
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[1] / "examples" / "agent.py")],
        capture_output=True,
        text=True,
        env={**ENV, "ICALIGN_MAX_NEW_TOKENS": "48"},
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert any("'name': 'get_weather'" in line for line in lines if line.startswith("ai: "))
    assert "tool: light rain, 11 °C" in lines
    assert lines[-1].startswith("ai: ")
    assert "11" in lines[-1]  # the answer uses the tool's result
