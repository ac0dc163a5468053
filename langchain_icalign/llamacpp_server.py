"""Run llama-cpp-python's OpenAI-compatible server on a GGUF model, on a free local port.

For tests, benchmarks and trying `ChatICAlign.from_server` on one machine; in production
run the server of your choice (llama.cpp's `llama-server`, vLLM, TGI) yourself. Needs
`pip install "langchain-icalign[llamacpp]"` (llama-cpp-python with its server extra):

```python
from langchain_icalign import ChatICAlign
from langchain_icalign.llamacpp_server import LlamaCppServer

with LlamaCppServer() as server:  # the default Gemma-3-270m GGUF
    chat = ChatICAlign.from_server(server.base_url, temperature=0)
    chat.invoke("Hi")
```
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

__all__ = ["LlamaCppServer", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaCppServer:
    """`python -m llama_cpp.server` as a child process, started and stopped here.

    Args:
        model_path: A `.gguf` file; the default Gemma-3-270m Q4_K_M when None.
        port: Port on 127.0.0.1; a free one when None.
        n_ctx: Context size.
        n_threads: CPU threads.
        startup_timeout: Seconds to wait for the server to answer.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        port: int | None = None,
        n_ctx: int = 2048,
        n_threads: int = 2,
        startup_timeout: float = 120.0,
    ) -> None:
        if model_path is None:
            from langchain_icalign.defaults.paths import default_gguf_path

            model_path = default_gguf_path()
        self.model_path = Path(model_path)
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server

    @property
    def base_url(self) -> str:
        """The OpenAI API URL, `http://127.0.0.1:PORT/v1`."""
        return f"http://127.0.0.1:{self.port}/v1"

    def log_tail(self, size: int = 2000) -> str:
        """The end of the server's output (for error messages)."""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-size:]

    def start(self) -> LlamaCppServer:
        """Start the server and wait until it answers.

        Raises:
            ImportError: Without llama-cpp-python's server extra.
            RuntimeError: When it exits or does not answer in time (its output attached).
        """
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError as error:
            msg = 'the llama.cpp server needs: pip install "langchain-icalign[llamacpp]"'
            raise ImportError(msg) from error
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path),
            "--model_alias", self.model_path.stem,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
            # By default a new request cuts off the answer being streamed; queue it instead.
            "--interrupt_requests", "False",
        ]  # fmt: skip
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                msg = f"the llama.cpp server exited ({self.process.returncode}):\n{self.log_tail()}"
                raise RuntimeError(msg)
            if self._answers():
                return self
            time.sleep(0.2)
        self.stop()
        msg = (
            f"the llama.cpp server did not answer in {self.startup_timeout:g} s:\n{self.log_tail()}"
        )
        raise RuntimeError(msg)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/models", timeout=2) as reply:  # noqa: S310
                return bool(reply.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def kill(self) -> None:
        """Stop the server at once (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> LlamaCppServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
        self._log.close()
