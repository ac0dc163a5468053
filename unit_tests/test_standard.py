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

    @property
    def standard_chat_model_params(self) -> dict:
        # A local model takes no api_key, and unknown arguments are refused (as in
        # HuggingFacePipeline), so the suite's placeholder key is left out.
        params = dict(super().standard_chat_model_params)
        params.pop("api_key", None)
        return params
