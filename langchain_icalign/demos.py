"""`AlignmentDemo`: one demonstration of an aligned answer."""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["DEMO_ID_NAMESPACE", "AlignmentDemo", "normalize_text", "point_id_for"]

DEMO_ID_NAMESPACE = uuid.UUID("5b0b1b0e-4c1e-5a9c-9d0f-1ca11a1d0e00")
"""Namespace of the uuid5 ids derived from a demo's content."""

RESERVED_METADATA_KEY = "_demo"
"""Payload key under which a store keeps the demo's own fields; user metadata may not use it."""

_TRAILING_SPACE = re.compile(r"[ \t]+\n")


def normalize_text(text: str) -> str:
    """Normalise text for identity: NFC, Unix newlines, no trailing spaces, stripped ends."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return _TRAILING_SPACE.sub("\n", text).strip()


def point_id_for(demo_id: str) -> str:
    """The Qdrant point id of a demo id: the id itself when it is a UUID, else a uuid5 of it."""
    try:
        return str(uuid.UUID(demo_id))
    except ValueError:
        return str(uuid.uuid5(DEMO_ID_NAMESPACE, demo_id))


class AlignmentDemo(BaseModel):
    """A demonstration: a user prompt and the aligned answer to it.

    Multi-turn demos carry the earlier exchanges in `turns`; `prompt` is then the last user
    message and `response` the answer to it.

    Example:
        ```python
        demo = AlignmentDemo(
            prompt="How do I boil an egg?",
            response="Put the egg in boiling water for 9 minutes...",
            metadata={"category": "advice"},
        )
        demo.id  # stable: the same content always gets the same id
        ```
    """

    model_config = ConfigDict(extra="forbid")

    prompt: str
    """The (last) user message."""
    response: str
    """The aligned answer to `prompt`."""
    turns: list[tuple[str, str]] = Field(default_factory=list)
    """Earlier (user, assistant) exchanges of a multi-turn demo, oldest first."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Free-form metadata (for example `category`), usable in store filters."""
    id: str = ""
    """Stable id; derived from the normalised content (uuid5) when not given."""

    @field_validator("prompt", "response")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            msg = "must be a non-empty string"
            raise ValueError(msg)
        return value

    @field_validator("turns")
    @classmethod
    def _turns_not_blank(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        for index, (user, assistant) in enumerate(value):
            if not user.strip() or not assistant.strip():
                msg = f"turn {index} has an empty user or assistant message"
                raise ValueError(msg)
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_not_reserved(cls, value: dict[str, Any]) -> dict[str, Any]:
        if RESERVED_METADATA_KEY in value:
            msg = f"metadata key {RESERVED_METADATA_KEY!r} is reserved"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _derive_id(self) -> AlignmentDemo:
        if not self.id:
            self.id = str(uuid.uuid5(DEMO_ID_NAMESPACE, self.content_key()))
        return self

    def content_key(self) -> str:
        """The normalised content that identifies this demo (metadata excluded)."""
        parts = [[normalize_text(u), normalize_text(a)] for u, a in self.turns]
        return json.dumps(
            [parts, normalize_text(self.prompt), normalize_text(self.response)],
            ensure_ascii=False,
        )

    @property
    def point_id(self) -> str:
        """The Qdrant point id of this demo (see `point_id_for`)."""
        return point_id_for(self.id)

    def to_example(self) -> dict[str, Any]:
        """This demo as a LangChain example dict (`input`, `output`, `id`)."""
        return {"input": self.prompt, "output": self.response, "id": self.id}

    @classmethod
    def from_example(
        cls, example: dict[str, Any], *, input_key: str = "input", output_key: str = "output"
    ) -> AlignmentDemo:
        """Build a demo from a LangChain example dict.

        Raises:
            ValueError: When the example lacks `input_key` or `output_key`.
        """
        missing = [key for key in (input_key, output_key) if key not in example]
        if missing:
            msg = f"example is missing {missing}; it has keys {sorted(example)}"
            raise ValueError(msg)
        extra = {
            k: v for k, v in example.items() if k not in {input_key, output_key, "id", "score"}
        }
        return cls(
            prompt=str(example[input_key]),
            response=str(example[output_key]),
            metadata=extra,
            id=str(example.get("id") or ""),
        )
