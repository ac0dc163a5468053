"""The demonstrations shipped with the package: the retrieval pool and the URIAL-style set."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from typing import Any

from langchain_icalign.demos import AlignmentDemo

__all__ = [
    "builtin_pool",
    "builtin_pool_version",
    "builtin_vectors",
    "tool_demos",
    "urial_set",
]

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


VECTORS_FILE = "pool_vectors.npy"
"""The pool's prompt embeddings, float16, one row a demo in `builtin_pool()` order."""
VECTORS_MANIFEST = "pool_vectors.json"
"""What the vectors are: embedding model, pool version, demo ids in row order."""


@cache
def builtin_vectors(embedding_model: str) -> dict[str, list[float]] | None:
    """The shipped embeddings of the pool's prompts, by demo id.

    They spare the first run from embedding the whole pool on a CPU. None when they were
    made with another embedding model or for another pool version (then the pool is
    embedded as usual).

    Args:
        embedding_model: The name of the embeddings in use (`embedding_model_name`).
    """
    import numpy as np

    folder = resources.files(_DATA)
    manifest_file = folder.joinpath(VECTORS_MANIFEST)
    if not manifest_file.is_file():
        return None
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    if (
        manifest.get("embedding_model") != embedding_model
        or manifest.get("pool_version") != builtin_pool_version()
    ):
        return None
    with folder.joinpath(VECTORS_FILE).open("rb") as handle:
        matrix = np.load(handle, allow_pickle=False)
    ids = manifest["ids"]
    if matrix.shape[0] != len(ids):
        msg = f"{VECTORS_FILE} has {matrix.shape[0]} rows for {len(ids)} demo ids"
        raise ValueError(msg)
    return {
        demo_id: row.astype(np.float32).tolist() for demo_id, row in zip(ids, matrix, strict=True)
    }


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
