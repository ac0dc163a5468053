"""`load_demos`: demos from a file, a Hugging Face dataset or records, in any known format."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from langchain_icalign.loaders.conversation import Conversation, conversation_to_demo
from langchain_icalign.loaders.errors import DemoFileError, RecordError
from langchain_icalign.loaders.huggingface import HF_PREFIX, hf_label, iter_hf_records
from langchain_icalign.loaders.oasst import oasst_conversations
from langchain_icalign.loaders.reading import DEFAULT_MAX_RECORD_BYTES, Container, read_records
from langchain_icalign.loaders.record_formats import (
    FORMAT_ALIASES,
    PARSERS,
    RECORD_FORMATS,
    detect_format,
    rename_columns,
)
from langchain_icalign.loaders.report import LoadReport

__all__ = ["DemoSource", "load_demos", "load_jsonl", "load_prompts"]

logger = logging.getLogger("langchain_icalign.loaders")

DemoSource = str | Path | Iterable[Mapping[str, Any]]
"""A file path, `"hf:<dataset name>"`, or an iterable of records (dicts)."""

_DETECTION_SAMPLE = 50


class _Source:
    """Where records come from: a label for errors, the unit errors count, and the records."""

    def __init__(
        self,
        source: DemoSource,
        *,
        split: str,
        hf_config: str | None,
        max_record_bytes: int | None,
        container: Container | None = None,
    ) -> None:
        self.records: Iterator[tuple[int, Any]]
        if isinstance(source, str) and source.startswith(HF_PREFIX):
            name = source[len(HF_PREFIX) :]
            self.label, self.unit = hf_label(name, split), "row"
            self.records = iter_hf_records(name, split=split, config=hf_config)
        elif isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                msg = f"no such demo file: {path}"
                raise FileNotFoundError(msg)
            self.label, self.unit = str(path), "line"
            self.records = read_records(
                path, container=container, max_record_bytes=max_record_bytes
            )
        else:
            self.label, self.unit = "<records>", "record"
            self.records = enumerate(source, 1)


def _resolve_format(name: str) -> str:
    name = FORMAT_ALIASES.get(name, name)
    if name != "auto" and name not in RECORD_FORMATS:
        known = ", ".join(("auto", *RECORD_FORMATS))
        msg = f"unknown demo format {name!r}; known formats: {known}"
        raise ValueError(msg)
    return name


def _conversations(
    source: _Source,
    report: LoadReport,
    format: str,
    *,
    columns: Mapping[str, str] | None,
    metadata_fields: Sequence[str],
    languages: Collection[str] | None,
    require_response: bool,
    on_error: Any,
) -> Iterator[tuple[int, Conversation]]:
    """Parse records into conversations; detect the format first when it is "auto"."""

    def counted() -> Iterator[tuple[int, Any]]:
        for line, record in source.records:
            report.records += 1
            yield line, rename_columns(record, columns)

    records = counted()
    if format == "auto":
        head: list[tuple[int, Any]] = []
        readable = 0  # detect from the first records that parse, however many errors come first
        for item in records:
            head.append(item)
            readable += not isinstance(item[1], DemoFileError)
            if readable >= _DETECTION_SAMPLE:
                break
        parsed = [r for _, r in head if not isinstance(r, DemoFileError)]
        guess = detect_format(parsed)
        if guess is None:
            if not parsed:  # every record is unreadable (or there is none): report each
                for _, error in head:
                    on_error(error)
                return
            first = next((r for r in parsed if isinstance(r, dict)), None)
            known = ", ".join(RECORD_FORMATS)
            what = (
                f"fields {sorted(first)[:12]}"
                if first is not None
                else "records that are not objects"
            )
            msg = (
                f"cannot detect the demo format from {what}; pass format= (one of {known}) or "
                "a column mapping such as columns={'prompt': 'question', 'response': 'answer'}"
            )
            raise DemoFileError(source.label, 0, msg)
        format, report.detected = guess
        logger.info("%s: detected %s format (%s)", source.label, format, report.detected)
        records = itertools.chain(head, records)
    report.format = format
    if format == "oasst":
        yield from oasst_conversations(
            records,
            label=source.label,
            on_error=on_error,
            dropped=report.dropped,
            languages=languages,
            require_response=require_response,
        )
        return
    if languages is not None:
        msg = f"a language filter needs OpenAssistant trees (format 'oasst'), not {format!r}"
        raise ValueError(msg)
    parse = PARSERS[format]
    for line, record in records:
        if isinstance(record, DemoFileError):
            on_error(record)
            continue
        try:
            conversation = parse(record, require_response=require_response)
        except RecordError as error:
            reason = _file_names(error.reason, columns)
            on_error(DemoFileError(source.label, line, reason, unit=source.unit))
            continue
        for key in metadata_fields:
            if record.get(key) is not None:
                conversation.metadata.setdefault(key, record[key])
        yield line, conversation


def _file_names(reason: str, columns: Mapping[str, str] | None) -> str:
    """A reason that names fields as the file names them (before the column mapping)."""
    for wanted, actual in (columns or {}).items():
        if wanted != actual:
            reason = reason.replace(f"field {wanted!r}", f"field {actual!r}")
    return reason


def load_demos(
    source: DemoSource,
    format: str = "auto",
    *,
    columns: Mapping[str, str] | None = None,
    metadata_fields: Sequence[str] = (),
    skip_invalid: bool = False,
    languages: Collection[str] | None = None,
    max_turns: int | None = None,
    limit: int | None = None,
    max_record_bytes: int | None = DEFAULT_MAX_RECORD_BYTES,
    keep_record_ids: bool = False,
    container: Container | None = None,
    split: str = "train",
    hf_config: str | None = None,
    show_progress: bool = False,
) -> LoadReport:
    """Read demos from a dataset file, a Hugging Face dataset or records, checking each one.

    Formats (`format=`): `"prompt_response"` (`prompt`, `response`, optional `turns`,
    `metadata`, `id`), `"alpaca"` (`instruction`, `input`, `output`), `"dolly"`
    (`instruction`, `context`, `response`, `category`), `"sharegpt"` (`conversations` of
    `from`/`value`), `"messages"` (OpenAI-style `messages` of `role`/`content`), `"lima"`
    (`conversations` as a list of strings), `"oasst"` (OpenAssistant message trees), or
    `"auto"` to detect it from the records' fields (logged, and recorded in the report).

    A multi-turn conversation becomes one demo: its last exchange is the prompt and
    response, the earlier ones are `turns`. System messages go to `metadata["system"]`.

    Every record is read and checked before this returns, so a caller that writes only
    after a successful load never half-writes a bad file.

    Example:
        ```python
        report = load_demos("alpaca_data.json")
        report.format, report.detected  # ("alpaca", "fields 'instruction', ...")
        report = load_demos("qa.jsonl", columns={"prompt": "question", "response": "answer"})
        report = load_demos("hf:OpenAssistant/oasst1", languages={"en"})  # needs `datasets`
        ```

    Args:
        source: A JSON Lines or JSON file, `"hf:<name>"` for a Hugging Face dataset, or an
            iterable of record dicts.
        format: One of `RECORD_FORMATS`, or `"auto"`.
        columns: `{name the format expects: name in the file}`, e.g.
            `{"prompt": "question", "response": "answer"}`.
        metadata_fields: Record fields copied into each demo's metadata.
        skip_invalid: Skip bad records (listed in `LoadReport.invalid`) instead of raising.
        languages: For OpenAssistant trees: keep trees whose prompt is in these languages.
        max_turns: Keep only the first `max_turns` exchanges of a conversation.
        limit: Stop after this many demos.
        max_record_bytes: Longest record accepted; None for no limit.
        keep_record_ids: Use the records' `id` fields as demo ids. By default ids derive
            from the content (the record's id is kept in `metadata["source_id"]`), so
            the same demo always gets the same id. With it, a record whose id an earlier
            record has is a bad record (a store keeps one demo per id).
        container: `"jsonl"` or `"json"` (a JSON array, or one record) for a file; by
            default from its suffix and first bytes (see `detect_container`).
        split: The split of a Hugging Face dataset.
        hf_config: The configuration of a Hugging Face dataset.
        show_progress: Show a progress bar of the records read.

    Returns:
        The demos, the skipped records and what was detected.

    Raises:
        DemoFileError: For the first bad record, naming the source and line (unless
            `skip_invalid`), for a source without any record, or an undetectable format.
        FileNotFoundError: When the file does not exist.
        ImportError: For a Hugging Face dataset without the `datasets` package.
        ValueError: For an unknown format, or a language filter on another format.
    """
    format = _resolve_format(format)
    origin = _Source(
        source,
        split=split,
        hf_config=hf_config,
        max_record_bytes=max_record_bytes,
        container=container,
    )
    report = LoadReport(source=origin.label)
    if show_progress:
        name = Path(origin.label).name if origin.unit == "line" else origin.label
        origin.records = iter(
            tqdm(origin.records, desc=f"Reading {name}", unit="record", leave=False)
        )

    def on_error(error: DemoFileError) -> None:
        if not skip_invalid:
            raise error
        report.invalid.append(error)

    conversations = _conversations(
        origin,
        report,
        format,
        columns=columns,
        metadata_fields=metadata_fields,
        languages=languages,
        require_response=True,
        on_error=on_error,
    )
    id_lines: dict[str, int] = {}  # with keep_record_ids: record id -> where it was read
    for line, conversation in conversations:
        try:
            demo = conversation_to_demo(
                conversation, max_turns=max_turns, keep_record_id=keep_record_ids
            )
        except RecordError as error:
            on_error(DemoFileError(origin.label, line, error.reason, unit=origin.unit))
            continue
        if keep_record_ids and conversation.source_id:
            if demo.id in id_lines:
                reason = (
                    f"duplicate id (id {demo.id!r} is already used on {origin.unit} "
                    f"{id_lines[demo.id]}; a store keeps one demo per id)"
                )
                on_error(DemoFileError(origin.label, line, reason, unit=origin.unit))
                continue
            id_lines[demo.id] = line
        report.demos.append(demo)
        if limit is not None and len(report.demos) >= limit:
            break
    if report.records == 0:
        raise DemoFileError(origin.label, 0, "the file holds no demos (it is empty)")
    if report.invalid:
        reasons = report.invalid_reasons()
        logger.warning(
            "%s: skipped %d invalid records (%s)",
            origin.label,
            len(report.invalid),
            ", ".join(f"{count} {reason}" for reason, count in reasons.most_common()),
        )
    return report


def load_prompts(
    source: DemoSource,
    format: str = "auto",
    *,
    columns: Mapping[str, str] | None = None,
    skip_invalid: bool = False,
    max_record_bytes: int | None = DEFAULT_MAX_RECORD_BYTES,
    container: Container | None = None,
    split: str = "test",
) -> list[str]:
    """The user messages of an evaluation set, for decontamination; answers are optional.

    Reads the same formats as `load_demos` (a prompt-only file such as
    `{"prompt": ..., "response": null}` lines, or LIMA test records with one message);
    `container` is as for `load_demos`.

    Raises:
        DemoFileError: For a bad record (unless `skip_invalid`) or an empty source.
    """
    format = _resolve_format(format)
    origin = _Source(
        source,
        split=split,
        hf_config=None,
        max_record_bytes=max_record_bytes,
        container=container,
    )
    report = LoadReport(source=origin.label)

    def on_error(error: DemoFileError) -> None:
        if not skip_invalid:
            raise error
        report.invalid.append(error)

    prompts: list[str] = []
    for _line, conversation in _conversations(
        origin,
        report,
        format,
        columns=columns,
        metadata_fields=(),
        languages=None,
        require_response=False,
        on_error=on_error,
    ):
        prompts += [text for text in conversation.user_messages() if text.strip()]
    if report.records == 0:
        raise DemoFileError(origin.label, 0, "the file holds no prompts (it is empty)")
    return prompts


def load_jsonl(
    path: str | Path,
    *,
    prompt_key: str = "prompt",
    response_key: str = "response",
    skip_invalid: bool = False,
) -> LoadReport:
    """Read demos from a JSON Lines file of objects with a prompt and a response.

    Optional fields: `turns` (earlier [user, assistant] pairs), `metadata` (an object),
    `id` (used as the demo's id; a second record with the same id is a bad record). Same
    as `load_demos(path, "prompt_response", ..., keep_record_ids=True)`.

    Raises:
        DemoFileError: For the first bad record, naming file and line (unless skipped), or
            for a file with no records at all.
        FileNotFoundError: When the file does not exist.
    """
    columns = {"prompt": prompt_key, "response": response_key}
    return load_demos(
        path,
        "prompt_response",
        columns=columns,
        skip_invalid=skip_invalid,
        keep_record_ids=True,
    )
