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
