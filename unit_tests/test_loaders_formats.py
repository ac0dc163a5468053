"""Each dataset format loads from a few records of that format, and is detected."""

from __future__ import annotations

import json
import logging
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from langchain_icalign import AlignmentDemo
from langchain_icalign.loaders import (
    RECORD_FORMATS,
    DemoFileError,
    LoadReport,
    detect_container,
    load_demos,
    load_jsonl,
    load_prompts,
)

FIXTURES = Path(__file__).parent / "fixtures"
POOLS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pools"
EVAL = POOLS.parent / "eval"

needs_pools = pytest.mark.skipif(
    not POOLS.is_dir(), reason=f"{POOLS} is absent (shared test data; a user's clone has none)"
)


def _load(name: str, **kwargs: Any) -> LoadReport:
    return load_demos(FIXTURES / name, **kwargs)


# -- prompt/response, from the real pools -------------------------------------------------


@needs_pools
@pytest.mark.parametrize(
    ("name", "records"),
    [
        ("alpaca_eval_gpt4.jsonl", 805),
        ("lima_train_NONCOMMERCIAL.jsonl", 1000),
        ("dolly15k_open_qa.jsonl", 3742),
        ("self_instruct_seed_tasks.jsonl", 175),
        ("urial_demos.jsonl", 80),
    ],
)
def test_pools_load_as_prompt_response(name: str, records: int) -> None:
    report = load_demos(POOLS / name)
    assert report.format == "prompt_response"
    assert report.detected is not None
    assert "'prompt'" in report.detected
    assert report.records == records
    assert len(report.demos) == records
    assert not report.invalid
    first = json.loads((POOLS / name).read_text(encoding="utf-8").splitlines()[0])
    assert report.demos[0].prompt == first["prompt"]
    assert report.demos[0].response == first["response"]
    # Ids derive from content; the record's own id is kept in metadata.
    assert (
        report.demos[0].id == AlignmentDemo(prompt=first["prompt"], response=first["response"]).id
    )
    assert report.demos[0].metadata["source_id"] == first["id"]


@needs_pools
def test_pool_with_empty_answers_reports_each_line() -> None:
    path = POOLS / "hh_rlhf_harmless_base_test_singleturn.jsonl"
    with pytest.raises(DemoFileError, match=r"hh_rlhf.*:\d+: field 'response' is empty"):
        load_demos(path)
    report = load_demos(path, skip_invalid=True)
    assert len(report.demos) + len(report.invalid) == report.records == 662
    lines = path.read_text(encoding="utf-8").splitlines()
    for error in report.invalid:
        assert json.loads(lines[error.line - 1])["response"].strip() == ""


@needs_pools
def test_lima_test_prompts_load_as_evaluation_prompts() -> None:
    prompts = load_prompts(EVAL / "lima_test_prompts.jsonl")
    assert len(prompts) == 300
    with pytest.raises(DemoFileError, match="field 'response' is null"):
        load_demos(EVAL / "lima_test_prompts.jsonl")


def test_load_jsonl_keeps_record_ids_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"id": "x1", "q": "Hi?", "a": "Hello!", "turns": [["a", "b"]]}))
    report = load_jsonl(path, prompt_key="q", response_key="a")
    assert [d.id for d in report.demos] == ["x1"]
    assert report.demos[0].turns == [("a", "b")]


# -- fixtures of the other formats --------------------------------------------------------


def test_alpaca_json_array() -> None:
    report = _load("alpaca.json")
    assert (report.format, report.records, len(report.demos)) == ("alpaca", 4, 4)
    assert "instruction" in (report.detected or "")
    assert report.demos[0].prompt == "Give three tips for keeping a sourdough starter healthy."
    assert report.demos[1].prompt == (
        "Translate the sentence into French.\n\nThe library opens at nine in the morning."
    )
    assert report.demos[1].response.startswith("La bibliothèque")


def test_dolly_keeps_category_and_context() -> None:
    report = _load("dolly.jsonl")
    assert (report.format, len(report.demos)) == ("dolly", 3)
    assert report.demos[0].prompt.startswith("When was the Eiffel Tower finished?\n\nThe Eiffel")
    assert [d.metadata["category"] for d in report.demos] == [
        "closed_qa",
        "brainstorming",
        "open_qa",
    ]


