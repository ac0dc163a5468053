"""Integration fixtures: the real default stack (Gemma-3-270m, all-MiniLM-L6-v2, Qdrant local)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def embeddings():
    from langchain_icalign.defaults import default_embeddings

    return default_embeddings()


@pytest.fixture(scope="session")
def default_chat():
    """ChatICAlign.from_defaults, greedy, so that answers are reproducible."""
    from langchain_icalign import ChatICAlign

    return ChatICAlign.from_defaults(temperature=0, max_new_tokens=256, show_progress=False)


@pytest.fixture(scope="session")
def short_chat(default_chat):
    """The same model and store, with a 1000-token demo budget and short answers."""
    from langchain_icalign import AlignmentExampleSelector, ChatICAlign

    selector = AlignmentExampleSelector(
        store=default_chat.selector.store,
        token_counter=default_chat.selector.token_counter,
        max_tokens=1000,
    )
    return ChatICAlign(llm=default_chat.llm, selector=selector, temperature=0, max_new_tokens=24)
