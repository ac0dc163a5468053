"""Reading raw records from JSON Lines and JSON files, each with its line number.

Readers never raise for one bad record: they yield a `DemoFileError` in its place, so a
caller can stop at it or skip it and read on. Only damage that makes the rest of a file
unreadable (a syntax error inside a JSON array, a JSON array written over many lines of a
JSON Lines file) raises. An object that repeats a key is a bad record: JSON parsers keep
only the last value, which would drop data without a word.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from langchain_icalign.loaders.errors import DemoFileError

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "Container",
    "RawRecord",
    "detect_container",
    "read_json_records",
    "read_jsonl_records",
    "read_records",
]

DEFAULT_MAX_RECORD_BYTES = 4 * 1024 * 1024
"""Largest record read (4 MiB): far above any real demo, low enough to refuse garbage."""

RawRecord = tuple[int, Any]
"""(line number, parsed JSON value or the `DemoFileError` that replaces it)."""

Container = Literal["jsonl", "json"]

_JSONL_SUFFIXES = {".jsonl", ".ndjson", ".jsonlines"}
_CHUNK = 1 << 20
_WHITESPACE = re.compile(r"[ \t\r\n]*")
_SURROGATE = re.compile("[\udc80-\udcff]")


_TOO_DEEP = "JSON nested too deeply to read"
_ARRAY_HINT = (
    "the file looks like a JSON array, not JSON Lines (one record per line): name it .json, "
    "or pass container='json'"
)


def _json_error(error: json.JSONDecodeError) -> str:
    """A JSON syntax error in words, with its column."""
    # Some of the json module's messages end with " at", expecting a position after them.
    message = error.msg.removesuffix(" at")
    if message.startswith("Invalid control character") and error.pos < len(error.doc):
        code = ord(error.doc[error.pos])
        names = {0: "a NUL byte", 10: "a raw line break", 13: "a raw carriage return"}
        what = names.get(code, f"control character U+{code:04X}")
        return (
            f"invalid JSON ({what} inside a string at column {error.colno}; "
            f"JSON strings need it escaped, as \\u{code:04x})"
        )
    return f"invalid JSON ({message} at column {error.colno})"


_ObjectHook = Callable[[list[tuple[str, Any]]], dict[str, Any]]


def _object_hook(repeated: list[str]) -> _ObjectHook:
    """An `object_pairs_hook` that builds dicts and notes, in `repeated`, keys given twice."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        record = dict(pairs)
        if len(record) != len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen and key not in repeated:
                    repeated.append(key)
                seen.add(key)
        return record

    return hook


def _repeated_keys(path: Path, line: int, keys: list[str]) -> DemoFileError:
    names = ", ".join(repr(key) for key in keys)
    noun = "key" if len(keys) == 1 else "keys"
    reason = f"duplicate {noun} {names} in one object (JSON keeps only the last value)"
    return DemoFileError(path, line, reason)


def _too_large(path: Path, line: int, size: int, limit: int) -> DemoFileError:
    reason = (
        f"record is {size / 1e6:.1f} MB, over the {limit / 1e6:.1f} MB limit "
        "(max_record_bytes); a demo this long is almost certainly not a demo"
    )
    return DemoFileError(path, line, reason)


def read_jsonl_records(
    path: Path, *, max_record_bytes: int | None = DEFAULT_MAX_RECORD_BYTES
) -> Iterator[RawRecord]:
    """Yield (line number, parsed JSON) for each non-blank line of a JSON Lines file.

    A line that is not UTF-8, not JSON, an object that repeats a key, or longer than
    `max_record_bytes` yields a `DemoFileError` in place of the record. A line over the
    limit is skipped without being held in memory.

    Args:
        path: The file.
        max_record_bytes: Longest line accepted, in bytes; None for no limit.

    Raises:
        DemoFileError: When the first record starts a JSON array that is not valid on its
            own line: a JSON array file, which cannot be read line by line.
    """
    repeated: list[str] = []
    decoder = json.JSONDecoder(object_pairs_hook=_object_hook(repeated))
    with path.open("rb") as handle:
        number = 0
        started = False
        while True:
            limit = -1 if max_record_bytes is None else max_record_bytes + 2
            raw = handle.readline(limit)
            if not raw:
                return
            number += 1
            array = False  # a JSON array file given as JSON Lines: its first record is "[..."
            if not started:
                head = raw.lstrip(codecs.BOM_UTF8).lstrip()
                array, started = head.startswith(b"["), bool(head)
            if max_record_bytes is not None and len(raw.rstrip(b"\r\n")) > max_record_bytes:
                size = len(raw)
                while not raw.endswith(b"\n"):
                    raw = handle.readline(_CHUNK)
                    if not raw:
                        break
                    size += len(raw)
                error = _too_large(path, number, size, max_record_bytes)
                if array:
                    error = DemoFileError(path, number, f"{error.reason}; {_ARRAY_HINT}")
                yield number, error
                continue
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                msg = f"not UTF-8 (byte {error.start + 1} of the line: {error.reason})"
                yield number, DemoFileError(path, number, msg)
                continue
            if not line.strip():
                continue
            repeated.clear()
            try:  # without its line break, which would read as part of an unclosed string
                parsed = decoder.decode(line.rstrip("\r\n"))
            except json.JSONDecodeError as error:
                if array:  # an array over many lines: no line of it is a record
                    reason = f"{_json_error(error)}; {_ARRAY_HINT}"
                    raise DemoFileError(path, number, reason) from None
                yield number, DemoFileError(path, number, _json_error(error))
            except RecursionError:
                yield number, DemoFileError(path, number, _TOO_DEEP)
            else:
                if repeated:
                    yield number, _repeated_keys(path, number, repeated)
                elif array:
                    reason = f"a JSON array, not a record: {_ARRAY_HINT}"
                    yield number, DemoFileError(path, number, reason)
                else:
                    yield number, parsed


