"""What ChatICAlign declares to langchain-tests' standard suite, whatever its backend."""

from __future__ import annotations

from typing import Any, ClassVar

from langchain_tests.integration_tests import ChatModelIntegrationTests


class ICAlignStandardTests(ChatModelIntegrationTests):
    """The standard integration suite with ChatICAlign's capabilities; subclasses set the
    chat model class and fill `_params` (the stack) from a fixture."""

    _params: ClassVar[dict[str, Any]] = {}

    @property
    def chat_model_params(self) -> dict:
        return {**type(self)._params, "temperature": 0, "max_tokens": 32, "seed": 0}

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return False
