"""Integration fixtures: the real default stack (Gemma-3-270m, all-MiniLM-L6-v2, Qdrant local)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .server_fixtures import llama_server, server_backend  # noqa: F401 - fixtures

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


def _builder():
    """scripts/build_test_models.py as a module (scripts/ is not a package)."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "scripts" / "build_test_models.py"
    spec = importlib.util.spec_from_file_location("build_test_models", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_test_models", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def matrix_folders():
    """Name -> Hugging Face folder of each tiny matrix model, built once and cached."""
    return {name: str(folder) for name, folder in _builder().build_all().items()}


@pytest.fixture(scope="session")
def matrix_demos(matrix_folders):
    """The short built-in demos the tiny models were trained on."""
    import json

    from langchain_icalign import AlignmentDemo

    record = json.loads(
        (Path(matrix_folders["llama2"]) / "icalign_test_model.json").read_text(encoding="utf-8")
    )
    return [AlignmentDemo(prompt=d["prompt"], response=d["response"]) for d in record["demos"]]


@pytest.fixture(scope="session")
def matrix_store(embeddings, matrix_demos):
    """An in-memory store of those demos, with the real default embeddings."""
    from langchain_icalign import DemoStore

    with DemoStore(embeddings, location=":memory:") as store:
        store.add_demos(matrix_demos)
        yield store


@pytest.fixture(scope="session")
def matrix_chats(request, matrix_folders, matrix_store):
    """Name -> a greedy `ChatICAlign` over the matrix store (built on first use).

    Three demos at most are retrieved: the tiny models were trained on prompts that short.

    The tiny models load with `ChatICAlign.from_model_id(folder)`; Gemma reuses the
    default model already loaded by `default_chat`.
    """
    from langchain_icalign import AlignmentExampleSelector, ChatICAlign

    chats = {}

    def get(name):
        if name not in chats:
            options = {"temperature": 0, "max_new_tokens": 40}
            if name == "gemma":
                default_chat = request.getfixturevalue("default_chat")
                selector = AlignmentExampleSelector(
                    store=matrix_store, token_counter=default_chat.backend.tokenizer, max_k=3
                )
                options["max_new_tokens"] = 24  # Gemma on two cores: short answers
                chats[name] = ChatICAlign(llm=default_chat.llm, selector=selector, **options)
            else:
                chats[name] = ChatICAlign.from_model_id(
                    matrix_folders[name],
                    store=matrix_store,
                    selector_kwargs={"max_k": 3},
                    show_progress=False,
                    **options,
                )
        return chats[name]

    return get
