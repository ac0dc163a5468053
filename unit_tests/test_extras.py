"""Extras: the core installs and imports without them; a missing one is named when used."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from langchain_icalign.cli import main
from langchain_icalign.extras import EXTRAS, MissingExtraError, require

_OPTIONAL = ("langchain", "rich", "sentence_transformers", "datasets", "llama_cpp")


def test_require_names_the_extra_that_installs_a_missing_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "rich.console", None)  # import fails, as when missing
    with pytest.raises(MissingExtraError, match=r"pip install 'langchain-icalign\[cli\]'") as info:
        require("rich.console", "cli", "the icalign command")
    assert isinstance(info.value, ImportError)
    assert "the icalign command needs the optional package 'rich'" in str(info.value)
    assert require("json", "cli", "x").__name__ == "json"
    with pytest.raises(ValueError, match="unknown extra"):
        require("json", "nope", "x")


@pytest.mark.parametrize(("command", "extra"), [("demos", "cli"), ("eval", "eval")])
def test_the_cli_without_rich_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)
    argv = {
        "demos": ["demos", "hello"],
        "eval": ["eval", "judge", "a.jsonl", "b.jsonl", "--judge", "x:y"],
    }
    try:
        code = main(argv[command])
    except SystemExit as exit_:  # an `eval` usage this test did not foresee
        pytest.fail(f"usage error {exit_.code}: {capsys.readouterr().err}")
    err = capsys.readouterr().err
    assert code == 1
    assert f"pip install 'langchain-icalign[{extra}]'" in err
    assert "Traceback" not in err


def test_the_eval_judge_without_langchain_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "langchain.chat_models", None)
    with pytest.raises(MissingExtraError, match=r"langchain-icalign\[eval\]"):
        require("langchain.chat_models", "eval", "icalign eval judge")


def test_the_core_imports_without_any_extra() -> None:
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in _OPTIONAL)
    code = (
        f"import sys; {blocked}\n"
        "from langchain_icalign import AlignmentExampleSelector, ChatICAlign, DemoStore\n"
        "import langchain_icalign.loaders, langchain_icalign.cleaning, langchain_icalign.cli\n"
        "print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_core_requirements_leave_out_what_only_extras_use() -> None:
    requirements = importlib.metadata.requires("langchain-icalign") or []
    core = {
        r.split(";")[0].split("<")[0].split(">")[0].strip() for r in requirements if ";" not in r
    }
    assert not core & {"langchain", "rich", "sentence-transformers", "datasets"}
    assert {"langchain-core", "langchain-qdrant", "qdrant-client"} <= core
    extras = set(importlib.metadata.metadata("langchain-icalign").get_all("Provides-Extra") or [])
    assert set(EXTRAS) | {"all"} <= extras
