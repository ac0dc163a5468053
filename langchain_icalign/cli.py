"""The `icalign` command: chat with a base model, index demos, inspect demo selection."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from langchain_icalign.chat_models import ChatICAlign
    from langchain_icalign.store import DemoStore

__all__ = ["main"]

_FORMATS = ("han", "urial")
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
    parser.add_argument("--format", choices=_FORMATS, default="han", help="prompt format")
    parser.add_argument(
        "--demo-mode", choices=_MODES, help="demo source (default: retrieved; urial: constant)"
    )
    parser.add_argument("--max-tokens", type=int, default=3000, help="demo token budget")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="icalign",
        description="In-context alignment: a base language model answers like a chat model.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    chat = commands.add_parser(
        "chat", help="ask a question, or chat interactively when none is given"
    )
    chat.add_argument("question", nargs="?", help="the question (omit for an interactive chat)")
    _model_options(chat)
    chat.add_argument("--max-new-tokens", type=int, default=256, help="longest answer in tokens")
    chat.add_argument("--temperature", type=float, default=0.7, help="0 for greedy decoding")
    chat.add_argument("--seed", type=int, help="seed for reproducible sampling")
    chat.add_argument("--system", help="system instructions")
    _store_options(chat)

    index = commands.add_parser("index", help="load demos from JSONL files into a store")
    index.add_argument("files", nargs="+", type=Path, metavar="FILE", help="JSONL demo files")
    index.add_argument("--prompt-key", default="prompt", help="field holding the prompt")
    index.add_argument("--response-key", default="response", help="field holding the response")
    index.add_argument(
        "--skip-invalid", action="store_true", help="skip and report bad lines instead of failing"
    )
    index.add_argument("--batch-size", type=int, default=64, help="demos embedded per batch")
    _store_options(index)

    demos = commands.add_parser(
        "demos", help="show the demos that would be selected for a question, and the prompt"
    )
    demos.add_argument("question", help="the question")
    _model_options(demos)
    demos.add_argument("--max-new-tokens", type=int, default=256, help="room left for the answer")
    _store_options(demos)
    return parser


def _open_store(args: argparse.Namespace) -> DemoStore | None:
    if args.store is None and args.url is None:
        return None
    from langchain_icalign.defaults import default_embeddings
    from langchain_icalign.store import DemoStore

    if args.store is not None:
        return DemoStore(default_embeddings(), path=args.store, collection_name=args.collection)
    return DemoStore(
        default_embeddings(), url=args.url, api_key=args.api_key, collection_name=args.collection
    )


def _build_chat(args: argparse.Namespace, **chat_kwargs: Any) -> ChatICAlign:
    from langchain_icalign.defaults import build_chat_model

    return build_chat_model(
        args.model,
        store=_open_store(args),
        demo_mode=args.demo_mode,
        prompt_format=args.format,
        selector_kwargs={"max_tokens": args.max_tokens},
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
        history.append(HumanMessage(line))
        sys.stdout.write("assistant> ")
        history.append(AIMessage(_stream_answer(chat, [*system, *history])))


def _index(args: argparse.Namespace) -> int:
    from rich.console import Console

    from langchain_icalign.defaults import default_embeddings
    from langchain_icalign.loaders import load_jsonl
    from langchain_icalign.store import DemoStore

    console = Console(stderr=True)
    if args.store is None and args.url is None:
        console.print("[red]error:[/red] give --store PATH or --url URL")
        return 2
    reports = {
        path: load_jsonl(
            path,
            prompt_key=args.prompt_key,
            response_key=args.response_key,
            skip_invalid=args.skip_invalid,
        )
        for path in args.files
    }  # every file is read and validated before anything is written
    demos = [demo for report in reports.values() for demo in report.demos]
    unique = list({demo.id: demo for demo in demos}.values())
    embeddings = default_embeddings()
    if args.store is not None:
        store = DemoStore(embeddings, path=args.store, collection_name=args.collection)
    else:
        store = DemoStore(
            embeddings, url=args.url, api_key=args.api_key, collection_name=args.collection
        )
    with store:
        present = {demo.id for demo in store.get([d.id for d in unique])}
        new = [demo for demo in unique if demo.id not in present]
        store.add_demos(new, batch_size=args.batch_size, show_progress=True)
        total = store.count()
    for report in reports.values():
        for error in report.invalid:
            console.print(f"[yellow]skipped[/yellow] {error}")
    invalid = sum(len(r.invalid) for r in reports.values())
    console.print(
        f"read {len(demos)} demos from {len(reports)} file(s): added {len(new)}, "
        f"skipped {len(demos) - len(unique)} duplicates and {len(present)} already stored, "
        f"{invalid} invalid; the store now holds {total}"
    )
    return 0


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `icalign` command line."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from langchain_icalign.errors import DemoStoreError
    from langchain_icalign.loaders import DemoFileError

    handlers = {"chat": _chat, "index": _index, "demos": _demos}
    try:
        return handlers[args.command](args)
    except (DemoFileError, DemoStoreError, FileNotFoundError, ImportError) as error:
        print(f"icalign: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
