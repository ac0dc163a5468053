"""pytest plugin: record every text the default embeddings embed, with its vector (JSON).

Usage (from the repo root, the MiniLM default embeddings installed):
    RECORD_VECTORS=scripts/device/minilm_vectors.json PYTHONPATH=scripts/device ICALIGN_HOME=/tmp/ih \
    ICALIGN_MATRIX_MODELS=llama2,llama3,qwen2,gpt2 .venv/bin/python -m pytest \
    integration_tests/test_model_matrix.py -p record_vectors -p no:cacheprovider
"""

import json
import os

from langchain_core.embeddings import Embeddings

RECORDED: dict[str, list[float]] = {}


class Recording(Embeddings):
    def __init__(self, inner):
        self.inner = inner
        self.model_name = inner.model_name  # the same store collection and shipped pool vectors

    def embed_documents(self, texts):
        vectors = self.inner.embed_documents(texts)
        for text, vector in zip(texts, vectors):
            RECORDED[text] = [round(float(v), 7) for v in vector]
        return vectors

    def embed_query(self, text):
        vector = self.inner.embed_query(text)
        RECORDED[text] = [round(float(v), 7) for v in vector]
        return vector


def pytest_configure(config):
    import langchain_icalign.defaults as defaults

    original = defaults.default_embeddings

    def recording(*args, **kwargs):
        return Recording(original(*args, **kwargs))

    defaults.default_embeddings = recording


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("RECORD_VECTORS", "/tmp/recorded_vectors.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"model": "sentence-transformers/all-MiniLM-L6-v2", "vectors": RECORDED}, f)
    print(f"\nrecorded {len(RECORDED)} vectors in {path}")