def test_sharegpt_multi_turn_and_system() -> None:
    report = _load("sharegpt.json")
    assert (report.format, len(report.demos)) == ("sharegpt", 3)
    first = report.demos[0]
    assert first.turns == [
        (
            "How long should I boil an egg for a runny yolk?",
            "About six minutes in gently boiling water, then move it to cold water.",
        )
    ]
    assert first.prompt == "And for a firm yolk?"
    assert first.response.startswith("Nine to ten minutes")
    assert first.metadata["system"] == "You are a patient cooking assistant."
    assert first.metadata["source_id"] == "sg-001"
    # A trailing unanswered message is left out: the demo ends at the last answer.
    assert report.demos[2].prompt == "Suggest a name for a grey cat."
    assert report.demos[2].turns == []


def test_openai_messages() -> None:
    report = _load("messages.jsonl")
    assert (report.format, len(report.demos)) == ("messages", 3)
    assert report.demos[0].metadata == {"system": "Answer in one sentence."}
    assert report.demos[1].turns == [
        ("Convert 5 kilometres to miles.", "5 kilometres is about 3.1 miles.")
    ]
    assert report.demos[1].prompt == "And 10 kilometres?"
    assert report.demos[2].prompt == "Give me a synonym for happy."


def test_lima_conversations_of_strings() -> None:
    report = _load("lima.jsonl")
    assert (report.format, len(report.demos)) == ("lima", 3)
    assert report.demos[1].turns[0][0] == "Can you recommend a first programming language?"
    assert report.demos[1].prompt == "Why not JavaScript?"
    assert report.demos[0].metadata == {"source": "stackexchange"}


def test_oasst_follows_best_ranked_reply() -> None:
    report = _load("oasst_messages.jsonl")
    assert report.format == "oasst"
    english = report.demos[0]
    # rank 0 (m3) wins over rank 1 (m2); the deleted reply is never taken.
    assert english.turns == [
        (
            "What are good habits for learning a new language?",
            "Study a little every day, speak with native speakers early, and read things "
            "you enjoy in the language.",
        )
    ]
    assert english.prompt == "How many minutes a day is enough?"
    assert english.metadata == {"lang": "en", "source_id": "m1"}
    assert report.dropped == {"no assistant reply": 1}  # the tomato question has no answer


def test_oasst_language_filter_and_max_turns() -> None:
    report = _load("oasst_messages.jsonl", languages={"de"})
    assert [d.prompt for d in report.demos] == ["Wie koche ich Reis?"]
    assert report.dropped["language not selected"] == 2
    short = _load("oasst_messages.jsonl", languages={"en"}, max_turns=1)
    assert short.demos[0].turns == []
    assert short.demos[0].prompt == "What are good habits for learning a new language?"


def test_oasst_nested_trees() -> None:
    report = _load("oasst_trees.jsonl")
    assert report.format == "oasst"
    assert [d.response for d in report.demos] == [
        "A prime number is a whole number above 1 whose only divisors are 1 and itself, such "
        "as 2, 3, 5 and 7."
    ]


def test_language_filter_needs_oasst() -> None:
    with pytest.raises(ValueError, match="language filter"):
        _load("alpaca.json", languages={"en"})


def test_column_mapping_and_metadata_fields() -> None:
    with pytest.raises(DemoFileError, match="cannot detect the demo format.*question"):
        _load("qa_custom.jsonl")
    report = _load(
        "qa_custom.jsonl",
        columns={"prompt": "question", "response": "answer", "id": "uid"},
        metadata_fields=["topic"],
    )
    assert report.format == "prompt_response"
    assert [d.metadata["topic"] for d in report.demos] == ["science", "books"]
    assert report.demos[1].prompt == "Who wrote Pride and Prejudice?"
    assert report.demos[0].metadata["source_id"] == "1"


