"""`DemoFileError`: a demo source has a record that cannot be read; names the source and line."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DemoFileError", "RecordError"]


class DemoFileError(ValueError):
    """A demo source has a record that cannot be read; names the source and the line.

    Attributes:
        path: The file (or a label such as `hf:name[train]` or `<records>`).
        line: The 1-based line (or row, or record number); 0 for the source as a whole.
        reason: What is wrong, without the location.
        unit: What `line` counts: `"line"` for files, `"row"` or `"record"` otherwise.
    """

    def __init__(self, path: Path | str, line: int, reason: str, *, unit: str = "line") -> None:
        self.path = path
        self.line = line
        self.reason = reason
        self.unit = unit
        if not line:
            where = f"{path}"
        elif unit == "line":
            where = f"{path}:{line}"
        else:
            where = f"{path}: {unit} {line}"
        super().__init__(f"{where}: {reason}")


class RecordError(ValueError):
    """One record does not fit its format; the loader turns it into a `DemoFileError`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
