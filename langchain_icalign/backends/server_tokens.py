"""Exact token counts for a model on a server: its tokenize endpoint, or a local tokenizer.

Budgets need the model's own counts: llama.cpp's server and vLLM answer `/tokenize`,
llama-cpp-python's server `/extras/tokenize` (always with BOS); a local tokenizer folder
(`tokenizer=`) counts without asking. Counts are cached (the demos' costs are asked often).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_icalign.errors import ModelServerError
from langchain_icalign.token_counting import as_token_counter

if TYPE_CHECKING:
    from langchain_icalign.backends.server import ServerBackend

__all__ = ["ServerTokenCounter", "load_tokenizer"]

_CACHE_SIZE = 4096


def load_tokenizer(tokenizer: Any) -> Any:
    """A tokenizer (or counter) from what `tokenizer=` gave: a local folder is loaded offline."""
    if isinstance(tokenizer, (str, Path)):
        folder = Path(tokenizer)
        if not folder.is_dir():
            msg = f"tokenizer must be a local tokenizer folder (no hub download), got {tokenizer!r}"
            raise ValueError(msg)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    return tokenizer


class ServerTokenCounter:
    """Counts tokens as the server's model does.

    Args:
        server: The backend (its requests, errors and model name).
        tokenizer: A local tokenizer folder, tokenizer or counting function; None asks the
            server.
        not_found: The client's error for a missing endpoint.
    """

    def __init__(self, server: ServerBackend, tokenizer: Any, not_found: type[Exception]) -> None:
        self.server = server
        self.not_found = not_found
        self.tokenizer: Any = None
        self._counter: Callable[[str], int] | None = None
        if tokenizer is not None:
            loaded = load_tokenizer(tokenizer)
            if hasattr(loaded, "encode"):
                self.tokenizer = loaded
            self._counter = as_token_counter(loaded)
        self._tokenize_route: str | None = None
        self._bos_tokens: int | None = None
        self._counts: OrderedDict[tuple[str, bool], int] = OrderedDict()
        self._lock = threading.Lock()

    def _server_tokens(self, text: str, bos: bool) -> int:
        """Tokens of `text` by the server's tokenizer (a route found on first use)."""
        body = {
            "content": text,  # llama.cpp's server
            "prompt": text,  # vLLM
            "model": self.server.model,
            "add_special": bos,
            "add_special_tokens": bos,
        }
        routes = (
            [self._tokenize_route] if self._tokenize_route else ["/tokenize", "/extras/tokenize"]
        )
        last: Exception | None = None
        for route in routes:
            try:
                if route == "/extras/tokenize":  # llama-cpp-python: always with BOS
                    found = self.server.post(
                        self.server.root_url + route, {"input": text, "model": self.server.model}
                    )
                    count = len(found["tokens"])
                    if not bos:
                        count -= self._bos_count()
                else:
                    found = self.server.post(self.server.root_url + route, body)
                    count = int(found["count"]) if "count" in found else len(found["tokens"])
            except self.not_found as error:
                last = error
                continue
            except Exception as error:
                raise self.server.fail(error, "counting tokens") from error
            self._tokenize_route = route
            return max(count, 0)
        msg = (
            f"the model server at {self.server.base_url} has no tokenize endpoint; pass tokenizer= "
            "(the model's local tokenizer folder) so that budgets are counted exactly"
        )
        raise ModelServerError(msg) from last

    def _bos_count(self) -> int:
        if self._bos_tokens is None:
            found = self.server.post(
                self.server.root_url + "/extras/tokenize", {"input": "", "model": self.server.model}
            )
            self._bos_tokens = len(found["tokens"])
        return self._bos_tokens

    def count(self, text: str, bos: bool) -> int:
        """Tokens of `text`, with the BOS the model adds when `bos`."""
        key = (text, bos)
        with self._lock:
            if key in self._counts:
                self._counts.move_to_end(key)
                return self._counts[key]
        if self._counter is not None:
            count = self._counter(text)
            if bos and self.tokenizer is not None:
                count += len(self.tokenizer("", add_special_tokens=True)["input_ids"])
        else:
            count = self._server_tokens(text, bos)
        with self._lock:
            self._counts[key] = count
            if len(self._counts) > _CACHE_SIZE:
                self._counts.popitem(last=False)
        return count
