"""A judge model's pairwise review of two answers: the prompt, and reading its scores."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable

__all__ = [
    "JUDGE_PROMPT_TEMPLATE",
    "JUDGE_SYSTEM_PROMPT",
    "PairwiseJudge",
    "Review",
    "parse_judge_scores",
    "render_judge_messages",
]

JUDGE_SYSTEM_PROMPT = (
    "You are an impartial, careful reviewer of answers written by AI assistants. You judge "
    "what an answer does for the person who asked, not how long or how confident it sounds."
)
"""System message given to the judge."""

JUDGE_PROMPT_TEMPLATE = """A user asked a question, and two AI assistants answered it.

[Question]
{question}

[The Start of Assistant 1's Answer]
{answer_1}
[The End of Assistant 1's Answer]

[The Start of Assistant 2's Answer]
{answer_2}
[The End of Assistant 2's Answer]

Please review both answers. Consider how helpful each one is to the user, how relevant it \
is to the question, how accurate it is, and how much useful detail it gives. Then give each \
assistant one overall score on a scale of 1 to 10, where a higher score means a better answer.

Write the two scores alone on the first line, the score of Assistant 1 first, separated by a \
space (for example: 6 8). From the second line on, explain your review briefly. The order in \
which the answers appear must not sway you, and length counts only where it helps the user."""
"""The review request, in the spirit of the Vicuna pairwise review used by Han (2023);
`{question}`, `{answer_1}` and `{answer_2}` are filled in."""

_NUMBER = r"(10(?:\.0+)?|[1-9](?:\.\d+)?)"
_SCORE_LINE = re.compile(
    r"^(?:scores?\s*[:=-]?\s*)?"
    + _NUMBER
    + r"\s*(?:[,;/]|\s|\band\b|\bvs\.?)\s*"
    + _NUMBER
    + r"\.?$",
    re.IGNORECASE,
)
_DECORATION = re.compile(r"[*_`#>\[\]]")


def parse_judge_scores(text: str) -> tuple[float, float] | None:
    """The two scores on the first non-blank line of a review, or None.

    The line must hold exactly two numbers from 1 to 10 (separated by a space, comma,
    semicolon or slash; Markdown emphasis is ignored). Nothing is guessed from the rest of
    the text: anything else is unparsable.

    Args:
        text: The judge's output.
    """
    for line in text.splitlines():
        cleaned = _DECORATION.sub("", line).strip()
        if not cleaned:
            continue
        match = _SCORE_LINE.match(cleaned)
        if match is None:
            return None
        return float(match.group(1)), float(match.group(2))
    return None


def render_judge_messages(
    question: str,
    answer_1: str,
    answer_2: str,
    *,
    template: str = JUDGE_PROMPT_TEMPLATE,
    system_prompt: str | None = JUDGE_SYSTEM_PROMPT,
) -> list[BaseMessage]:
    """The messages asking the judge to review two answers (Assistant 1 shown first)."""
    body = template.format(question=question, answer_1=answer_1, answer_2=answer_2)
    system: list[BaseMessage] = [SystemMessage(system_prompt)] if system_prompt else []
    return [*system, HumanMessage(body)]


def _text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, BaseMessage):
        return output.text
    return str(output)


def _model_name(model: Any) -> str:
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


@dataclass(frozen=True)
class Review:
    """The outcome of asking the judge about one ordering of two answers.

    Attributes:
        scores: (Assistant 1, Assistant 2) scores, or None when no attempt was parsable.
        attempts: How many times the judge was asked.
        outputs: The judge's output on each attempt.
    """

    scores: tuple[float, float] | None
    attempts: int
    outputs: tuple[str, ...]


class PairwiseJudge:
    """Asks any LangChain chat model to score two answers to one question from 1 to 10.

    Unparsable output is asked again, up to `max_attempts` times in all; if no attempt
    parses, the review says so (scores None) and is never guessed.

    Args:
        model: The judge: a `BaseChatModel` (or any runnable from messages to a message
            or string). Use temperature 0 where the model allows it.
        max_attempts: Attempts per review (at least 1).
        template: The review request; see `JUDGE_PROMPT_TEMPLATE`.
        system_prompt: The judge's system message (None for none).
        name: Name recorded with each judgement; the model's name by default.

    Example:
        ```python
        from langchain.chat_models import init_chat_model

        judge = PairwiseJudge(init_chat_model("openai:gpt-4o", temperature=0))
        judge.review("How do I boil an egg?", answer_a, answer_b).scores  # (8.0, 5.0)
        ```
    """

    def __init__(
        self,
        model: Runnable[Any, Any],
        *,
        max_attempts: int = 3,
        template: str = JUDGE_PROMPT_TEMPLATE,
        system_prompt: str | None = JUDGE_SYSTEM_PROMPT,
        name: str | None = None,
    ) -> None:
        if max_attempts < 1:
            msg = f"max_attempts must be at least 1, got {max_attempts}"
            raise ValueError(msg)
        for field in ("{question}", "{answer_1}", "{answer_2}"):
            if field not in template:
                msg = f"the judge template lacks {field}"
                raise ValueError(msg)
        self.model = model
        self.max_attempts = max_attempts
        self.template = template
        self.system_prompt = system_prompt
        self.name = name or _model_name(model)

    def review(self, question: str, answer_1: str, answer_2: str) -> Review:
        """Scores for two answers to `question`, Assistant 1's first.

        Errors of the model itself (network, quota) are raised, not counted as unparsable.
        """
        messages = render_judge_messages(
            question, answer_1, answer_2, template=self.template, system_prompt=self.system_prompt
        )
        outputs: list[str] = []
        for _ in range(self.max_attempts):
            text = _text(self.model.invoke(messages))
            outputs.append(text)
            scores = parse_judge_scores(text)
            if scores is not None:
                return Review(scores, len(outputs), tuple(outputs))
        return Review(None, len(outputs), tuple(outputs))
