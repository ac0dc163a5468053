"""Stop strings: cut text at the first one, and stream text without ever emitting one."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from typing import TypeVar

__all__ = [
    "StopStringFilter",
    "find_stop",
    "json_object_end",
    "truncate_answer",
    "truncate_at_stop",
    "without_stop_strings",
]

End = TypeVar("End")


def find_stop(text: str, stops: Sequence[str]) -> int:
    """Index of the earliest stop string in `text`, or -1."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else -1


def truncate_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to its earliest stop string, and whether one was found."""
    index = find_stop(text, stops)
    return (text, False) if index < 0 else (text[:index], True)


def json_object_end(text: str, start: int = 0) -> int:
    """Index just past the first complete JSON object at or after `start`, or -1."""
    begin = text.find("{", start)
    if begin < 0:
        return -1
    depth, in_string, escaped = 0, False, False
    for index in range(begin, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    return -1


def truncate_answer(
    text: str, stops: Sequence[str], prefix: str = "", json_after: str | None = None
) -> tuple[str, bool]:
    """Cut generated `text` at its first stop string, or where a JSON object closes.

    Args:
        text: Generated text.
        stops: Stop strings.
        prefix: Text the answer was forced to start with (not part of `text`).
        json_after: When set, the answer ends with the first complete JSON object after
            this marker in `prefix + text` ("" for the first object at all).
    """
    cut, stopped = truncate_at_stop(text, stops)
    if json_after is None:
        return cut, stopped
    full = prefix + cut
    marker = full.find(json_after)
    end = json_object_end(full, marker + len(json_after)) if marker >= 0 else -1
    if end < 0:
        return cut, stopped
    return full[len(prefix) : end] if end >= len(prefix) else "", True


class StopStringFilter:
    r"""Turns raw generated deltas into text that is safe to show.

    Holds back any tail that could still grow into a stop string (a stop string split
    across tokens), and trailing whitespace (which `finalize` would strip); drops the
    stop string and everything after it; drops leading whitespace. The concatenation of
    what `feed` and `flush` return equals `truncate_at_stop(raw)[0].strip()`.

    Example:
        ```python
        f = StopStringFilter(["\\nQuestion:"])
        f.feed(" Paris.\\nQues")  # "Paris."
        f.feed("tion: next")  # "" and f.stopped is True
        ```
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.stopped = False
        self._pending = ""
        self._started = False

    def _held_tail(self, text: str) -> int:
        """Length of the longest tail of `text` that is a proper prefix of a stop string."""
        longest = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest

    def feed(self, delta: str) -> str:
        """Add raw text; return the part that is now safe to emit."""
        if self.stopped or not delta:
            return ""
        text = self._pending + delta
        index = find_stop(text, self.stops)
        if index >= 0:
            self.stopped = True
            self._pending = ""
            return self._emit(text[:index], final=True)
        held = self._held_tail(text)
        safe, tail = text[: len(text) - held], text[len(text) - held :]
        body = safe.rstrip()
        self._pending = safe[len(body) :] + tail
        return self._emit(body)

    def _emit(self, text: str, *, final: bool = False) -> str:
        if not self._started:
            text = text.lstrip()
        if final:
            text = text.rstrip()
        if text:
            self._started = True
        return text

    def flush(self) -> str:
        """The rest once generation ended without a stop string (trailing space dropped)."""
        rest = "" if self.stopped else self._pending
        self._pending = ""
        return self._emit(rest, final=True)


def without_stop_strings(
    events: Iterator[str | End], stops: Sequence[str]
) -> Generator[str | End, None, None]:
    """A backend's text deltas with `StopStringFilter` applied, then its final event.

    Text events pass through the filter (never part of a stop string); the first non-text
    event (the backend's `Generation`) flushes what the filter held and ends the stream.
    `events` is closed when this generator ends or is closed.
    """
    text_filter = StopStringFilter(stops)
    try:
        for event in events:
            if not isinstance(event, str):
                rest = text_filter.flush()
                if rest:
                    yield rest
                yield event
                return
            safe = text_filter.feed(event)
            if safe:
                yield safe
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
