"""Integration fixtures: the real default stack (Gemma-3-270m, all-MiniLM-L6-v2, Qdrant local).

Switches for a run away from the default stack (a GPU machine without the default models),
all unset by default:

- `ICALIGN_MATRIX_MODELS=llama2,llama3,qwen2,gpt2`: the model-matrix tests run on these
  models only (the others, Gemma included, are skipped); only these tiny models are built.
- `ICALIGN_TEST_DEVICE_MAP=cuda`: the matrix models load with
  `ChatICAlign.from_model_id(folder, device_map=...)`; `ICALIGN_TEST_DTYPE` (`float32`,
  `bfloat16`...) sets their dtype, else the package default (bf16 on CUDA).
- `ICALIGN_TEST_EMBEDDINGS=hash`: the `embeddings` fixture is a local bag-of-words hashing
  embedding instead of all-MiniLM-L6-v2 (the same text is its own nearest neighbour).
  `ICALIGN_TEST_VECTORS=FILE` (JSON, `{"vectors": {text: vector}}` recorded from
  all-MiniLM-L6-v2) gives those texts their recorded vectors, so that the demos retrieved
  are all-MiniLM-L6-v2's: the tiny models answer differently after other demos.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from .server_fixtures import llama_server, server_backend  # noqa: F401 - fixtures

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def use_a_cache_root_per_worker() -> None:
    """Under pytest-xdist, give this worker its own `ICALIGN_HOME`, sharing the models.

    A local Qdrant folder is open in one process at a time, so two workers on the default
    store would each find it "open in another process". The converted default model and
    the tiny test models are shared (symlinked): both are built under a lock file.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    from langchain_icalign.defaults.paths import icalign_home

    shared = icalign_home()
    home = shared / "test-workers" / worker
    home.mkdir(parents=True, exist_ok=True)
    for name in ("models", "test-models"):
        (shared / name).mkdir(parents=True, exist_ok=True)
        link = home / name
        if not link.is_symlink():
            link.symlink_to(shared / name, target_is_directory=True)
    os.environ["ICALIGN_HOME"] = str(home)


use_a_cache_root_per_worker()

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def matrix_models_selected() -> tuple[str, ...] | None:
    """The model-matrix names in `ICALIGN_MATRIX_MODELS`, or None (all) when unset."""
    names = os.environ.get("ICALIGN_MATRIX_MODELS", "").strip()
    return tuple(n.strip() for n in names.split(",") if n.strip()) if names else None


class HashEmbeddings(Embeddings):
    """A deterministic bag-of-words hashing embedding: no model, identical text, identical vector.

    Texts in `recorded` get their recorded vector instead.
    """

    model_name = "icalign-test-hash-384"
    size = 384

    def __init__(self, recorded: dict[str, list[float]] | None = None) -> None:
        self.recorded = recorded or {}

    def _embed(self, text: str) -> list[float]:
        if text in self.recorded:
            return self.recorded[text]
        vector = [0.0] * self.size
        for word in re.findall(r"\w+", text.lower()) or [""]:
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.size
            vector[index] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


@pytest.fixture(scope="session")
def embeddings():
    if os.environ.get("ICALIGN_TEST_EMBEDDINGS", "").strip() == "hash":
        recorded = os.environ.get("ICALIGN_TEST_VECTORS", "").strip()
        if not recorded:
            return HashEmbeddings()
        import json

        return HashEmbeddings(json.loads(Path(recorded).read_text(encoding="utf-8"))["vectors"])
    from langchain_icalign.defaults import default_embeddings

    return default_embeddings()


@pytest.fixture(scope="session")
def builtin_pool_options(embeddings, tmp_path_factory):
    """`from_model_id` arguments for the built-in pool retrieved with the session embeddings.

    The hash embeddings index it in a temporary folder: in the default store a new
    embedding model would drop the all-MiniLM-L6-v2 collection other runs share.
    """
    if isinstance(embeddings, HashEmbeddings):
        from langchain_icalign.defaults import default_store

        folder = tmp_path_factory.mktemp("pool-store")
        return {"store": default_store(embeddings, path=folder, show_progress=False)}
    return {"embeddings": embeddings}


@pytest.fixture(scope="session")
def matrix_load_options():
    """`device_map` and `dtype` for the matrix models, from the environment (CPU by default)."""
    options = {}
    device_map = os.environ.get("ICALIGN_TEST_DEVICE_MAP", "").strip()
    dtype = os.environ.get("ICALIGN_TEST_DTYPE", "").strip()
    if device_map:
        options["device_map"] = device_map
    if dtype:
        options["dtype"] = dtype
    return options


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
    """Name -> Hugging Face folder of each tiny matrix model (those selected), built once."""
    selected = matrix_models_selected()
    builder = _builder()
    names = None if selected is None else [s.name for s in builder.MODELS if s.name in selected]
    return {name: str(folder) for name, folder in builder.build_all(names).items()}


@pytest.fixture(scope="session")
def matrix_demos(matrix_folders):
    """The short built-in demos the tiny models were trained on."""
    import json

    from langchain_icalign import AlignmentDemo

    folder = Path(next(iter(matrix_folders.values())))  # every model has the same demos
    record = json.loads((folder / "icalign_test_model.json").read_text(encoding="utf-8"))
    return [AlignmentDemo(prompt=d["prompt"], response=d["response"]) for d in record["demos"]]


@pytest.fixture(scope="session")
def matrix_store(embeddings, matrix_demos):
    """An in-memory store of those demos, with the real default embeddings."""
    from langchain_icalign import DemoStore

    with DemoStore(embeddings, location=":memory:") as store:
        store.add_demos(matrix_demos)
        yield store


@pytest.fixture(scope="session")
def matrix_chats(request, matrix_folders, matrix_store, matrix_load_options):
    """Name -> a greedy `ChatICAlign` over the matrix store (built on first use).

    Three demos at most are retrieved: the tiny models were trained on prompts that short.

    The tiny models load with `ChatICAlign.from_model_id(folder)` (with
    `matrix_load_options`); Gemma reuses the default model already loaded by `default_chat`.
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
                    prompt_format="han",  # the tests' default format, whatever the package's
                    store=matrix_store,
                    selector_kwargs={"max_k": 3},
                    show_progress=False,
                    **matrix_load_options,
                    **options,
                )
        return chats[name]

    return get
