"""`DemoStore` under contention: a folder held by another process, a silent server, many threads."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from langchain_icalign import (
    AlignmentDemo,
    DemoStore,
    StoreLockedError,
)
from langchain_icalign.errors import StoreConnectionError

from .conftest import (
    BagOfWordsEmbeddings,
)

APOS = "\u2019"


# -- store ---------------------------------------------------------------------------------

_HOLD_STORE = """
import sys
from qdrant_client import QdrantClient
client = QdrantClient(path=sys.argv[1])
print("open", flush=True)
sys.stdin.readline()
client.close()
"""


def test_local_store_open_in_another_process_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "store"
    DemoStore(BagOfWordsEmbeddings(), path=path).close()  # a store with its collection
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_STORE, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreLockedError, match="already open in another client or process"):
            DemoStore(BagOfWordsEmbeddings(), path=path)
    finally:
        holder.communicate("\n", timeout=30)
    with DemoStore(BagOfWordsEmbeddings(), path=path) as store:  # free again once closed
        assert store.count() == 0


@pytest.mark.enable_socket  # serves on a local port
def test_server_that_never_answers_fails_within_the_timeout_naming_the_url() -> None:
    # A socket that accepts connections but never sends a byte: not a refused connection
    # (instant), a server that hangs. The error must come after `timeout`, not the client's
    # own default (5 s), and name the URL.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(StoreConnectionError, match=re.escape(url)):
            # (no version check: it runs in a thread and would warn in a later test)
            DemoStore(BagOfWordsEmbeddings(), url=url, timeout=1, check_compatibility=False)
        assert time.monotonic() - started < 3.5


def test_many_threads_and_tasks_add_and_search_at_once_lose_nothing() -> None:
    store = DemoStore(BagOfWordsEmbeddings(size=32), location=":memory:")
    n_threads, n_tasks, per_worker = 8, 8, 60
    errors: list[BaseException] = []
    start = threading.Barrier(n_threads + 1)

    def demos(worker: str) -> list[AlignmentDemo]:
        return [
            AlignmentDemo(prompt=f"prompt {worker} number {i}", response=f"answer {i}")
            for i in range(per_worker)
        ]

    def thread_work(index: int) -> None:
        try:
            start.wait()
            for demo in demos(f"thread{index}"):
                store.add_demos([demo], batch_size=1)
                store.search("prompt number", k=3)
        except BaseException as error:
            errors.append(error)

    async def task_work(index: int) -> None:
        for demo in demos(f"task{index}"):
            await store.aadd_demos([demo], batch_size=1)
            await store.asearch("prompt number", k=3)

    async def all_tasks() -> None:
        await asyncio.get_running_loop().run_in_executor(None, start.wait)
        await asyncio.gather(*(task_work(i) for i in range(n_tasks)))

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show up
    try:
        threads = [threading.Thread(target=thread_work, args=(i,)) for i in range(n_threads)]
        for thread in threads:
            thread.start()
        asyncio.run(all_tasks())
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert errors == []
    expected = (n_threads + n_tasks) * per_worker
    assert store.count() == expected
    assert len({demo.id for demo in store.iter_demos()}) == expected
    store.close()
