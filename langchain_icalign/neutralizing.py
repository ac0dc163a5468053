"""Make untrusted text inert in a prompt: markers and control tokens that only look like text.

A marker (`Question:` at a line start, `# Query`) is found in a *folded* view of the text:
Unicode format characters (category Cf: zero-width spaces, BOM, word joiners) are ignored,
each character is compared in its NFKC compatibility form (full-width `Ｑ` is `Q`), apostrophe
variants are one apostrophe, and case is ignored. A marker found there is broken in the
original text by a word joiner after its first letter, so the text itself is kept. A word
joiner between two letters counts as a break (it splits the word into other tokens), so
neutralising is idempotent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

__all__ = [
    "WORD_JOINER",
    "break_markers",
    "control_tokens",
    "fold_for_matching",
    "neutralize_tokens",
    "replace_markers",
]

WORD_JOINER = "\u2060"
"""Invisible character inserted into a marker so it no longer matches (nor tokenises) as one."""

_APOSTROPHES = str.maketrans(dict.fromkeys("\u2018\u2019\u02bc\u02b9\u2032\u00b4\uff07", "'"))
_BRACKETED = re.compile(r"<[^<>\n]{1,80}>|\[[^\[\]\n]{1,80}\]")
# Every bracketed span, overlapping ones too: "[</s>/INST]" holds "</s>".
_BRACKETED_AT = re.compile(r"(?=(<[^<>\n]{1,80}>|\[[^\[\]\n]{1,80}\]))")
_HTML_TAG = re.compile(r"</?[a-z][a-z0-9]*>")


def _joins_a_word(text: str, index: int) -> bool:
    """Whether the word joiner at `index` sits inside a word (other format characters aside)."""
    if index == 0 or not text[index - 1].isalnum():
        return False
    following = index + 1
    while following < len(text) and unicodedata.category(text[following]) == "Cf":
        following += 1
    return following < len(text) and text[following].isalnum()


def fold_for_matching(text: str) -> tuple[str, list[int]]:
    """The text as markers are matched against, and where each folded character came from.

    Returns:
        The folded text (format characters dropped except a word joiner inside a word,
        NFKC per character, apostrophe variants as `'`), and for each of its characters
        the index of the original character it stands for.
    """
    if text.isascii():
        return text, list(range(len(text)))
    folded: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char.isascii():
            folded.append(char)
            origin.append(index)
            continue
        if unicodedata.category(char) == "Cf" and not (
            char == WORD_JOINER and _joins_a_word(text, index)
        ):
            continue
        form = unicodedata.normalize("NFKC", char)
        for piece in form.translate(_APOSTROPHES):
            folded.append(piece)
            origin.append(index)
    return "".join(folded), origin


def replace_markers(text: str, pattern: re.Pattern[str], replacement: str) -> str:
    """Replace every match of `pattern` in the folded text, with what it spans in `text`.

    Invisible characters inside a match (a soft hyphen between backticks) are replaced with
    it, so that a marker hidden by them cannot survive the replacement.
    """
    folded, origin = fold_for_matching(text)
    pieces: list[str] = []
    last = 0
    for match in pattern.finditer(folded):
        if match.end() == match.start():
            continue
        start, end = origin[match.start()], origin[match.end() - 1] + 1
        if start < last:
            continue
        pieces.extend((text[last:start], replacement))
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def break_markers(text: str, *patterns: re.Pattern[str]) -> str:
    """Insert a word joiner after the first letter of every match of each pattern.

    The patterns are matched against the folded text (see `fold_for_matching`), folded
    once for all of them, so they should be written in folded form (ASCII apostrophes;
    compile them with `re.IGNORECASE` to ignore case).
    """
    if not patterns:
        return text
    folded, origin = fold_for_matching(text)
    cuts: list[int] = []
    for match in (m for pattern in patterns for m in pattern.finditer(folded)):
        if match.end() == match.start():
            continue
        start, end = origin[match.start()], origin[match.end() - 1] + 1
        letter = next((i for i in range(start, end) if text[i].isalnum()), None)
        if letter is not None:
            cuts.append(letter + 1)
    for cut in sorted(set(cuts), reverse=True):
        text = text[:cut] + WORD_JOINER + text[cut:]
    return text


def neutralize_tokens(text: str, tokens: Iterable[str]) -> str:
    """Break every occurrence of the given special-token texts with a word joiner.

    Tokens shaped `<...>` or `[...]` (nearly all control tokens) are found with one scan
    of the text, so a tokenizer with thousands of them costs no more than one with five.
    """
    bracketed, other = _token_sets(tuple(tokens))
    if bracketed and ("<" in text or "[" in text):
        starts = [m.start() for m in _BRACKETED_AT.finditer(text) if m.group(1) in bracketed]
        for start in reversed(starts):
            text = text[: start + 1] + WORD_JOINER + text[start + 1 :]
    for token in other:
        if token in text:
            text = text.replace(token, token[0] + WORD_JOINER + token[1:])
    return text


@lru_cache(maxsize=16)
def _token_sets(tokens: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    unique = {token for token in tokens if len(token) > 1}
    bracketed = frozenset(token for token in unique if _BRACKETED.fullmatch(token))
    other = tuple(sorted(unique - bracketed, key=len, reverse=True))
    return bracketed, other


def control_tokens(tokenizer: Any) -> tuple[str, ...]:
    """Every token text a Hugging Face tokenizer would read as one control id.

    That is its special tokens plus its added-tokens table: added tokens marked special,
    and unmarked ones that are not plain text (Gemma's `<start_of_image>` and `[multimodal]`
    are not in `all_special_tokens`, yet reach the model as control ids). Added tokens that
    only stand for ordinary text (runs of whitespace, HTML tags such as `<table>`) are left
    alone: they decode to the very text they replace.
    """
    found: dict[str, None] = dict.fromkeys(getattr(tokenizer, "all_special_tokens", ()) or ())
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for added in decoder.values():
        content = getattr(added, "content", None)
        if not isinstance(content, str) or len(content) < 2 or not content.strip():
            continue
        if getattr(added, "special", False) or not (
            any(ch.isspace() for ch in content) or _HTML_TAG.fullmatch(content)
        ):
            found[content] = None
    return tuple(found)
