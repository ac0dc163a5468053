"""The icalign command end to end, in subprocesses, on the real default stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from langchain_icalign.cli import main

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def icalign(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "langchain_icalign.cli", *args],
        capture_output=True,
        text=True,
        env=ENV if env is None else env,
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


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, demo_file) -> tuple[str, subprocess.CompletedProcess[str], Path]:
    """The demo file indexed once into a new store: (store, the run, its report)."""
    folder = tmp_path_factory.mktemp("indexed")
    store, report = str(folder / "store"), folder / "report.json"
    done = icalign("index", str(demo_file), "--store", store, "--report", str(report))
    return store, done, report


def test_index_twice_adds_nothing_the_second_time(indexed, demo_file):
    store, first, report = indexed
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


def test_demos_shows_selection_and_prompt(indexed):
    store, first, _ = indexed
    assert first.returncode == 0, first.stderr
    done = icalign("demos", "How often should I water my cactus?", "--store", store)
    assert done.returncode == 0, done.stderr
    assert "How do I water a cactus?" in done.stdout
    assert "score" in done.stdout
    # The default format is URIAL's: the prompt ends by opening the answer block.
    assert done.stdout.rstrip().endswith("# Answer:\n```")


def test_chat_one_shot_streams_an_answer():
    done = icalign(
        "chat", "What is the capital of France?", "--max-new-tokens", "12", "--seed", "0"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert "Question:" not in done.stdout


def test_interactive_chat_answers_each_turn_reports_an_error_and_goes_on():
    too_long = "hello " * 40_000  # more tokens than the model's context window
    done = icalign(
        "chat",
        "--format",
        "urial",
        "--max-new-tokens",
        "8",
        "--temperature",
        "0",
        stdin=f"Name a fruit.\n{too_long}\nAnother one?\n/exit\n",
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("icalign: error:") == 1
    assert done.stdout.count("assistant> ") == 3  # the failed turn, then one more answer


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    (folder / "ok.jsonl").write_text('{"prompt": "a", "response": "b"}\n', encoding="utf-8")
    nested = '{"prompt": ' + "[" * 100_000 + "]" * 100_000 + ', "response": "x"}\n'
    (folder / "deep.jsonl").write_text(nested, encoding="utf-8")
    (folder / "deep.json").write_text("[" + nested + "]", encoding="utf-8")
    (folder / "a_file").write_text("not a store", encoding="utf-8")
    return folder


USER_ERRORS = {
    "empty demos question": (["demos", ""], 2),
    "blank chat question": (["chat", "   "], 2),
    "huge max-new-tokens": (["chat", "hi", "--max-new-tokens", "100000"], 1),
    "zero max-new-tokens": (["chat", "hi", "--max-new-tokens", "0"], 2),
    "store is a file": (["demos", "hi", "--store", "{dir}/a_file"], 1),
    "deep JSONL": (["index", "{dir}/deep.jsonl", "--store", "{dir}/s1"], 1),
    "deep JSON array": (["index", "{dir}/deep.json", "--store", "{dir}/s2"], 1),
    "a folder as demo file": (["index", "{dir}", "--store", "{dir}/s3"], 1),
    "negative batch size": (["index", "{dir}/ok.jsonl", "--batch-size", "-1"], 2),
    "zero batch size": (["index", "{dir}/ok.jsonl", "--batch-size", "0"], 2),
    "zero limit": (["index", "{dir}/ok.jsonl", "--limit", "0"], 2),
    "negative limit": (["index", "{dir}/ok.jsonl", "--limit", "-1"], 2),
    "threshold above 1": (["index", "{dir}/ok.jsonl", "--dedup-threshold", "2"], 2),
    "cache folder under a file": (["chat", "hi", "--home", "{dir}/a_file/home"], 1),
    "eval: missing file": (["eval", "style", "{dir}/missing.jsonl"], 1),
    "eval: deep JSONL": (["eval", "nll", "{dir}/deep.jsonl"], 1),
    "eval: a folder": (["eval", "judge", "{dir}", "{dir}/ok.jsonl", "--judge", "x:y"], 1),
    "eval: threshold above 1": (["eval", "nll", "{dir}/ok.jsonl", "--near-threshold", "2"], 2),
    "eval: zero concurrency": (
        [
            "eval",
            "judge",
            "{dir}/ok.jsonl",
            "{dir}/ok.jsonl",
            "--judge",
            "x:y",
            "--concurrency",
            "0",
        ],
        2,
    ),
}


@pytest.mark.parametrize("case", sorted(USER_ERRORS))
def test_user_errors_are_one_line_and_a_nonzero_exit_never_a_traceback(
    case, bad_inputs, capfd, monkeypatch
):
    # In this process (`main` is what the `icalign` script runs): a subprocess each would
    # spend most of its time importing; test_every_command_has_help runs the real command.
    args, code = USER_ERRORS[case]
    args = [arg.format(dir=bad_inputs) for arg in args]
    if "--home" in args:
        at = args.index("--home")
        monkeypatch.setenv("ICALIGN_HOME", args[at + 1])
        args = args[:at] + args[at + 2 :]
    try:
        returncode = main(args)
    except SystemExit as usage_error:  # argparse's own exit on a usage error
        returncode = usage_error.code
    stderr = capfd.readouterr().err
    assert returncode == code, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, stderr
    if "home" in case:
        assert "ICALIGN_HOME" in errors[0]


def test_deep_jsonl_lines_are_skipped_with_skip_invalid(bad_inputs):
    done = icalign(
        "index",
        str(bad_inputs / "deep.jsonl"),
        str(bad_inputs / "ok.jsonl"),
        "--store",
        str(bad_inputs / "s4"),
        "--skip-invalid",
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    assert "nested too deeply" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
# agent.py runs in its own test below, which also checks what it prints.
EXAMPLES = sorted(e for e in EXAMPLES_DIR.glob("*.py") if e.name != "agent.py")


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
        [sys.executable, str(EXAMPLES_DIR / "agent.py")],
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
