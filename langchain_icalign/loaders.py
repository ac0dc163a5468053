"""Reading demo files, with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from langchain_icalign.demos import AlignmentDemo

__all__ = ["DemoFileError", "LoadReport", "load_jsonl", "read_jsonl_records"]


class DemoFileError(ValueError):
    """A demo file has a record that cannot be read; names the file and line."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


@dataclass
class LoadReport:
    """What a load found.

    Attributes:
        demos: Valid demos, in file order.
        invalid: Errors of the records that were skipped (with `skip_invalid`).
    """

    demos: list[AlignmentDemo] = field(default_factory=list)
    invalid: list[DemoFileError] = field(default_factory=list)


def read_jsonl_records(path: Path) -> Iterator[tuple[int, Any | DemoFileError]]:
    """Yield (line number, parsed JSON) for each non-blank line.

    A line that is not UTF-8 or not JSON yields a `DemoFileError` in place of the record,
    so callers can stop or skip it and go on reading.
    """
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                yield number, DemoFileError(path, number, f"not UTF-8 ({error.reason})")
                continue
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as error:
                msg = f"invalid JSON ({error.msg} at column {error.colno})"
                yield number, DemoFileError(path, number, msg)


def _demo_from_record(
    record: Any, prompt_key: str, response_key: str, path: Path, number: int
) -> AlignmentDemo:
    if not isinstance(record, dict):
        msg = f"expected a JSON object, got {type(record).__name__}"
        raise DemoFileError(path, number, msg)
    for key in (prompt_key, response_key):
        if key not in record or record[key] is None:
            raise DemoFileError(path, number, f"missing field {key!r}")
        if not isinstance(record[key], str):
            msg = f"field {key!r} must be a string, got {type(record[key]).__name__}"
            raise DemoFileError(path, number, msg)
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DemoFileError(path, number, "field 'metadata' must be an object")
    try:
        return AlignmentDemo(
            prompt=record[prompt_key],
            response=record[response_key],
            turns=[tuple(turn) for turn in record.get("turns") or []],
            metadata=metadata,
            id=str(record.get("id") or ""),
        )
    except (ValidationError, TypeError, ValueError) as error:
        reason = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
        if isinstance(error, ValidationError):
            where = ".".join(str(p) for p in error.errors()[0]["loc"])
            reason = f"field {where!r}: {reason}"
        raise DemoFileError(path, number, reason) from error


def load_jsonl(
    path: str | Path,
    *,
    prompt_key: str = "prompt",
    response_key: str = "response",
    skip_invalid: bool = False,
) -> LoadReport:
    """Read demos from a JSON Lines file of objects with a prompt and a response.

    Optional fields: `turns` (earlier [user, assistant] pairs), `metadata` (an object),
    `id`. Every record is validated before anything is returned, so a caller that writes
    only after a successful load never half-writes a bad file.

    Args:
        path: The file.
        prompt_key: Field holding the prompt.
        response_key: Field holding the response.
        skip_invalid: Skip bad records (reported in `LoadReport.invalid`) instead of raising.

    Raises:
        DemoFileError: For the first bad record, naming file and line (unless skipped), or
            for a file with no records at all.
        FileNotFoundError: When the file does not exist.
    """
    file = Path(path)
    if not file.is_file():
        msg = f"no such demo file: {file}"
        raise FileNotFoundError(msg)
    report = LoadReport()
    for number, record in read_jsonl_records(file):
        try:
            if isinstance(record, DemoFileError):
                raise record
            report.demos.append(_demo_from_record(record, prompt_key, response_key, file, number))
        except DemoFileError as error:
            if not skip_invalid:
                raise
            report.invalid.append(error)
    if not report.demos and not report.invalid:
        raise DemoFileError(file, 0, "the file holds no demos")
    return report
