"""What a cleaning step reports: the demos it kept, and why each other one was dropped.

Every step of `cleaning` returns a `CleaningReport`, so nothing disappears silently: each
dropped demo comes with its reason (the constants below) and what it matched.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from langchain_icalign.demos import AlignmentDemo

__all__ = [
    "CONTAMINATED",
    "DUPLICATE",
    "NEAR_CONTAMINATED",
    "NEAR_DUPLICATE",
    "TOO_LONG",
    "TOO_SHORT",
    "CleaningReport",
    "Dropped",
    "quote",
]

DUPLICATE = "duplicate"
NEAR_DUPLICATE = "near duplicate"
TOO_SHORT = "too short"
TOO_LONG = "too long"
CONTAMINATED = "contaminated"
NEAR_CONTAMINATED = "near-contaminated"

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Dropped:
    """A demo left out, why, and what it matched."""

    demo: AlignmentDemo
    reason: str
    detail: str = ""


@dataclass
class CleaningReport:
    """What a cleaning step kept and dropped.

    Attributes:
        kept: Demos kept, in their original order.
        dropped: Demos dropped, with reasons, in the order they were dropped.
    """

    kept: list[AlignmentDemo] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        """Dropped demos counted by reason."""
        return Counter(item.reason for item in self.dropped)

    def then(self, later: CleaningReport) -> CleaningReport:
        """This step followed by a `later` step run on this step's `kept`."""
        return CleaningReport(kept=later.kept, dropped=[*self.dropped, *later.dropped])

    def summary(self) -> str:
        """One line: kept, and dropped by reason."""
        parts = [f"kept {len(self.kept)}"]
        parts += [f"{count} {reason}" for reason, count in sorted(self.counts().items())]
        return ", ".join(parts)


def quote(text: str, size: int = 60) -> str:
    """A text on one line, cut to `size` characters, quoted: what a drop's detail names."""
    flat = _SPACE.sub(" ", text).strip()
    return repr(flat if len(flat) <= size else flat[: size - 1] + "…")
