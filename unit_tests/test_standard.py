"""langchain-tests' standard unit tests for ChatICAlign."""

from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_icalign import ChatICAlign

from .conftest import RecordingLLM


class TestChatICAlignStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatICAlign]:
        return ChatICAlign

    @property
    def chat_model_params(self) -> dict:
        return {"llm": RecordingLLM(responses=["Hello."]), "model_name": "recording"}