def test_mapped_field_errors_name_the_files_field(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "Hi?", "answer": 3}\n')
    with pytest.raises(DemoFileError, match=r"qa.jsonl:1: field 'answer' must be a string"):
        load_demos(path, columns={"prompt": "question", "response": "answer"})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("alpaca.json", "alpaca"),
        ("dolly.jsonl", "dolly"),
        ("sharegpt.json", "sharegpt"),
        ("messages.jsonl", "messages"),
        ("lima.jsonl", "lima"),
        ("oasst_messages.jsonl", "oasst"),
        ("oasst_trees.jsonl", "oasst"),
    ],
)
def test_detection_is_reported_and_logged(
    name: str, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="langchain_icalign.loaders"):
        report = _load(name)
    assert report.format == expected
    assert report.detected
    assert f"detected {expected} format" in caplog.text
    assert expected in report.summary()
    assert "detected" in report.summary()
    # The given format gives the same demos, and says it was given.
    given = _load(name, format=expected)
    assert given.detected is None
    assert [d.id for d in given.demos] == [d.id for d in report.demos]


def test_every_format_has_a_fixture_or_pool_test() -> None:
    assert set(RECORD_FORMATS) == {
        "prompt_response",
        "alpaca",
        "dolly",
        "sharegpt",
        "messages",
        "lima",
        "oasst",
    }


def test_format_aliases_and_unknown_format() -> None:
    assert _load("messages.jsonl", format="openai").format == "messages"
    with pytest.raises(ValueError, match="unknown demo format 'csv'"):
        _load("messages.jsonl", format="csv")


def test_ids_are_content_derived_and_stable() -> None:
    first, second = _load("sharegpt.json"), _load("sharegpt.json")
    assert [d.id for d in first.demos] == [d.id for d in second.demos]
    kept = _load("sharegpt.json", keep_record_ids=True)
    assert [d.id for d in kept.demos] == ["sg-001", "sg-002", "sg-003"]


def test_limit_stops_early() -> None:
    assert len(_load("dolly.jsonl", limit=2).demos) == 2


def test_records_in_memory_and_json_lines_named_json(tmp_path: Path) -> None:
    records = [{"instruction": "Say hi.", "input": "", "output": "Hi!"}]
    assert load_demos(records).format == "alpaca"
    path = tmp_path / "export.json"  # JSON Lines in a .json file, as HF exports write
    path.write_text("\n".join(json.dumps(r) for r in records * 2) + "\n")
    assert detect_container(path) == "jsonl"
    assert len(load_demos(path).demos) == 2
    single = tmp_path / "one.json"
    single.write_text(json.dumps(records[0], indent=2))
    assert detect_container(single) == "json"
    assert len(load_demos(single).demos) == 1


# -- Hugging Face datasets by name ---------------------------------------------------------


def test_hf_dataset_needs_the_datasets_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails, as when not installed
    with pytest.raises(ImportError, match=r"pip install 'langchain-icalign\[loaders\]'"):
        load_demos("hf:OpenAssistant/oasst1")


def test_hf_dataset_rows_load_with_the_same_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        json.loads(line) for line in (FIXTURES / "oasst_messages.jsonl").read_text().splitlines()
    ]
    calls: list[tuple[Any, ...]] = []

    def load_dataset(name: str, config: str | None = None, *, split: str) -> list[dict[str, Any]]:
        calls.append((name, config, split))
        return rows

    fake = types.ModuleType("datasets")
    fake.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    report = load_demos("hf:OpenAssistant/oasst1", languages={"en"}, split="validation")
    assert calls == [("OpenAssistant/oasst1", None, "validation")]
    assert report.source == "hf:OpenAssistant/oasst1[validation]"
    assert report.format == "oasst"
    assert len(report.demos) == 1


def test_hf_dataset_offline_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def load_dataset(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Couldn't reach the Hugging Face Hub")

    fake = types.ModuleType("datasets")
    fake.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(DemoFileError, match=r"hf:someone/data\[train\]: cannot load.*network"):
        load_demos("hf:someone/data")


def test_hf_dataset_bad_row_names_the_row(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("datasets")
    fake.load_dataset = lambda *a, **k: [  # type: ignore[attr-defined]
        {"instruction": "Hi", "input": "", "output": "Hello"},
        {"instruction": "Bye", "input": "", "output": None},
    ]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(DemoFileError, match=r"hf:x/y\[train\]: row 2: field 'output' is null"):
        load_demos("hf:x/y")
