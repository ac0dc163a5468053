"""The `icalign` command: chat with a base model, index demos, inspect demo selection."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_icalign.cli_options import (
    non_empty_text,
    non_negative_float,
    non_negative_int,
    positive_int,
    unit_float,
)

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from langchain_icalign.chat_models import ChatICAlign
    from langchain_icalign.store import DemoStore

__all__ = ["main"]

from langchain_icalign.errors import DemoStoreError, GenerationError, ModelCorruptedError
from langchain_icalign.extras import require

_FORMATS = ("han", "urial")
# What a user can cause: bad input or options, unreadable or unwritable files, a store or
# a model that cannot be used. Each is one line on stderr, never a traceback.
_USER_ERRORS = (
    ValueError,
    OSError,
    RecursionError,
    ImportError,
    DemoStoreError,
    GenerationError,
    ModelCorruptedError,
)
_MODES = ("retrieved", "constant", "hybrid", "none")


def _store_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("demo store (default: the built-in pool)")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--store", metavar="PATH", help="a local on-disk Qdrant store folder")
    where.add_argument("--url", help="a Qdrant server URL")
    group.add_argument("--api-key", default=os.environ.get("QDRANT_API_KEY"), help="Qdrant API key")
    group.add_argument("--collection", default="icalign_demos", help="collection name")


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", help="causal LM id or folder (default: Gemma-3-270m from its PyPI package)"
    )
    parser.add_argument("--format", choices=_FORMATS, help="prompt format (default: urial)")
    parser.add_argument("--demo-mode", choices=_MODES, help="demo source (default: retrieved)")
    parser.add_argument(
        "--max-tokens", type=positive_int, help="demo token budget (default: from_defaults')"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="icalign",
        description="In-context alignment: a base language model answers like a chat model.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    chat = commands.add_parser(
        "chat", help="ask a question, or chat interactively when none is given"
    )
    chat.add_argument(
        "question",
        nargs="?",
        type=non_empty_text,
        help="the question (omit for an interactive chat)",
    )
    _model_options(chat)
    chat.add_argument(
        "--max-new-tokens", type=positive_int, default=256, help="longest answer in tokens"
    )
    chat.add_argument(
        "--temperature", type=non_negative_float, default=0.7, help="0 for greedy decoding"
    )
    chat.add_argument("--seed", type=int, help="seed for reproducible sampling")
    chat.add_argument("--system", help="system instructions")
    _store_options(chat)

    index = commands.add_parser(
        "index",
        help="load, check, clean and index demo datasets into a store (resumable)",
        description=(
            "Load demos (prompt/response JSONL or JSON, Alpaca, Dolly, ShareGPT, OpenAI "
            "messages, LIMA, OpenAssistant trees, or hf:<dataset>), check every record before "
            "writing, clean them, and add those the store does not hold. Ids derive from the "
            "content: a second run adds nothing, and a run after an interruption resumes."
        ),
    )
    index.add_argument(
        "files", nargs="+", metavar="SOURCE", help="demo files, or hf:<name> for a HF dataset"
    )
    index.add_argument(
        "--format",
        default="auto",
        choices=[
            *("auto", "prompt_response", "alpaca", "dolly"),
            *("sharegpt", "messages", "lima", "oasst"),
        ],
        help="record format (default: detected from the fields, and reported)",
    )
    index.add_argument("--prompt-key", help="field holding the prompt (same as --column prompt=F)")
    index.add_argument("--response-key", help="field holding the response")
    index.add_argument(
        "--column",
        action="append",
        metavar="NAME=FIELD",
        help="read the format's field NAME from FIELD, e.g. prompt=question (repeatable)",
    )
    index.add_argument(
        "--metadata-field", action="append", metavar="FIELD", help="copy FIELD into metadata"
    )
    index.add_argument(
        "--lang", action="append", metavar="CODE", help="OpenAssistant: keep these languages"
    )
    index.add_argument("--split", default="train", help="split of a hf:<name> dataset")
    index.add_argument(
        "--max-turns", type=positive_int, help="keep the first N exchanges of a dialogue"
    )
    index.add_argument(
        "--limit", type=positive_int, metavar="N", help="read at most N demos a source"
    )
    index.add_argument(
        "--skip-invalid", action="store_true", help="skip and report bad lines instead of failing"
    )
    index.add_argument(
        "--min-tokens", type=non_negative_int, help="leave out demos with fewer tokens"
    )
    index.add_argument("--max-tokens", type=positive_int, help="leave out demos with more tokens")
    index.add_argument(
        "--tokenizer", metavar="PATH", help="tokenizer folder for token counts (default model's)"
    )
    index.add_argument(
        "--dedup-threshold",
        type=unit_float,
        metavar="COS",
        help="leave out demos whose prompt is this cosine-similar to a kept one (e.g. 0.95)",
    )
    index.add_argument(
        "--decontaminate",
        action="append",
        metavar="FILE",
        help="leave out demos whose prompts match this evaluation set's (repeatable)",
    )
    index.add_argument(
        "--decontaminate-threshold",
        type=unit_float,
        default=0.85,
        metavar="COS",
        help="cosine similarity that counts as a match too (default 0.85; 1 for exact only)",
    )
    index.add_argument(
        "--batch-size", type=positive_int, default=64, help="demos embedded per batch"
    )
    index.add_argument("--dry-run", action="store_true", help="load and clean; write nothing")
    index.add_argument("--report", type=Path, metavar="FILE", help="write a JSON report")
    index.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _store_options(index)

    demos = commands.add_parser(
        "demos", help="show the demos that would be selected for a question, and the prompt"
    )
    demos.add_argument("question", type=non_empty_text, help="the question")
    _model_options(demos)
    demos.add_argument(
        "--max-new-tokens", type=positive_int, default=256, help="room left for the answer"
    )
    _store_options(demos)

    from langchain_icalign.curation.cli import add_curate_parser
    from langchain_icalign.evaluation.cli import add_eval_parser

    add_eval_parser(commands)
    add_curate_parser(commands)
    return parser


def _open_store(args: argparse.Namespace) -> DemoStore | None:
    if args.store is None and args.url is None:
        return None
    from langchain_icalign.defaults import default_embeddings
    from langchain_icalign.store import DemoStore

    if args.store is not None:
        if Path(args.store).exists() and not Path(args.store).is_dir():
            msg = f"--store {args.store} is a file; it must be a store folder (or a new path)"
            raise ValueError(msg)
        return DemoStore(default_embeddings(), path=args.store, collection_name=args.collection)
    return DemoStore(
        default_embeddings(), url=args.url, api_key=args.api_key, collection_name=args.collection
    )


def _build_chat(args: argparse.Namespace, **chat_kwargs: Any) -> ChatICAlign:
    from langchain_icalign.chat_models import build_chat_model

    if args.format is not None:
        chat_kwargs["prompt_format"] = args.format
    selector_kwargs = {} if args.max_tokens is None else {"max_tokens": args.max_tokens}
    return build_chat_model(
        args.model,
        store=_open_store(args),
        demo_mode=args.demo_mode,
        selector_kwargs=selector_kwargs,
        max_new_tokens=args.max_new_tokens,
        **chat_kwargs,
    )


def _stream_answer(chat: ChatICAlign, messages: list[BaseMessage]) -> str:
    answer = ""
    for chunk in chat.stream(messages):
        text = str(chunk.content)
        answer += text
        sys.stdout.write(text)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return answer


def _chat(args: argparse.Namespace) -> int:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    chat = _build_chat(args, temperature=args.temperature, seed=args.seed)
    system: list[BaseMessage] = [SystemMessage(args.system)] if args.system else []
    if args.question:
        _stream_answer(chat, [*system, HumanMessage(args.question)])
        return 0
    print("Interactive chat: /reset clears the history, /exit (or Ctrl-D) quits.", file=sys.stderr)
    history: list[BaseMessage] = []
    while True:
        try:
            line = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        if not line:
            continue
        if line in ("/exit", "/quit"):
            return 0
        if line == "/reset":
            history = []
            continue
        sys.stdout.write("assistant> ")
        try:
            answer = _stream_answer(chat, [*system, *history, HumanMessage(line)])
        except _USER_ERRORS as error:
            # The turn is dropped; the conversation so far is kept.
            print(f"\nicalign: error: {_describe(error)}", file=sys.stderr)
            continue
        history += [HumanMessage(line), AIMessage(answer)]


def _index(args: argparse.Namespace) -> int:
    from langchain_icalign.loaders.index_command import run_index

    return run_index(args)


def _demos(args: argparse.Namespace) -> int:
    from langchain_core.messages import HumanMessage
    from rich.console import Console
    from rich.table import Table

    chat = _build_chat(args)
    prepared = chat.prepare_prompt([HumanMessage(args.question)])
    console = Console()
    table = Table(title=f"Demos for: {args.question}")
    for column in ("#", "score", "tokens", "category", "prompt"):
        table.add_column(column)
    for number, demo in enumerate(prepared.constant_demos, 1):
        category = str(demo.metadata.get("category", ""))
        table.add_row(str(number), "constant", "", category, demo.prompt[:70])
    offset = len(prepared.constant_demos)
    for number, selected in enumerate(prepared.demos, offset + 1):
        category = str(selected.demo.metadata.get("category", ""))
        table.add_row(
            str(number),
            f"{selected.score:.3f}",
            str(selected.tokens),
            category,
            selected.demo.prompt[:70],
        )
    console.print(table)
    console.print(f"prompt: {prepared.tokens} tokens ({chat.format.name} format)\n")
    console.print(prepared.text, markup=False, highlight=False)
    return 0


def _describe(error: BaseException) -> str:
    if isinstance(error, RecursionError):
        return "the input is nested too deeply to read"
    if isinstance(error, OSError) and error.filename is not None:
        from langchain_icalign.defaults.paths import icalign_home

        text = f"{error.strerror or type(error).__name__}: {error.filename}"
        home = icalign_home()
        if Path(str(error.filename)).is_relative_to(home):
            text += f" (the cache folder {home}: set ICALIGN_HOME to a writable folder)"
        return text
    return str(error) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `icalign` command line.

    User errors end in one line on stderr and exit code 1 (usage errors: 2); set
    `ICALIGN_DEBUG=1` to see tracebacks.
    """
    args = _parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from langchain_icalign.curation.cli import run_curate
    from langchain_icalign.evaluation.cli import run_eval

    handlers = {
        "chat": _chat,
        "index": _index,
        "demos": _demos,
        "eval": run_eval,
        "curate": run_curate,
    }
    debug = os.environ.get("ICALIGN_DEBUG", "").strip() not in ("", "0")
    try:
        extra = "eval" if args.command == "eval" else "cli"
        require("rich", extra, f"icalign {args.command}")
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("icalign: interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS as error:
        if debug:
            raise
        print(f"icalign: error: {_describe(error)}", file=sys.stderr)
        return 1
    except Exception as error:  # a bug, still reported in one line
        if debug:
            raise
        print(
            f"icalign: error: unexpected {type(error).__name__}: {error} "
            "(set ICALIGN_DEBUG=1 to see the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
