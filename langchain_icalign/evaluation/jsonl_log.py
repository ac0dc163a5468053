"""An append-only JSON Lines results file that lets a long run resume where it stopped."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ResultLog", "ResultLogConfigError"]

logger = logging.getLogger(__name__)

_CONFIG_KIND = "__config__"


class ResultLogConfigError(ValueError):
    """The results file was written by a run with other settings."""


class ResultLog:
    """Results appended one JSON object a line, each fsynced, keyed for resuming.

    A run asks which keys are `done`, skips them, and `append`s each new result as soon as
    it has it, so that killing the run loses at most the result in progress. A line left
    half-written by a crash is ignored on reading (and the next append starts on a new
    line). When `config` is given, it is written first, and a file whose recorded config
    differs is refused: results of other settings are never mixed.

    Args:
        path: The file (created with its folder on the first append).
        key_fields: Fields whose values identify a result.
        config: Settings of the run, as JSON-compatible values.
    """

    def __init__(
        self,
        path: str | Path,
        key_fields: Sequence[str],
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.key_fields = tuple(key_fields)
        self.config = dict(config) if config is not None else None
        self.skipped_lines = 0
        self._records: dict[tuple[str, ...], dict[str, Any]] = {}
        self._load()

    def key(self, record: Mapping[str, Any]) -> tuple[str, ...]:
        """The key of a record."""
        return tuple(str(record[field]) for field in self.key_fields)

    def _load(self) -> None:
        if not self.path.exists():
            return
        recorded_config: dict[str, Any] | None = None
        with self.path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if record.get("kind") == _CONFIG_KIND:
                        recorded_config = record["config"]
                        continue
                    self._records[self.key(record)] = record
                except (json.JSONDecodeError, KeyError, AttributeError, TypeError):
                    self.skipped_lines += 1
                    logger.warning("%s:%d: unreadable result line skipped", self.path, number)
        if self.config is not None and recorded_config is not None:
            expected = json.loads(json.dumps(self.config))
            if recorded_config != expected:
                msg = (
                    f"{self.path} holds results of a run with other settings "
                    f"({recorded_config}); this run uses {expected}. Use another results "
                    "file, or the same settings to resume"
                )
                raise ResultLogConfigError(msg)

    def done(self, key: Sequence[str]) -> bool:
        """Whether a result with this key is recorded."""
        return tuple(str(part) for part in key) in self._records

    def get(self, key: Sequence[str]) -> dict[str, Any]:
        """The recorded result with this key.

        Raises:
            KeyError: When no result has this key.
        """
        return self._records[tuple(str(part) for part in key)]

    def records(self) -> list[dict[str, Any]]:
        """Every recorded result (the last one per key), in first-seen order."""
        return list(self._records.values())

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one result and make it durable before returning."""
        line = json.dumps(dict(record), ensure_ascii=False)
        key = self.key(record)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        with self.path.open("a+b") as handle:
            if not fresh:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # a previous run died mid-line
                    handle.write(b"\n")
            elif self.config is not None:
                header = {"kind": _CONFIG_KIND, "config": self.config}
                handle.write(json.dumps(header, ensure_ascii=False).encode() + b"\n")
            handle.write(line.encode("utf-8") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._records[key] = json.loads(line)

    def __len__(self) -> int:
        return len(self._records)
