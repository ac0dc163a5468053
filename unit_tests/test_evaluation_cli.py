"""`icalign eval`: registered in the CLI; `style` and `judge` run on files (fake judge)."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda

from langchain_icalign.cli import main
from langchain_icalign.evaluation import EvalItem
from langchain_icalign.evaluation.cli import build_pairs


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_eval_is_a_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("judge", "nll", "style"):
        assert command in out


def test_style_command_reports_each_file(tmp_path, capsys):
    answers = write_jsonl(
        tmp_path / "answers.jsonl",
        [
            {"id": "1", "prompt": "q", "response": "- one\n- two", "finish_reason": "length"},
            {"id": "2", "prompt": "q", "response": "", "meta": {"finish_reason": "stop"}},
        ],
    )
    out = tmp_path / "style.json"
    assert main(["eval", "style", str(answers), "--json", str(out)]) == 0
    stats = json.loads(out.read_text())["answers.jsonl"]
    assert stats["n"] == 2
    assert stats["list_share"] == 0.5
    assert stats["empty_share"] == 0.5
    assert stats["length_share"] == 0.5
    assert "answers.jsonl" in capsys.readouterr().out


def test_build_pairs_matches_prompts_after_normalisation():
    baselines = [EvalItem("b1", "What is X?", "base 1"), EvalItem("b2", "Why Y?", "base 2")]
    candidates = [
        EvalItem("c1-s0", "what is x", "cand 1"),
        EvalItem("c1-s1", "What is X?", "cand 1b"),
        EvalItem("c3", "Unknown?", "cand 3"),
    ]
    pairs, unmatched = build_pairs(candidates, baselines)
    assert [(p.item_id, p.prompt_id, p.baseline) for p in pairs] == [
        ("c1-s0", "b1", "base 1"),
        ("c1-s1", "b1", "base 1"),
    ]
    assert unmatched == 1
    limited, _ = build_pairs(candidates, baselines[::-1], limit=1)
    assert limited == []


def test_judge_command_with_a_fake_judge(tmp_path, monkeypatch, capsys):
    import langchain.chat_models

    def fake_init_chat_model(model, **kwargs):
        assert model == "fake:judge"
        assert kwargs == {"temperature": 0.0}

        def score(messages):
            body = str(messages[-1].content)
            first = body.split("Assistant 1's Answer]\n", 1)[1]
            return AIMessage("9 2" if first.startswith("good") else "2 9")

        return RunnableLambda(score)

    monkeypatch.setattr(langchain.chat_models, "init_chat_model", fake_init_chat_model)
    cand = write_jsonl(
        tmp_path / "ours.jsonl",
        [{"id": f"c{i}", "prompt": f"q{i}", "response": "good answer"} for i in range(3)],
    )
    base = write_jsonl(
        tmp_path / "theirs.jsonl",
        [{"id": f"b{i}", "prompt": f"q{i}", "response": "meh"} for i in range(3)],
    )
    results, summary = tmp_path / "judgements.jsonl", tmp_path / "summary.json"
    argv = ["eval", "judge", str(cand), str(base), "--judge", "fake:judge"]
    argv += ["--results", str(results), "--json", str(summary)]
    assert main(argv) == 0
    report = json.loads(summary.read_text())
    assert report["counts"] == {"wins": 6, "ties": 0, "losses": 0, "unparsable": 0}
    assert report["candidate"] == "ours"
    assert report["win_rate"]["estimate"] == 1.0
    assert len(results.read_text().splitlines()) == 6
    assert main(argv) == 0  # resumes: nothing left to judge
    assert len(results.read_text().splitlines()) == 6
    assert "win-rate" in capsys.readouterr().out


BAD_OPTIONS = {
    "judge --limit 0": ["judge", "{a}", "{a}", "--judge", "x:y", "--limit", "0"],
    "judge --limit -1": ["judge", "{a}", "{a}", "--judge", "x:y", "--limit", "-1"],
    "judge --max-attempts 0": ["judge", "{a}", "{a}", "--judge", "x:y", "--max-attempts", "0"],
    "judge --concurrency 0": ["judge", "{a}", "{a}", "--judge", "x:y", "--concurrency", "0"],
    "judge --concurrency 1.5": ["judge", "{a}", "{a}", "--judge", "x:y", "--concurrency", "1.5"],
    "judge --temperature -1": ["judge", "{a}", "{a}", "--judge", "x:y", "--temperature", "-1"],
    "judge --temperature nan": ["judge", "{a}", "{a}", "--judge", "x:y", "--temperature", "nan"],
    "judge --judge blank": ["judge", "{a}", "{a}", "--judge", "  "],
    "nll --limit 0": ["nll", "{a}", "--limit", "0"],
    "nll --demo-tokens 0": ["nll", "{a}", "--demo-tokens", "0"],
    "nll --demo-tokens -5": ["nll", "{a}", "--demo-tokens", "-5"],
    "nll --max-reference-tokens 0": ["nll", "{a}", "--max-reference-tokens", "0"],
    "nll --near-threshold 1.5": ["nll", "{a}", "--near-threshold", "1.5"],
    "nll --near-threshold -0.1": ["nll", "{a}", "--near-threshold", "-0.1"],
    "nll --near-threshold inf": ["nll", "{a}", "--near-threshold", "inf"],
    "style --long-words 0": ["style", "{a}", "--long-words", "0"],
    "style --long-words x": ["style", "{a}", "--long-words", "x"],
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_bad_option_values_are_one_usage_line_before_anything_runs(case, tmp_path, capsys):
    answers = write_jsonl(tmp_path / "a.jsonl", [{"id": "1", "prompt": "q", "response": "r"}])
    argv = ["eval", *(arg.format(a=answers) for arg in BAD_OPTIONS[case])]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert "Traceback" not in err
    option = case.split()[1]
    assert option in errors[0]


def _bad_files(folder):
    (folder / "invalid.jsonl").write_text('{"prompt": "q", "response": "r"}\n{oops\n', "utf-8")
    (folder / "latin1.jsonl").write_bytes(b'{"prompt": "caf\xe9", "response": "r"}\n')
    deep = '{"prompt": "q", "response": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    (folder / "deep.jsonl").write_text(deep, "utf-8")
    (folder / "array.jsonl").write_text('[{"prompt": "q"}]\n', "utf-8")
    (folder / "no_prompt.jsonl").write_text('{"response": "r"}\n', "utf-8")
    locked = folder / "locked.jsonl"
    locked.write_text('{"prompt": "q", "response": "r"}\n', "utf-8")
    locked.chmod(0)
    (folder / "a_folder").mkdir()
    return folder


FILE_ERRORS = {
    "missing file": ("missing.jsonl", "No such file"),
    "invalid JSON": ("invalid.jsonl", "invalid.jsonl:2: invalid JSON"),
    "not UTF-8": ("latin1.jsonl", "latin1.jsonl:1: not UTF-8"),
    "nested too deeply": ("deep.jsonl", "deep.jsonl:1: JSON nested too deeply"),
    "not an object": ("array.jsonl", "array.jsonl:1: expected a JSON object"),
    "no prompt": ("no_prompt.jsonl", "no_prompt.jsonl:1: no prompt"),
    "unreadable file": ("locked.jsonl", "locked.jsonl"),
    "a folder": ("a_folder", "a_folder"),
}


@pytest.mark.parametrize("command", ["style", "judge", "nll"])
@pytest.mark.parametrize("case", sorted(FILE_ERRORS))
def test_file_errors_are_one_line_on_stderr_and_exit_1(
    command, case, tmp_path, capsys, monkeypatch
):
    import pathlib

    if case == "no prompt" and command == "style":
        pytest.skip("style reads answers only")
    folder = _bad_files(tmp_path)
    real_open = pathlib.Path.open

    def open_refusing_locked(self, *args, **kwargs):
        if self.name == "locked.jsonl":  # chmod 0 does not stop root
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "open", open_refusing_locked)
    name, expected = FILE_ERRORS[case]
    bad = str(folder / name)
    argv = {
        "style": ["eval", "style", bad],
        "judge": ["eval", "judge", bad, bad, "--judge", "fake:judge"],
        "nll": ["eval", "nll", bad, "--results", str(tmp_path / "r.jsonl")],
    }[command]
    assert main(argv) == 1
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1, captured.err
    assert errors[0].startswith("icalign: error: ")
    assert expected in errors[0]
    assert "error" not in captured.out
    assert "Traceback" not in captured.err
