"""Prompt formats: how demos and a conversation become one prompt for a base model.

A format renders exchanges (user message, assistant answer), the open query the model must
answer, and an optional system text; it names the stop strings that end an answer, and
neutralises any text that could fake its markers (so a demo or a user message cannot open a
new turn or stop generation early).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.neutralizing import (
    WORD_JOINER,
    break_markers,
    neutralize_tokens,
    replace_markers,
)

__all__ = [
    "COMMON_SPECIAL_TOKENS",
    "Conversation",
    "HanFormat",
    "PromptFormat",
    "URIALFormat",
    "ZeroShotFormat",
    "get_prompt_format",
]

COMMON_SPECIAL_TOKENS: tuple[str, ...] = (
    "<s>",
    "</s>",
    "<bos>",
    "<eos>",
    "<pad>",
    "<unk>",
    "<|endoftext|>",
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|im_start|>",
    "<|im_end|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "[INST]",
    "[/INST]",
)
"""Special tokens of common model families, neutralised in all text whatever the tokenizer."""


@dataclass(frozen=True)
class Conversation:
    """A chat reduced to what a prompt format renders.

    Attributes:
        query: The last user message, which the model must answer.
        turns: Earlier (user, assistant) exchanges, oldest first.
        system: System instructions, if any.
        answer_prefix: Text the answer is forced to start with (trusted, not neutralised).
    """

    query: str
    turns: tuple[tuple[str, str], ...] = ()
    system: str | None = None
    answer_prefix: str = ""


@dataclass(frozen=True)
class _Marker:
    pattern: re.Pattern[str]
    # None: matched in the folded text and broken by a word joiner after its first letter;
    # a string: every literal match in the text itself is replaced by it.
    replacement: str | None = None


class PromptFormat(ABC):
    """How exchanges, a system text and an open query are laid out for a base model.

    Subclass it and implement `render_exchange` and `render_open` (plus `markers` and
    `stop`) to add a format; pass an instance as `prompt_format=` to `ChatICAlign`.
    """

    name: ClassVar[str] = "custom"
    stop: tuple[str, ...] = ()
    """Strings that end the answer; never part of the returned text."""
    separator: str = "\n\n"
    """Text between two exchanges (and between blocks of the prompt)."""
    answer_lead: str = ""
    """What separates the open answer marker from an answer prefix."""
    _markers: tuple[_Marker, ...] = ()

    @abstractmethod
    def render_exchange(self, user: str, assistant: str) -> str:
        """One complete exchange: a user message and its answer (texts already neutralised)."""

    @abstractmethod
    def render_open(self, user: str) -> str:
        """The final user message, ending where the model's answer begins."""

    def render_system(self, system: str) -> str:
        """The system text block (already neutralised)."""
        return system

    def neutralize(self, text: str, special_tokens: Iterable[str] = ()) -> str:
        """Make `text` unable to act as one of this format's markers or a special token.

        Args:
            text: Demo or user text.
            special_tokens: The tokenizer's special tokens (added to `COMMON_SPECIAL_TOKENS`).
        """
        for marker in self._markers:
            if marker.replacement is not None:
                text = replace_markers(text, marker.pattern, marker.replacement)
        # Replacements first (they never make a marker), then one folded pass for the rest.
        text = break_markers(text, *(m.pattern for m in self._markers if m.replacement is None))
        text = neutralize_tokens(text, (*COMMON_SPECIAL_TOKENS, *special_tokens))
        for stop in self.stop:
            # A stop string can only end the answer, never appear inside given text.
            if stop in text:
                text = text.replace(stop, stop[0] + WORD_JOINER + stop[1:])
        return text

    def render_demo(self, demo: AlignmentDemo, special_tokens: Iterable[str] = ()) -> str:
        """A demo (all of its turns) as prompt text."""
        tokens = tuple(special_tokens)
        exchanges = [*demo.turns, (demo.prompt, demo.response)]
        return self.separator.join(
            self.render_exchange(self.neutralize(u, tokens), self.neutralize(a, tokens))
            for u, a in exchanges
        )

    def render(
        self,
        conversation: Conversation,
        demos: Sequence[AlignmentDemo] = (),
        special_tokens: Iterable[str] = (),
    ) -> str:
        """The whole prompt: system text, demos in the given order, history, open query.

        Args:
            conversation: What the user said so far.
            demos: Demos in prompt order (callers put the most relevant last).
            special_tokens: Tokenizer special tokens to neutralise in all given text.
        """
        tokens = tuple(special_tokens)
        blocks: list[str] = []
        if conversation.system:
            blocks.append(self.render_system(self.neutralize(conversation.system, tokens)))
        blocks.extend(self.render_demo(demo, tokens) for demo in demos)
        blocks.extend(
            self.render_exchange(self.neutralize(u, tokens), self.neutralize(a, tokens))
            for u, a in conversation.turns
        )
        opening = self.render_open(self.neutralize(conversation.query, tokens))
        if conversation.answer_prefix:
            opening += self.answer_lead + conversation.answer_prefix
        blocks.append(opening)
        return self.separator.join(blocks)

    def finalize(self, text: str) -> str:
        """Clean a raw answer already cut before its stop string."""
        return text.strip()

    def settled(self, text: str) -> str:
        """The start of `finalize(text + more)` that no continuation can change.

        Streaming sends this much of an answer so far: what `finalize` might still drop at
        the end (trailing whitespace here) waits until the answer ends, so that the
        streamed text is the invoked answer.
        """
        return text.strip()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _line_start(marker: str) -> re.Pattern[str]:
    # A line starts wherever str.splitlines() would break, and any whitespace may lead;
    # matched in the folded text (format characters gone, NFKC), in any case, and a space
    # in the marker stands for any run of spaces, or none ("#Query").
    breaks = r"\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029"
    body = r"[^\S\n]*".join(re.escape(word) for word in marker.split(" "))
    return re.compile(rf"(?:^|(?<=[{breaks}]))[^\S\n]*{body}", re.IGNORECASE)


