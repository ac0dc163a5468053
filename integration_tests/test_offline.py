"""Nothing in the default stack touches the network."""

from __future__ import annotations

import socket

import pytest
from pytest_socket import SocketBlockedError


def test_default_stack_builds_and_answers_with_sockets_disabled(socket_disabled):
    with pytest.raises(SocketBlockedError):
        socket.create_connection(("127.0.0.1", 9))  # the guard is active
    from langchain_icalign import ChatICAlign
    from langchain_icalign.defaults import default_embeddings

    chat = ChatICAlign.from_defaults(max_new_tokens=4, temperature=0, show_progress=False)
    assert chat.invoke("Hi").usage_metadata["output_tokens"] <= 4
    default_embeddings().embed_query("network-free")
