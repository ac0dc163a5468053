"""LangChain conventions a new user relies on: shared default store, refused unknown options,
checked call options, token counts, quiet loading, positional selector arguments, pickling."""

from __future__ import annotations

import logging
import pickle
import socket
import warnings
from pathlib import Path
from typing import Any

import pytest
import pytest_socket
from pydantic import ValidationError

from langchain_icalign import AlignmentDemo, AlignmentExampleSelector, ChatICAlign, DemoStore
from langchain_icalign.chat_models import assembly
from langchain_icalign.defaults import stack as defaults_module

from .conftest import BagOfWordsEmbeddings, RecordingLLM, count_words, pipeline_chat

# -- the default store ----------------------------------------------------------------------


def test_a_second_default_store_in_one_process_is_the_open_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = [AlignmentDemo(prompt=f"Question {i}?", response=f"Answer {i}.") for i in range(5)]
    monkeypatch.setattr(defaults_module, "builtin_pool", lambda: pool)
    folder = tmp_path / "store"
    first = defaults_module.default_store(BagOfWordsEmbeddings(), folder, show_progress=False)
    try:
        with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
            warnings.simplefilter("always")
            second = defaults_module.default_store(
                BagOfWordsEmbeddings(), folder, show_progress=False
            )
        assert second is first  # not reopened (locked) nor indexed again in memory
        assert [str(w.message) for w in caught] == []
        assert caplog.text == ""
        # Another folder is another store.
        other = defaults_module.default_store(
            BagOfWordsEmbeddings(), tmp_path / "other", show_progress=False
        )
        assert other is not first
        other.close()
    finally:
        first.close()
    # Once closed, the next call opens the folder again.
    reopened = defaults_module.default_store(BagOfWordsEmbeddings(), folder, show_progress=False)
    try:
        assert reopened is not first
        assert not reopened.closed
        assert reopened.count() == len(pool)
    finally:
        reopened.close()


# -- unknown arguments ----------------------------------------------------------------------


def _chat(**kwargs: Any) -> ChatICAlign:
    return ChatICAlign(llm=RecordingLLM(responses=["Fine."]), **kwargs)


def test_unknown_constructor_arguments_are_refused() -> None:
    with pytest.raises(ValidationError, match="max_new_token"):
        _chat(max_new_token=5)
    assert _chat(max_tokens=5).max_new_tokens == 5  # the alias still works


def test_unknown_from_defaults_arguments_are_refused_before_anything_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_load(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(assembly, "load_base_model", no_load)
    monkeypatch.setattr(assembly, "default_store", no_load)
    with pytest.raises(TypeError, match=r"'max_new_token' \(did you mean 'max_new_tokens'\?\)"):
        ChatICAlign.from_defaults(max_new_token=5)
    with pytest.raises(TypeError, match="'temprature'"):
        ChatICAlign.from_model_id("some/model", temprature=0)
    with pytest.raises(TypeError, match=r"AlignmentExampleSelector.*'maxk'"):
        ChatICAlign.from_defaults(selector_kwargs={"maxk": 3})


async def test_unknown_call_options_are_refused_on_every_path() -> None:
    chat = _chat()
    with pytest.raises(TypeError, match=r"unexpected call option\(s\) \['temprature'\]"):
        chat.invoke("Hi", temprature=0)
    with pytest.raises(TypeError, match="temprature"):
        list(chat.stream("Hi", temprature=0))
    with pytest.raises(TypeError, match="temprature"):
        await chat.ainvoke("Hi", temprature=0)
    with pytest.raises(TypeError, match="temprature"):
        chat.bind(temprature=0).invoke("Hi")
    with pytest.raises(TypeError, match="temprature"):
        chat.prepare_prompt("Hi", temprature=0)
    # Known options, LangChain's own, and tool options still pass.
    assert chat.invoke("Hi", temperature=0, max_tokens=5, stream=False).content == "Fine."


# -- call options checked like constructor arguments ----------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("temperature", -1, "greater than or equal to 0"),
        ("top_p", 0, "greater than 0"),
        ("top_p", 1.5, "less than or equal to 1"),
        ("seed", "abc", "valid integer"),
        ("max_tokens", 0, "positive whole number"),
    ],
)
def test_call_options_are_checked_like_constructor_arguments(
    option: str, value: Any, reason: str
) -> None:
    field = "max_new_tokens" if option == "max_tokens" else option
    with pytest.raises(ValidationError):
        _chat(**{field: value})
    chat = _chat()
    with pytest.raises(ValueError, match=reason):
        chat.invoke("Hi", **{option: value})
    with pytest.raises(ValueError, match=reason):
        list(chat.stream("Hi", **{option: value}))


