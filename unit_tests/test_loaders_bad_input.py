"""Bad demo files: clear errors naming file and line, skip_invalid, and nothing half-written."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_icalign import AlignmentDemo, DemoStore
from langchain_icalign.loaders import (
    DemoFileError,
    index_sources,
    load_demos,
    load_jsonl,
    read_json_records,
    read_jsonl_records,
)
from langchain_icalign.loaders.report import reason_kind

GOOD = {"prompt": "How do I boil an egg?", "response": "Boil it for nine minutes."}


def _jsonl(tmp_path: Path, *lines: str | bytes, name: str = "demos.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(
        b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines)
    )
    return path


def _good(n: int = 0) -> str:
    return json.dumps({"prompt": f"Question {n}?", "response": f"Answer {n}."})


# -- each kind of bad record names file and line ------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "Hi?", "response": "Hello!"', r"invalid JSON \(Expecting ',' delimiter"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('"just a string"', "expected a JSON object, got str"),
        ('{"response": "Hello!"}', "missing field 'prompt'"),
        ('{"prompt": "Hi?"}', "missing field 'response'"),
        ('{"prompt": "Hi?", "response": null}', "field 'response' is null"),
        ('{"prompt": "   ", "response": "Hello!"}', "field 'prompt' is empty"),
        ('{"prompt": "Hi?", "response": ""}', "field 'response' is empty"),
        ('{"prompt": 42, "response": "Hello!"}', "field 'prompt' must be a string, got int"),
        ('{"prompt": "Hi?", "response": ["a"]}', "field 'response' must be a string, got list"),
        ('{"prompt": "Hi?", "response": "x", "metadata": 3}', "field 'metadata' must be an object"),
        ('{"prompt": "Hi?", "response": "x", "turns": [["a"]]}', "'turns' item 0 must be a"),
        ('{"prompt": "Hi?", "response": "x", "metadata": {"_demo": 1}}', "reserved"),
    ],
)
def test_bad_record_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = _jsonl(tmp_path, _good(1), _good(2), line, _good(4))
    with pytest.raises(DemoFileError, match=message) as caught:
        load_demos(path)
    assert str(caught.value.path) == str(path)
    assert caught.value.line == 3
    assert str(caught.value).startswith(f"{path}:3: ")
    report = load_demos(path, skip_invalid=True)
    assert [d.prompt for d in report.demos] == ["Question 1?", "Question 2?", "Question 4?"]
    assert [(e.line, e.reason) for e in report.invalid] == [(3, caught.value.reason)]


@pytest.mark.parametrize(
    ("name", "record", "message"),
    [
        ("alpaca", {"instruction": "Hi", "input": 3, "output": "x"}, "'input' must be a string"),
        ("alpaca", {"instruction": "", "input": "", "output": "x"}, "'instruction' is empty"),
        ("dolly", {"instruction": "Hi", "context": "", "response": None}, "'response' is null"),
        ("sharegpt", {"conversations": "hello"}, "'conversations' must be a list"),
        ("sharegpt", {"conversations": []}, "'conversations' is empty"),
        (
            "sharegpt",
            {"conversations": [{"from": "human", "value": "Hi"}, {"from": "tool", "value": "x"}]},
            "unsupported speaker 'tool'",
        ),
        (
            "sharegpt",
            {"conversations": [{"from": "gpt", "value": "Hi"}, {"from": "human", "value": "x"}]},
            "starts with an assistant message",
        ),
        (
            "sharegpt",
            {"conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}]},
            "both come from the user",
        ),
        ("sharegpt", {"conversations": [{"from": "human", "value": "Hi"}]}, "no assistant reply"),
        (
            "messages",
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": None},
                ]
            },
            "no text",
        ),
        (
            "messages",
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "'image_url' is not text",
        ),
        (
            "messages",
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": " "},
                ]
            },
            "message 1 is empty",
        ),
        ("lima", {"conversations": ["Hi", 3]}, r"conversations\[1\] must be a string"),
        ("lima", {"conversations": ["Only a question"]}, "no assistant reply"),
        ("oasst", {"message_id": "a", "role": "bot", "text": "x"}, "'role' must be 'prompter'"),
        ("oasst", {"message_id": "a", "role": "prompter", "text": 5}, "'text' must be str"),
        ("oasst", {"message_id": "a", "role": "prompter"}, "missing field 'text'"),
    ],
)
def test_bad_records_of_each_format(
    tmp_path: Path, name: str, record: dict[str, Any], message: str
) -> None:
    path = _jsonl(tmp_path, json.dumps(record))
    with pytest.raises(DemoFileError, match=message) as caught:
        load_demos(path, format=name)
    assert caught.value.line == 1


def test_not_utf8_names_the_line_and_can_be_skipped(tmp_path: Path) -> None:
    bad = b'{"prompt": "caf\xe9?", "response": "Un caf\xe9."}'  # Latin-1, not UTF-8
    path = _jsonl(tmp_path, _good(1), bad, _good(3))
    with pytest.raises(DemoFileError, match=r"demos.jsonl:2: not UTF-8"):
        load_demos(path)
    report = load_demos(path, skip_invalid=True)
    assert len(report.demos) == 2
    assert report.invalid[0].line == 2


def test_not_utf8_in_a_json_array_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "demos.json"
    path.write_bytes(
        b'[\n {"prompt": "a?", "response": "b."},\n {"prompt": "caf\xe9?", "response": "x"}\n]'
    )
    with pytest.raises(DemoFileError, match=r"demos.json:3: not UTF-8"):
        load_demos(path)
    assert len(load_demos(path, skip_invalid=True).demos) == 1


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, b"\xef\xbb\xbf" + _good(1).encode())
    assert len(load_demos(path).demos) == 1


def test_json_array_syntax_error_stops_even_when_skipping(tmp_path: Path) -> None:
    path = tmp_path / "demos.json"
    path.write_text('[\n {"prompt": "a?", "response": "b."},\n {"prompt": "c?" "response": 1}\n]')
    with pytest.raises(DemoFileError, match=r"demos.json:3: invalid JSON.*cannot be read past"):
        load_demos(path, skip_invalid=True)


def test_json_array_records_carry_their_line(tmp_path: Path) -> None:
    path = tmp_path / "demos.json"
    path.write_text('[\n {"prompt": "a?", "response": "b."},\n\n {"prompt": "c?",\n "x": 1}\n]')
    assert [line for line, _ in read_json_records(path)] == [2, 4]
    with pytest.raises(DemoFileError, match=r"demos.json:4: missing field 'response'"):
        load_demos(path)


def _write_huge_record(path: Path, megabytes: int) -> None:
    """Good line, a record of `megabytes` MB (written in pieces), good line."""
    with path.open("w") as out:
        out.write(_good(1) + "\n" + '{"prompt": "Long?", "response": "')
        for _ in range(megabytes):
            out.write("x" * 1_000_000)
        out.write('"}\n' + _good(3) + "\n")


def test_ten_megabyte_record_is_refused_by_line_without_loading_it(tmp_path: Path) -> None:
    path = tmp_path / "demos.jsonl"
    _write_huge_record(path, 10)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DemoFileError, match=r"demos.jsonl:2: record is 10.0 MB, over the 4.2 MB"):
        load_demos(path)
    report = load_demos(path, skip_invalid=True)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert [d.prompt for d in report.demos] == ["Question 1?", "Question 3?"]
    assert grown_mb < 8  # read in bounded pieces, never whole (whole: 10 MB bytes + 10 MB str)
    # The limit is an option: a caller who means it can load the record.
    assert len(load_demos(path, max_record_bytes=None).demos) == 3


def test_ten_megabyte_record_in_a_json_array(tmp_path: Path) -> None:
    path = tmp_path / "demos.json"
    path.write_text(json.dumps([GOOD, {"prompt": "Long?", "response": "x" * 10_000_000}]))
    with pytest.raises(DemoFileError, match="record is 10.0 MB"):
        load_demos(path)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"[]", b"  [ ]  \n"])
def test_empty_file_is_an_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / ("empty.json" if b"[" in content else "empty.jsonl")
    path.write_bytes(content)
    with pytest.raises(DemoFileError, match=r"empty.jsonl?: the file holds no demos"):
        load_demos(path)
    with pytest.raises(DemoFileError, match="holds no demos"):
        load_demos(path, skip_invalid=True)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such demo file"):
        load_demos(tmp_path / "nope.jsonl")


def test_nothing_readable_to_detect_from(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, "not json", "{also not")
    with pytest.raises(DemoFileError, match=r"demos.jsonl:1: invalid JSON"):
        load_demos(path)
    report = load_demos(path, skip_invalid=True)
    assert [e.line for e in report.invalid] == [1, 2]  # each bad line, not only the first
    assert not report.demos


def test_skip_invalid_reports_each_bad_line(tmp_path: Path) -> None:
    lines = [_good(1), "{oops", '{"prompt": 1, "response": "x"}', _good(4), "", '{"prompt": "a"}']
    path = _jsonl(tmp_path, *lines)
    report = load_demos(path, skip_invalid=True)
    assert [e.line for e in report.invalid] == [2, 3, 6]
    assert report.records == 5  # the blank line is no record
    assert set(report.invalid_reasons()) == {
        "invalid JSON",
        "field 'prompt' must be a string, got int",
        "missing field 'response'",
    }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kinds=st.lists(
        st.sampled_from(["good", "json", "type", "empty", "bytes", "blank"]),
        min_size=1,
        max_size=25,
    )
)
def test_skip_invalid_keeps_exactly_the_good_lines(tmp_path: Path, kinds: list[str]) -> None:
    bad = {
        "json": b'{"prompt": "x"',
        "type": b'{"prompt": ["x"], "response": "y"}',
        "empty": b'{"prompt": "x", "response": "  "}',
        "bytes": b'{"prompt": "\xff\xfe", "response": "y"}',
        "blank": b"   ",
    }
    lines = [_good(i).encode() if kind == "good" else bad[kind] for i, kind in enumerate(kinds)]
    path = _jsonl(tmp_path, *lines, name="property.jsonl")
    if all(kind == "blank" for kind in kinds):
        with pytest.raises(DemoFileError, match="holds no demos"):
            load_demos(path, skip_invalid=True)
        return
    report = load_demos(path, skip_invalid=True)
    assert [d.prompt for d in report.demos] == [
        f"Question {i}?" for i, kind in enumerate(kinds) if kind == "good"
    ]
    assert [e.line for e in report.invalid] == [
        i + 1 for i, kind in enumerate(kinds) if kind not in ("good", "blank")
    ]
    first_bad = next((i for i, kind in enumerate(kinds) if kind not in ("good", "blank")), None)
    if first_bad is not None:
        with pytest.raises(DemoFileError) as caught:
            load_demos(path)
        assert caught.value.line == first_bad + 1


def test_reader_yields_errors_in_place(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, _good(1), "{bad", b"\xff")
    kinds = [type(value).__name__ for _, value in read_jsonl_records(path)]
    assert kinds == ["dict", "DemoFileError", "DemoFileError"]


# -- issue 12: duplicates, arrays named .jsonl, control characters, null fields -------------


def _record(prompt: str, response: str, **extra: Any) -> str:
    return json.dumps({**extra, "prompt": prompt, "response": response})


def test_duplicate_record_id_is_a_bad_record_naming_both_lines(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        _record("First?", "One.", id="q1"),
        _record("Second?", "Two.", id="q2"),
        _record("Third?", "Three.", id="q1"),
    )
    with pytest.raises(DemoFileError, match=r"demos.jsonl:3: duplicate id") as caught:
        load_jsonl(path)
    assert "'q1' is already used on line 1" in caught.value.reason
    report = load_jsonl(path, skip_invalid=True)
    assert [d.id for d in report.demos] == ["q1", "q2"]
    assert [(e.line, reason_kind(e.reason)) for e in report.invalid] == [(3, "duplicate id")]
    # Without the records' ids as demo ids nothing collides: both demos are kept.
    assert len(load_demos(path).demos) == 3


def test_duplicate_record_id_never_reaches_the_store(tmp_path: Path, store: DemoStore) -> None:
    path = _jsonl(tmp_path, _record("A?", "a.", id="x"), _record("B?", "b.", id="x"))
    with pytest.raises(DemoFileError, match="duplicate id"):
        index_sources(store, [path], load_options={"keep_record_ids": True})
    assert store.count() == 0
    summary = index_sources(
        store, [path], load_options={"keep_record_ids": True, "skip_invalid": True}
    )
    assert (summary.counts()["added"], summary.counts()["invalid"]) == (1, 1)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('{"prompt": "Hi?", "response": "Hello!", "prompt": "Bye?"}', "'prompt'"),
        ('{"prompt": "Hi?", "response": "a", "metadata": {"k": 1, "k": 2}}', "'k'"),
    ],
)
def test_duplicate_key_in_a_record_is_a_bad_record(tmp_path: Path, line: str, key: str) -> None:
    path = _jsonl(tmp_path, _good(1), line, _good(3))
    with pytest.raises(DemoFileError, match=rf"demos.jsonl:2: duplicate key {key} in one object"):
        load_demos(path)
    report = load_demos(path, skip_invalid=True)
    assert [d.prompt for d in report.demos] == ["Question 1?", "Question 3?"]
    assert [e.line for e in report.invalid] == [2]


def test_duplicate_key_in_a_json_array_names_the_element_line(tmp_path: Path) -> None:
    path = tmp_path / "demos.json"
    path.write_text(
        '[\n {"prompt": "a?", "response": "b."},\n {"prompt": "c?",\n  "response": "d.",'
        ' "response": "e."},\n {"prompt": "f?", "response": "g."}\n]'
    )
    with pytest.raises(DemoFileError, match=r"demos.json:3: duplicate key 'response'"):
        load_demos(path)
    report = load_demos(path, skip_invalid=True)
    assert [d.prompt for d in report.demos] == ["a?", "f?"]


def test_json_array_in_a_jsonl_file_says_so(tmp_path: Path) -> None:
    records = [GOOD, {"prompt": "Why?", "response": "Because."}]
    hint = r"looks like a JSON array, not JSON Lines.*name it \.json, or pass container='json'"
    spread = tmp_path / "spread.jsonl"
    spread.write_text(json.dumps(records, indent=2))
    for skip in (False, True):  # no line of it is a record: skipping cannot help
        with pytest.raises(DemoFileError, match=rf"spread.jsonl:1: invalid JSON.*{hint}"):
            load_demos(spread, skip_invalid=skip)
    one_line = tmp_path / "one_line.jsonl"
    one_line.write_text(json.dumps(records) + "\n")
    with pytest.raises(DemoFileError, match=rf"one_line.jsonl:1: a JSON array.*{hint}"):
        load_demos(one_line)
    for path in (spread, one_line):
        assert len(load_demos(path, container="json").demos) == 2


def test_json_array_over_the_size_limit_in_a_jsonl_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps([GOOD] * 200) + "\n")
    with pytest.raises(DemoFileError, match=r"record is .* MB, over .*looks like a JSON array"):
        load_demos(path, max_record_bytes=1000)


def test_a_jsonl_record_that_is_an_array_later_on_keeps_its_plain_error(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, _good(1), "[1, 2]")
    with pytest.raises(DemoFileError, match="demos.jsonl:2: expected a JSON object, got list$"):
        load_demos(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            b'{"prompt": "a\x00b", "response": "x"}',
            r"invalid JSON \(a NUL byte inside a string at column 14; JSON strings need it "
            r"escaped, as \\u0000\)",
        ),
        (
            b'{"prompt": "a\x07b", "response": "x"}',
            r"control character U\+0007 inside a string at column 14",
        ),
        (b'{"prompt": "abc', r"invalid JSON \(Unterminated string starting at column 12\)"),
        (b'{"prompt": "abc\rdef"}', r"a raw carriage return inside a string at column 16"),
    ],
)
def test_json_error_messages_read_right(tmp_path: Path, line: bytes, message: str) -> None:
    path = _jsonl(tmp_path, line)
    with pytest.raises(DemoFileError, match=message) as caught:
        load_demos(path, format="prompt_response")
    assert " at at " not in str(caught.value)
    array = tmp_path / "demos.json"
    array.write_bytes(b"[\n" + line + b"]")  # the record on line 2, from column 1
    with pytest.raises(DemoFileError, match=message) as caught:
        load_demos(array, format="prompt_response")
    assert " at at " not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "record", "message"),
    [
        ("prompt_response", {"prompt": None, "response": "x"}, "field 'prompt' is null"),
        ("prompt_response", {"response": "x"}, "missing field 'prompt'"),
        ("alpaca", {"instruction": "Hi", "input": "", "output": None}, "field 'output' is null"),
        ("lima", {"conversations": None}, "field 'conversations' is null"),
        ("sharegpt", {"conversations": None}, "field 'conversations' is null"),
        ("messages", {"messages": None}, "field 'messages' is null"),
        ("oasst", {"message_id": "a", "role": "prompter", "text": None}, "field 'text' is null"),
        ("oasst", {"message_id": None, "role": "x", "text": "x"}, "field 'message_id' is null"),
    ],
)
def test_null_field_is_called_null_not_missing(
    tmp_path: Path, name: str, record: dict[str, Any], message: str
) -> None:
    path = _jsonl(tmp_path, json.dumps(record))
    with pytest.raises(DemoFileError, match=rf"demos.jsonl:1: {message}$"):
        load_demos(path, format=name)


def test_null_field_is_named_as_the_file_names_it(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, '{"question": "Hi?", "answer": null}')
    columns = {"prompt": "question", "response": "answer"}
    with pytest.raises(DemoFileError, match="field 'answer' is null"):
        load_demos(path, columns=columns)


# -- a failed load leaves the store as it was ----------------------------------------------


def test_failed_load_leaves_the_store_as_it_was(tmp_path: Path, store: DemoStore) -> None:
    store.add_demos([AlignmentDemo(prompt="Old question?", response="Old answer.")])
    before = sorted(d.id for d in store.iter_demos())
    good = _jsonl(tmp_path, _good(1), _good(2), name="good.jsonl")
    bad = _jsonl(tmp_path, _good(3), "{broken", _good(5), name="bad.jsonl")
    with pytest.raises(DemoFileError, match=r"bad.jsonl:2: invalid JSON"):
        index_sources(store, [good, bad])
    assert sorted(d.id for d in store.iter_demos()) == before
    # With skip_invalid the good records of both files go in, and the bad line is reported.
    summary = index_sources(store, [good, bad], load_options={"skip_invalid": True})
    assert len(summary.added) == 4
    assert summary.counts()["invalid"] == 1
    assert store.count() == 5
