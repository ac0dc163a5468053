"""`ChatICAlign`: a chat model made of a base LLM and retrieved alignment demos."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import (
    BaseLLM,
    LangSmithParams,
    LanguageModelInput,
    ModelProfile,
)
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.runnables.config import RunnableConfig, run_in_executor
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from langchain_icalign.backends.base import GenerationBackend, GenerationParams
from langchain_icalign.backends.batching import batched
from langchain_icalign.backends.llm import backend_for_llm
from langchain_icalign.chat_models import assembly
from langchain_icalign.chat_models.batching import batch_together
from langchain_icalign.chat_models.options import CALL_OPTIONS, call_options, generation_params
from langchain_icalign.chat_models.results import (
    NO_MODEL,
    as_chunk,
    astream_chunks,
    identifying_params,
    ls_params,
    merged_result,
    message_for,
    model_profile,
    only_repeats,
    out_of_time,
    pickle_state,
    plain,
    stream_chunks,
    time_left,
    timed_out,
)
from langchain_icalign.defaults.builtin_demos import tool_demos
from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.formats import PromptFormat, get_prompt_format
from langchain_icalign.prompting import PreparedPrompt, PromptBuilder
from langchain_icalign.selector import AlignmentExampleSelector
from langchain_icalign.token_counting import TokenCounterLike, plain_token_ids
from langchain_icalign.tools.binding import tool_options
from langchain_icalign.tools.request_mode import RequestMode
from langchain_icalign.tools.structured_output import (
    StructuredOutputMethod,
    structured_output_runnable,
)
from langchain_icalign.tools.syntax import TOOL_CALL_OPEN

__all__ = ["CALL_OPTIONS", "ChatICAlign"]  # CALL_OPTIONS: from `options`, as before


def _builtin_tool_demos() -> list[AlignmentDemo]:
    return list(tool_demos())


class ChatICAlign(BaseChatModel):
    """Chat model that makes a base (non-chat) LLM answer like an aligned assistant.

    Each request is a few-shot prompt (`prompting.PromptBuilder`: system text, constant and
    retrieved demos, most relevant last, the conversation) that a base model continues on a
    `GenerationBackend` until the format's stop string. Setup: `pip install langchain-icalign`.

    Key init args:
        llm (a `HuggingFacePipeline`, run through transformers directly, or any LangChain
        `BaseLLM`) or backend (a `GenerationBackend`); selector (None: zero-shot);
        prompt_format ("han", "urial" or a `PromptFormat`); system_prompt; constant_demos;
        max_new_tokens (alias max_tokens, default 512); temperature (default 0.7, as Han
        2023); top_p, top_k (1.0 and 50); stop; seed; timeout.

    Instantiate, invoke, stream, usage and metadata:
        ```python
        chat = ChatICAlign(llm=HuggingFacePipeline(pipeline=pipe), selector=selector)
        chat = ChatICAlign.from_defaults()  # offline: Gemma-3-270m and the built-in demos
        chat.invoke("How do I keep basil alive indoors?")  # also ainvoke, batch
        for chunk in chat.stream("Explain recursion to a child."):  # also astream
            print(chunk.content, end="")
        chat.invoke("Hi").usage_metadata  # {"input_tokens": 2113, "output_tokens": 41, ...}
        chat.invoke("Hi").response_metadata  # {"finish_reason": "stop", "demos": [...], ...}
        ```

    Tool calling and structured output:
        ```python
        chat.bind_tools([get_weather]).invoke("Weather in Oslo?").tool_calls
        # [{"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_...", ...}]
        chat.with_structured_output(Person).invoke("Ada Lovelace was 36.")
        ```
    """

    # Unknown arguments are refused (as HuggingFacePipeline does): a misspelt one did nothing.
    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True, extra="forbid")

    llm: BaseLLM | None = Field(default=None, exclude=True)
    """The base LLM; a `HuggingFacePipeline` is run through transformers directly."""
    generation_backend: GenerationBackend | None = Field(
        default=None, alias="backend", exclude=True
    )
    """A ready `GenerationBackend` (`backend=`) instead of `llm`; its `capabilities` are asked."""
    selector: AlignmentExampleSelector | None = Field(default=None, exclude=True)
    """Retrieves and packs demos; None means zero-shot."""
    prompt_format: PromptFormat | str = "han"
    """Prompt layout: "han", "urial" or a `PromptFormat`."""
    system_prompt: str | None = None
    """System text used when the chat has no system message."""
    constant_demos: list[AlignmentDemo] = Field(default_factory=list, exclude=True)
    """Demos placed first on every request (URIAL-style); retrieved demos follow them."""
    tool_demos: list[AlignmentDemo] = Field(default_factory=_builtin_tool_demos, exclude=True)
    """Demos of the tool-call syntax, placed first when tools are bound."""
    max_new_tokens: int = Field(default=512, ge=1, alias="max_tokens")
    """Most tokens to generate."""
    temperature: float = Field(default=0.7, ge=0.0)
    """Sampling temperature; 0 means greedy."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    """Nucleus sampling mass."""
    top_k: int | None = 50
    """Top-k sampling; None or 0 disables it."""
    seed: int | None = None
    """Seed for sampling."""
    repetition_penalty: float | None = None
    """Penalty on repeated tokens (off, as Han 2023; 1.1-1.3 curbs small models' loops)."""
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Extra stop strings (the format's own are always used)."""
    timeout: float | None = None
    """Seconds the whole call may take, retrieval included; then the answer ends with finish
    reason "timeout" (the text so far). In a `batch` it bounds the batched decoding only."""
    max_retries: int = 0
    """Retries of a server request that failed before its answer started (`from_server`)."""
    streaming: bool = False
    """Whether `invoke` streams internally (to callbacks)."""
    model_name: str | None = None
    """Name reported in metadata; defaults to the backend's model name."""
    token_counter: TokenCounterLike | None = Field(default=None, exclude=True)
    """Tokenizer or counter for a non-transformers LLM (else four characters a token)."""
    context_window: int | None = None
    """Model context size; read from the model config when None."""

    _backend: GenerationBackend | None = PrivateAttr(default=None)
    _format: PromptFormat = PrivateAttr()

    @model_validator(mode="after")
    def _resolve_format(self) -> ChatICAlign:
        self._format = get_prompt_format(self.prompt_format)
        if self.generation_backend is not None:
            if self.llm is not None:
                msg = "ChatICAlign takes llm= or backend=, not both"
                raise ValueError(msg)
            if self.context_window is not None:
                self.generation_backend.context_window = self.context_window
        return self

    @classmethod
    def from_defaults(cls, **kwargs: Any) -> ChatICAlign:
        """The offline default stack: Gemma-3-270m base, all-MiniLM-L6-v2, built-in demos.

        Converted and indexed once into `$ICALIGN_HOME` (else `~/.cache/langchain_icalign`),
        nothing downloaded. `kwargs`: `ChatICAlign` arguments, `store`, `demo_mode`,
        `selector_kwargs`, `show_progress` (an unknown one: `TypeError`, before loading).
        """
        return assembly.build_chat_model(cls, None, **kwargs)

    @classmethod
    def from_model_id(cls, model_id: str, **kwargs: Any) -> ChatICAlign:
        """Any causal LM by hub id or folder, as `from_defaults` (plus `device_map`, `dtype`)."""
        return assembly.build_chat_model(cls, model_id, **kwargs)

    @classmethod
    def from_server(
        cls, base_url: str, *, model: str | None = None, tokenizer: Any = None, **kwargs: Any
    ) -> ChatICAlign:
        """The base model on an OpenAI-compatible server; `kwargs` as `server_chat`'s."""
        return assembly.server_chat(cls, base_url, model=model, tokenizer=tokenizer, **kwargs)

    @property
    def _llm_type(self) -> str:
        return "chat-icalign"

    @property
    def format(self) -> PromptFormat:
        """The resolved prompt format."""
        return self._format

    @property
    def backend(self) -> GenerationBackend:
        """The given backend, else `llm`'s (built on first use); in a `batch`, its wrapper."""
        backend = self.generation_backend or self._backend
        if backend is None:
            if self.llm is None:
                raise ValueError(NO_MODEL)
            self._backend = backend_for_llm(self.llm, self.token_counter, self.context_window)
            backend = self._backend
        return batched(backend)

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return identifying_params(self, self._model_name())

    def _has_model(self) -> bool:
        return self.llm is not None or (self.generation_backend or self._backend) is not None

    def _model_name(self) -> str:
        return self.model_name or (self.backend.model_name if self._has_model() else "unknown")

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return ls_params(self, self._model_name(), stop, kwargs)

    def _resolve_model_profile(self) -> ModelProfile | None:
        return model_profile(self)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        confirm_tools: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (LangChain tools, functions, Pydantic classes or OpenAI dicts).

        The model writes `<tool_call>{"name": ..., "arguments": ...}` (under the tools'
        grammar where the backend's `capabilities.grammar`), parsed into `tool_calls`.
        Given text cannot make a call (see `tools.call_guard`). `tool_choice`: "auto"
        (default), "any"/"required"/a name (forced) or "none"; `confirm_tools`: tools
        called only when the user's latest message names them in its own words.
        """
        return super().bind(**{**kwargs, **tool_options(tools, tool_choice, confirm_tools)})

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: StructuredOutputMethod = "function_calling",
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answers parsed as `schema`; `method`: function_calling, json_mode or json_schema."""
        return structured_output_runnable(self, schema, method=method, include_raw=include_raw)

    def _tokenizer(self) -> Any | None:  # the model's, else a `token_counter` that is one
        counter = self.token_counter if hasattr(self.token_counter, "encode") else None
        return counter if self.backend.tokenizer is None else self.backend.tokenizer

    def get_token_ids(self, text: str) -> list[int]:
        """Ids from the model's own tokenizer, no special tokens (special-token text as text).

        Without a tokenizer, LangChain's default (`custom_get_token_ids`, else GPT-2's).
        """
        tokenizer = self._tokenizer()
        if self.custom_get_token_ids is not None or tokenizer is None:
            return super().get_token_ids(text)
        return plain_token_ids(tokenizer, text)

    def get_num_tokens(self, text: str) -> int:
        """`len(get_token_ids(text))`; the `token_counter`'s count where there are no ids."""
        if self.custom_get_token_ids is not None or self._tokenizer() is not None:
            return len(self.get_token_ids(text))
        return self.backend.count_tokens(text)

    def __getstate__(self) -> dict[Any, Any]:
        # A built backend is rebuilt after unpickling; a given one cannot be (refused).
        return pickle_state(super().__getstate__(), self.generation_backend)

    def prepare_prompt(
        self, messages: LanguageModelInput, *, max_new_tokens: int | None = None, **kwargs: Any
    ) -> PreparedPrompt:
        """The prompt for `messages` (retrieval included; call options as `invoke`'s).

        Raises `ContextWindowExceededError` when the conversation alone leaves no room.
        """
        chat = self._convert_input(messages).to_messages()
        mode = RequestMode.from_kwargs(kwargs, constrained=self._constrains())
        call_options(type(self), kwargs)
        return self._prepare(chat, max_new_tokens or self.max_new_tokens, mode)

    def _prepare(
        self, messages: Sequence[BaseMessage], max_new_tokens: int, mode: RequestMode
    ) -> PreparedPrompt:
        return PromptBuilder.for_chat(self).prepare(messages, max_new_tokens, mode)

    def _constrains(self) -> bool:
        """Whether the backend decodes under a grammar (tool calls and JSON answers then do)."""
        return self._has_model() and self.backend.capabilities.grammar

    def _whole_message(
        self, mode: RequestMode, prompt: PreparedPrompt, params: GenerationParams
    ) -> AIMessage:
        """The answer generated whole, or none (finish reason "timeout") when no time is left."""
        generation = timed_out(prompt)
        if not out_of_time(params):
            generation = mode.generate(self.backend, prompt.text, params)
        return message_for(prompt, generation, mode, self._model_name(), self.format)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        started = time.monotonic()
        given = dict(kwargs)
        mode = RequestMode.from_kwargs(kwargs, constrained=self._constrains())
        if self.streaming and mode.streams_text:
            return merged_result(self._stream(messages, stop, run_manager, **kwargs))
        params = generation_params(self, stop, kwargs, mode)
        prompt = self._prepare(messages, params.max_new_tokens, mode)
        params = time_left(mode.for_prompt(params, prompt.conversation), started)
        message = self._whole_message(mode, prompt, params)
        if only_repeats(message) and (redo := answer_instead(self, messages, stop, given)):
            return merged_result(iter(redo))
        return ChatResult(
            generations=[ChatGeneration(message=message)],
            llm_output={"model_name": self._model_name()},
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Generator[ChatGenerationChunk, None, None]:
        started = time.monotonic()
        given = dict(kwargs)
        mode = RequestMode.from_kwargs(kwargs, constrained=self._constrains())
        params = generation_params(self, stop, kwargs, mode)
        prompt = self._prepare(messages, params.max_new_tokens, mode)
        params = time_left(mode.for_prompt(params, prompt.conversation), started)
        if not mode.streams_text:  # a tool call or JSON answer: generated whole, one chunk
            message = self._whole_message(mode, prompt, params)
            redo = answer_instead(self, messages, stop, given) if only_repeats(message) else []
            yield from redo or [ChatGenerationChunk(message=as_chunk(message))]
            return
        no_time = iter((timed_out(prompt),))
        events = no_time if out_of_time(params) else self.backend.stream(prompt.text, params)
        yield from stream_chunks(events, prompt, self._model_name(), self.format, run_manager)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for item in astream_chunks(self._stream(messages, stop, None, **kwargs), run_manager):
            yield item

    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """Several inputs; on a backend that batches, decoded together (`max_concurrency` caps).

        Prepared as `invoke` would (queries embedded together); callbacks per input.
        """
        together = batch_together(self, inputs, config, kwargs, return_exceptions=return_exceptions)
        if together is None:
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        return together

    async def abatch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """Async `batch`: the batch decodes together in an executor thread."""
        if len(inputs) < 2 or self.streaming or not self._has_model():
            return await super().abatch(
                inputs, config, return_exceptions=return_exceptions, **kwargs
            )
        return await run_in_executor(
            None, self.batch, inputs, config, return_exceptions=return_exceptions, **kwargs
        )


def answer_instead(
    chat: ChatICAlign, messages: list[BaseMessage], stop: list[str] | None, given: dict[str, Any]
) -> list[ChatGenerationChunk]:
    """After a call that repeats an answered one: a text answer (ended before any call)."""
    chunks = list(chat._stream(messages, [*(stop or []), TOOL_CALL_OPEN], **plain(given)))
    return chunks if "".join(str(c.message.content) for c in chunks).strip() else []
