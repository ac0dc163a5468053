"""`LoadReport`: what a load found, kept and left out."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.loaders.errors import DemoFileError

__all__ = ["LoadReport", "reason_kind"]

_DIGITS = re.compile(r"\d+")


def reason_kind(reason: str) -> str:
    """A reason without its details, to count alike errors together.

    Example: `"invalid JSON (Expecting ',' at column 7)"` gives `"invalid JSON"`, and
    `"messages 2 and 3 both come from the user"` gives `"messages N and N both come ..."`.
    """
    return _DIGITS.sub("N", reason.split(" (", 1)[0])


@dataclass
class LoadReport:
    """What a load found.

    Attributes:
        demos: Valid demos, in source order.
        invalid: Errors of the records that were skipped (with `skip_invalid`), in order.
        source: The file or dataset that was read.
        format: The record format that was used (see `RECORD_FORMATS`).
        detected: Why that format was chosen when it was detected (None when given).
        records: Records read, valid or not.
        dropped: Records left out by design (not errors), counted by reason; for example
            `"language not selected"` for OpenAssistant trees.
    """

    demos: list[AlignmentDemo] = field(default_factory=list)
    invalid: list[DemoFileError] = field(default_factory=list)
    source: str = ""
    format: str = ""
    detected: str | None = None
    records: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def invalid_reasons(self) -> Counter[str]:
        """Invalid records counted by kind of reason (details and numbers left out)."""
        return Counter(reason_kind(error.reason) for error in self.invalid)

    def summary(self) -> str:
        """One line: the source, the format and the counts."""
        how = f"detected: {self.detected}" if self.detected else "given"
        parts = [
            f"{self.source}: {self.format} ({how})",
            f"{self.records} records",
            f"{len(self.demos)} demos",
            f"{len(self.invalid)} invalid",
        ]
        parts += [f"{count} {reason}" for reason, count in sorted(self.dropped.items())]
        return ", ".join(parts)
