"""The demonstrations shipped with the package: the retrieval pool and the URIAL-style set."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from typing import Any

from langchain_icalign.demos import AlignmentDemo

__all__ = ["builtin_pool", "builtin_pool_version", "tool_demos", "urial_set"]

_DATA = "langchain_icalign.data"


def _pool_files() -> list[Any]:
    folder = resources.files(_DATA).joinpath("pool")
    return sorted((f for f in folder.iterdir() if f.name.endswith(".jsonl")), key=lambda f: f.name)


def _demo(record: dict[str, Any], where: str) -> AlignmentDemo:
    try:
        return AlignmentDemo(
            prompt=record["prompt"],
            response=record["response"],
            turns=[tuple(turn) for turn in record.get("turns", [])],
            metadata=record.get("metadata", {}),
        )
    except (KeyError, TypeError, ValueError) as error:
        msg = f"{where}: invalid built-in demo: {error}"
        raise ValueError(msg) from error


@cache
def builtin_pool() -> tuple[AlignmentDemo, ...]:
    """The built-in retrieval pool (written by the langchain-icalign team), in file order."""
    demos: list[AlignmentDemo] = []
    for file in _pool_files():
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                demos.append(_demo(json.loads(line), f"{file.name}:{number}"))
    return tuple(demos)


@cache
def builtin_pool_version() -> str:
    """A short hash of the pool's content: a new version re-indexes the default store."""
    digest = hashlib.sha256()
    for file in _pool_files():
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


@cache
def urial_set() -> tuple[str, tuple[AlignmentDemo, ...]]:
    """The constant URIAL-style set: a system header and three demos."""
    data = json.loads(resources.files(_DATA).joinpath("urial.json").read_text(encoding="utf-8"))
    demos = tuple(_demo(d, f"urial.json demo {i}") for i, d in enumerate(data["demos"]))
    return data["system"], demos


@cache
def tool_demos() -> tuple[AlignmentDemo, ...]:
    """Demos of the tool-call syntax: calling, using a result, answering without a tool."""
    text = resources.files(_DATA).joinpath("tool_demos.jsonl").read_text(encoding="utf-8")
    return tuple(
        _demo(json.loads(line), f"tool_demos.jsonl:{number}")
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip()
    )