# -- token counts ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Hello there, how are you?", "a<eos>b<bos>c", ""])
def test_get_num_tokens_is_the_number_of_token_ids(
    tiny_lm: Any, byte_tokenizer: Any, text: str
) -> None:
    chat = pipeline_chat(tiny_lm, byte_tokenizer)
    ids = chat.get_token_ids(text)
    assert chat.get_num_tokens(text) == len(ids)
    assert len(ids) == len(text.encode())  # one per byte: no BOS, special-token text as text


def test_get_num_tokens_with_a_tokenizer_as_token_counter(byte_tokenizer: Any) -> None:
    chat = ChatICAlign(llm=RecordingLLM(responses=["x"]), token_counter=byte_tokenizer)
    assert chat.get_num_tokens("a<eos>b") == len(chat.get_token_ids("a<eos>b")) == 7


# -- quiet loading --------------------------------------------------------------------------


def test_loading_a_model_without_progress_prints_no_bars(
    tmp_path: Path, tiny_lm: Any, byte_tokenizer: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    tiny_lm.save_pretrained(tmp_path)
    byte_tokenizer.save_pretrained(tmp_path)
    capfd.readouterr()
    defaults_module.load_base_model(tmp_path, show_progress=True)
    assert "Loading weights" in capfd.readouterr().err  # the bar this test is about
    defaults_module.load_base_model(tmp_path, show_progress=False)
    assert "Loading weights" not in capfd.readouterr().err
    from transformers.utils import logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()  # switched off only while loading


# -- the selector's arguments ---------------------------------------------------------------


def test_selector_takes_store_and_token_counter_by_position(
    store: DemoStore, demos: list[AlignmentDemo]
) -> None:
    store.add_demos(demos)
    # As the README's options section writes it.
    selector = AlignmentExampleSelector(store, count_words, max_k=3)
    by_name = AlignmentExampleSelector(store=store, token_counter=count_words, max_k=3)
    assert selector.store is store
    assert selector.select_demos("bake bread") == by_name.select_demos("bake bread")
    with pytest.raises(TypeError, match="store twice"):
        AlignmentExampleSelector(store, store=store, token_counter=count_words)
    with pytest.raises(ValidationError, match="token_counter"):
        AlignmentExampleSelector(store)


# -- pickling -------------------------------------------------------------------------------


def test_a_chat_model_pickles_and_rebuilds_its_backend(tiny_lm: Any, byte_tokenizer: Any) -> None:
    chat = pipeline_chat(tiny_lm, byte_tokenizer, max_new_tokens=4, temperature=0)
    answer = chat.invoke("Hi?").content  # the backend (with its lock) is built
    copy = pickle.loads(pickle.dumps(chat))
    assert copy.invoke("Hi?").content == answer
    assert copy.max_new_tokens == 4


def test_a_chat_model_with_a_demo_store_says_why_it_cannot_be_pickled(
    store: DemoStore,
) -> None:
    selector = AlignmentExampleSelector(store, count_words)
    chat = _chat(selector=selector)
    with pytest.raises(TypeError, match="DemoStore cannot be pickled") as info:
        pickle.dumps(chat)
    assert "from_defaults" in str(info.value)
    assert "url=" in str(info.value)


# -- test hygiene ---------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_unit_tests_run_without_the_network() -> None:
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    left, right = socket.socketpair()  # Unix sockets stay (asyncio's loop uses them)
    left.close()
    right.close()
