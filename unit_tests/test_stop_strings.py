from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_icalign.backends.stop_strings import StopStringFilter, find_stop, truncate_at_stop

STOPS = ["\nQuestion:", "\n```\n\n# Query", "# Query"]


def test_truncate_at_earliest_stop():
    assert truncate_at_stop("a\n```\n\n# Query: b", STOPS) == ("a", True)
    assert truncate_at_stop("no stop", STOPS) == ("no stop", False)
    assert find_stop("x# Query", STOPS) == 1


def test_stop_split_across_deltas_is_never_emitted():
    f = StopStringFilter(["\nQuestion:"])
    out = [f.feed(" Paris is the capital."), f.feed("\nQues"), f.feed("tion"), f.feed(": next")]
    assert "".join(out) == "Paris is the capital."
    assert f.stopped
    assert f.feed("more") == ""
    assert f.flush() == ""


def test_prefix_that_turns_out_harmless_is_released():
    f = StopStringFilter(["\nQuestion:"])
    assert f.feed("Line one\nQue") == "Line one"
    assert f.feed("ue is a word") == "\nQueue is a word"
    assert f.flush() == ""


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(
        st.one_of(
            st.sampled_from(["\n", " ", "Question:", "Q", "# Query", "```", "\n\n", "ab"]),
            st.text(max_size=4),
        ),
        max_size=15,
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=40),
)
def test_streamed_text_equals_truncated_and_stripped_text(pieces, cuts):
    raw = "".join(pieces)
    f = StopStringFilter(STOPS)
    emitted, i, k = [], 0, 0
    while i < len(raw):
        n = cuts[k % len(cuts)]
        emitted.append(f.feed(raw[i : i + n]))
        i, k = i + n, k + 1
    emitted.append(f.flush())
    assert "".join(emitted) == truncate_at_stop(raw, STOPS)[0].strip()
    assert not any(stop in "".join(emitted) for stop in STOPS)


def test_json_object_end_handles_strings_and_nesting():
    from langchain_icalign.backends.stop_strings import json_object_end

    text = 'x {"a": "}{\\"", "b": {"c": 1}} tail'
    assert text[: json_object_end(text)] == 'x {"a": "}{\\"", "b": {"c": 1}}'
    assert json_object_end('{"open": 1') == -1
    assert json_object_end("no json") == -1


def test_truncate_answer_ends_at_the_tool_call_object():
    from langchain_icalign.backends.stop_strings import truncate_answer

    prefix = '<tool_call>{"name": "add", "arguments": '
    text, stopped = truncate_answer('{"a": 1}} and then rambling', (), prefix, "<tool_call>")
    assert (text, stopped) == ('{"a": 1}}', True)
    assert truncate_answer('{"a": 1', (), prefix, "<tool_call>") == ('{"a": 1', False)
    assert truncate_answer('"x": 2} more', ("\nQuestion:",), "{", "") == ('"x": 2}', True)
    assert truncate_answer("plain\nQuestion: q", ("\nQuestion:",)) == ("plain", True)