_HAN_ANSWER_MARKER = re.compile(r"Here's\s+an\s+example\s+answer\s*:", re.I)


class HanFormat(PromptFormat):
    r"""The format of Han (2023), exactly as in the paper's code.

    ```
    Question: {prompt}

    Here’s an example answer: {response}

    Question: {query}

    Here’s an example answer:
    ```
    Generation stops at `\\nQuestion:`. A system message, when given, is the first block.
    """

    name: ClassVar[str] = "han"
    stop = ("\nQuestion:",)
    answer_lead = " "
    _markers = (
        _Marker(_line_start("Question:")),
        _Marker(_HAN_ANSWER_MARKER),
    )

    def render_exchange(self, user: str, assistant: str) -> str:  # noqa: D102
        return f"Question: {user}\n\nHere’s an example answer: {assistant}"

    def render_open(self, user: str) -> str:  # noqa: D102
        return f"Question: {user}\n\nHere’s an example answer:"


class URIALFormat(PromptFormat):
    """The URIAL format (Lin et al. 2023): a system header, then fenced query/answer blocks.

    ````
    # Instruction

    {system}

    # Query:
    ```
    {prompt}
    ```

    # Answer:
    ```
    {response}
    ```
    ````
    Generation stops at `# Query` (or at `# Answer`, which a model may write to open another
    answer without a query), and the closing fence of the answer is dropped. Triple
    backticks inside given text become `~~~` (an equivalent Markdown fence) so they cannot
    close a block.
    """

    name: ClassVar[str] = "urial"
    stop = ("\n```\n\n# Query", "# Query", "\n```\n\n# Answer", "# Answer")
    _markers = (
        _Marker(re.compile("```"), "~~~"),
        _Marker(_line_start("# Query")),
        _Marker(_line_start("# Answer")),
        _Marker(_line_start("# Instruction")),
    )
    _closing_fence = re.compile(r"\n?```\s*$")
    _open_fence = re.compile(r"\s*`{1,3}\s*$")

    def render_system(self, system: str) -> str:  # noqa: D102
        return f"# Instruction\n\n{system}"

    def render_exchange(self, user: str, assistant: str) -> str:  # noqa: D102
        return f"# Query:\n```\n{user}\n```\n\n# Answer:\n```\n{assistant}\n```"

    def render_open(self, user: str) -> str:  # noqa: D102
        return f"# Query:\n```\n{user}\n```\n\n# Answer:\n```\n"

    def finalize(self, text: str) -> str:  # noqa: D102
        return self._closing_fence.sub("", text.rstrip()).strip()

    def settled(self, text: str) -> str:  # noqa: D102
        # Backticks at the end may be the start of the closing fence, which finalize drops.
        return self._open_fence.sub("", text).strip()


class ZeroShotFormat(PromptFormat):
    r"""Han (2023)'s zero-shot baseline: `Question: {q}\n\nAnswer:`; stops at `\nQuestion:`."""

    name: ClassVar[str] = "zero_shot"
    stop = ("\nQuestion:",)
    answer_lead = " "
    _markers = (_Marker(_line_start("Question:")), _Marker(_line_start("Answer:")))

    def render_exchange(self, user: str, assistant: str) -> str:  # noqa: D102
        return f"Question: {user}\n\nAnswer: {assistant}"

    def render_open(self, user: str) -> str:  # noqa: D102
        return f"Question: {user}\n\nAnswer:"


_FORMATS: dict[str, type[PromptFormat]] = {
    "han": HanFormat,
    "urial": URIALFormat,
    "zero_shot": ZeroShotFormat,
}


def get_prompt_format(prompt_format: str | PromptFormat) -> PromptFormat:
    """Resolve a format name (`"han"`, `"urial"`) or pass an instance through.

    Raises:
        ValueError: For an unknown name.
    """
    if isinstance(prompt_format, PromptFormat):
        return prompt_format
    try:
        return _FORMATS[prompt_format]()
    except KeyError:
        known = ", ".join(sorted(_FORMATS))
        msg = f"unknown prompt_format {prompt_format!r}; known formats: {known}"
        raise ValueError(msg) from None
