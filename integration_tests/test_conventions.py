"""LangChain conventions on the real default stack: one default store per process, quiet
loading with `show_progress=False`, token counts that agree."""

from __future__ import annotations

import gc
import logging
import warnings

import pytest


@pytest.mark.slow
def test_a_second_from_defaults_shares_the_open_store_quietly(default_chat, caplog, capfd):
    from langchain_icalign import ChatICAlign

    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        second = ChatICAlign.from_defaults(temperature=0, max_new_tokens=8, show_progress=False)
        gc.collect()  # an unclosed lock file would warn (ResourceWarning) when collected
    err = capfd.readouterr().err
    # Not reopened (the folder admits one client), not indexed again in memory.
    assert second.selector.store is default_chat.selector.store
    assert "open in another process" not in caplog.text
    assert "indexing" not in caplog.text
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert "Loading weights" not in err  # show_progress=False: no transformers bars
    assert second.invoke("Say hi.").content is not None


def test_get_num_tokens_is_the_number_of_token_ids(default_chat):
    for text in ("Hello there, how are you?", "<start_of_turn>user", ""):
        assert default_chat.get_num_tokens(text) == len(default_chat.get_token_ids(text))