def read_json_records(
    path: Path, *, max_record_bytes: int | None = DEFAULT_MAX_RECORD_BYTES
) -> Iterator[RawRecord]:
    """Yield (line number, parsed JSON) for each element of a JSON array file.

    A file holding one JSON object yields that object as its only record. Each element's
    line is the line where it starts. An element with bytes that are not UTF-8, an object
    that repeats a key, or one longer than `max_record_bytes` yields a `DemoFileError` in
    its place.

    Raises:
        DemoFileError: For a JSON syntax error: the rest of an array cannot be found again.
    """
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    text = data.decode("utf-8", errors="surrogateescape")
    repeated: list[str] = []
    decoder = json.JSONDecoder(object_pairs_hook=_object_hook(repeated))
    position = _skip_space(text, 0)
    if position == len(text):
        return
    line = 1 + text.count("\n", 0, position)

    def element(start: int) -> tuple[Any, int]:
        repeated.clear()
        try:
            return decoder.raw_decode(text, start)
        except RecursionError:
            line = 1 + text.count("\n", 0, start)
            raise DemoFileError(path, line, _TOO_DEEP) from None
        except json.JSONDecodeError as error:
            reason = (
                f"{_json_error(error)}; a JSON file cannot be read past a syntax error, "
                "even with skip_invalid"
            )
            raise DemoFileError(path, error.lineno, reason) from error

    if text[position] != "[":
        value, end = element(position)
        if _skip_space(text, end) != len(text):
            at = _skip_space(text, end)
            reason = "extra data after the JSON value (is this a JSON Lines file? name it .jsonl)"
            raise DemoFileError(path, 1 + text.count("\n", 0, at), reason)
        yield line, _checked(path, line, text[position:end], value, max_record_bytes, repeated)
        return
    position = _skip_space(text, position + 1)
    if position < len(text) and text[position] == "]":
        return
    counted = 0  # lines are counted incrementally: `line` is the line of `counted`
    while True:
        line += text.count("\n", counted, position)
        counted = position
        value, end = element(position)
        yield line, _checked(path, line, text[position:end], value, max_record_bytes, repeated)
        position = _skip_space(text, end)
        if position < len(text) and text[position] == ",":
            position = _skip_space(text, position + 1)
            continue
        if position < len(text) and text[position] == "]":
            return
        at_line = line + text.count("\n", counted, position)
        raise DemoFileError(path, at_line, "invalid JSON (expected ',' or ']' in the array)")


def _skip_space(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position


def _checked(
    path: Path,
    line: int,
    raw: str,
    value: Any,
    max_record_bytes: int | None,
    repeated: list[str],
) -> Any | DemoFileError:
    bad = _SURROGATE.search(raw)
    if bad is not None:
        column = bad.start() - (raw.rfind("\n", 0, bad.start()) + 1) + 1
        at = line + raw.count("\n", 0, bad.start())
        return DemoFileError(path, at, f"not UTF-8 (a byte that is not UTF-8 at column {column})")
    if max_record_bytes is not None:
        size = len(raw.encode("utf-8", errors="surrogateescape"))
        if size > max_record_bytes:
            return _too_large(path, line, size, max_record_bytes)
    if repeated:
        return _repeated_keys(path, line, repeated)
    return value


def detect_container(path: Path) -> Container:
    """Whether a file is JSON Lines or one JSON document (an array of records, or a record).

    `.jsonl`, `.ndjson` and `.jsonlines` files are JSON Lines. Otherwise a file that starts
    with `[` is a JSON array, and one whose first line is a whole JSON value is JSON Lines
    (Hugging Face exports often name JSON Lines files `.json`).
    """
    if path.suffix.lower() in _JSONL_SUFFIXES:
        return "jsonl"
    with path.open("rb") as handle:
        head = handle.read(_CHUNK)
        first_line = head.split(b"\n", 1)[0]
        if len(first_line) == len(head) == _CHUNK:
            first_line += handle.readline()
    stripped = head.lstrip(codecs.BOM_UTF8).lstrip()
    if stripped.startswith(b"["):
        return "json"
    try:
        json.loads(first_line.lstrip(codecs.BOM_UTF8).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "json"
    except RecursionError:  # a JSONL line nested too deeply: reported when it is read
        return "jsonl"
    return "jsonl"


def read_records(
    path: Path,
    *,
    container: Container | None = None,
    max_record_bytes: int | None = DEFAULT_MAX_RECORD_BYTES,
) -> Iterator[RawRecord]:
    """Records of a JSON Lines or JSON file, with line numbers (see `detect_container`)."""
    kind = container or detect_container(path)
    if kind == "jsonl":
        return read_jsonl_records(path, max_record_bytes=max_record_bytes)
    return read_json_records(path, max_record_bytes=max_record_bytes)
