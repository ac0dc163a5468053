"""`ChatICAlign`: a chat model made of a base LLM and retrieved alignment demos."""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
import time
import warnings
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, cast

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import (
    BaseLLM,
    LangSmithParams,
    LanguageModelInput,
    ModelProfile,
)
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.runnables.config import RunnableConfig, get_config_list, run_in_executor
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from langchain_icalign.batching import ACTIVE_WINDOW, BatchWindow, embed_queries
from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.formats import Conversation, PromptFormat, get_prompt_format
from langchain_icalign.generation import Generation, GenerationBackend, GenerationParams
from langchain_icalign.llm_backend import LLMBackend
from langchain_icalign.messages import messages_to_conversation
from langchain_icalign.request_mode import RequestMode, normalize_tool_choice, retrieval_query
from langchain_icalign.selector import AlignmentExampleSelector, SelectedDemo
from langchain_icalign.structured_output import StructuredOutputMethod, structured_output_runnable
from langchain_icalign.token_counting import TokenCounterLike
from langchain_icalign.tool_calling import parse_answer

__all__ = ["CALL_OPTIONS", "ChatICAlign", "ContextWindowExceededError", "PreparedPrompt"]

CALL_OPTIONS: dict[str, str] = {
    "max_new_tokens": "max_new_tokens",
    "max_tokens": "max_new_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "timeout": "timeout",
    "repetition_penalty": "repetition_penalty",
}
"""Generation options a call may override, and the `ChatICAlign` field each overrides.

Tool and output options (`tools`, `tool_choice`, `response_format`, ...) come from
`bind_tools` and `with_structured_output`."""

# Read by LangChain itself (`stream=` by `BaseChatModel`, `model=` by its tracing).
_LANGCHAIN_OPTIONS = frozenset({"stream", "model"})


def _builtin_tool_demos() -> list[AlignmentDemo]:
    from langchain_icalign.builtin_demos import tool_demos

    return list(tool_demos())


def _as_chunk(message: AIMessage) -> AIMessageChunk:
    return AIMessageChunk(
        content=message.content,
        usage_metadata=message.usage_metadata,
        response_metadata=message.response_metadata,
        tool_call_chunks=[
            tool_call_chunk(
                name=call["name"], args=json.dumps(call["args"]), id=call["id"], index=index
            )
            for index, call in enumerate(message.tool_calls)
        ],
        invalid_tool_calls=message.invalid_tool_calls,
        chunk_position="last",
    )


def _time_left(params: GenerationParams, started: float) -> GenerationParams:
    """`params` whose timeout is what is left of the call's since `started`.

    A call's timeout counts from the call: retrieval and rendering use part of it.
    """
    if params.timeout is None:
        return params
    return dataclasses.replace(params, timeout=params.timeout - (time.monotonic() - started))


def _out_of_time(params: GenerationParams) -> bool:
    return params.timeout is not None and params.timeout <= 0


def _timed_out(prompt: PreparedPrompt) -> Generation:
    """The outcome of a call whose time ran out before generation: no text, "timeout"."""
    return Generation("", prompt.tokens, 0, "timeout")


@functools.cache
def _field_adapter(name: str) -> TypeAdapter[Any]:
    """A validator for one `ChatICAlign` field, with the constructor's constraints."""
    field = ChatICAlign.model_fields[name]
    annotation: Any = field.annotation
    if field.metadata:
        annotation = Annotated[(annotation, *field.metadata)]
    return TypeAdapter(annotation)


class ContextWindowExceededError(ValueError):
    """The conversation itself (without demos) leaves no room for the answer."""


@dataclass(frozen=True)
class PreparedPrompt:
    """A rendered prompt and what went into it.

    Attributes:
        text: The prompt given to the base model.
        conversation: The chat it renders.
        demos: Retrieved demos in prompt order (most relevant last).
        constant_demos: Demos placed first on every request.
        tokens: Tokens in `text`.
        messages: The chat `conversation` was made from (where a tool call may come from).
    """

    text: str
    conversation: Conversation
    demos: tuple[SelectedDemo, ...]
    constant_demos: tuple[AlignmentDemo, ...]
    tokens: int
    messages: tuple[BaseMessage, ...] = ()


class ChatICAlign(BaseChatModel):
    """Chat model that makes a base (non-chat) LLM answer like an aligned assistant.

    Each request is rendered as a few-shot prompt: an optional system text, constant
    demos, demos retrieved for the last user message by an `AlignmentExampleSelector`
    (Han 2023: most relevant last, under a token budget that leaves room for the
    conversation and the answer), the conversation so far, and the open question. The
    base model continues it; generation stops as soon as the format's stop string appears.

    Setup:
        ```bash
        pip install langchain-icalign
        ```

    Key init args — completion params:
        max_new_tokens (alias max_tokens): int
            Most tokens to generate (default 512).
        temperature: float
            Sampling temperature, 0 for greedy (default 0.7, as Han 2023).
        top_p, top_k: float, int | None
            Nucleus mass (default 1.0) and top-k (default 50, transformers' old default,
            which Han's code used implicitly).
        stop: list[str] | None
            Extra stop strings (the format's own are always used).
        seed: int | None
            Seed for reproducible sampling.

    Key init args — client params:
        llm: BaseLLM
            A `HuggingFacePipeline` (generated with its model and tokenizer directly) or any
            other LangChain LLM (stop strings passed through).
        selector: AlignmentExampleSelector | None
            Where demos come from; None runs zero-shot.
        prompt_format: "han" | "urial" | PromptFormat
            How the prompt is laid out.
        system_prompt: str | None
            System text used when the chat has no system message.
        constant_demos: list[AlignmentDemo]
            Demos placed before the retrieved ones on every request.

    Instantiate:
        ```python
        from langchain_huggingface import HuggingFacePipeline
        from langchain_icalign import ChatICAlign

        llm = HuggingFacePipeline(pipeline=pipe)  # a base model, e.g. Llama-2-7b-hf
        chat = ChatICAlign(llm=llm, selector=selector, max_new_tokens=256)
        ```

    Invoke:
        ```python
        chat.invoke("How do I keep basil alive indoors?")
        # AIMessage(content="Basil needs ...", usage_metadata={...},
        #           response_metadata={"demos": [{"id": ..., "score": ...}], ...})
        ```

    Stream:
        ```python
        for chunk in chat.stream("Explain recursion to a child."):
            print(chunk.content, end="")
        ```

    Async:
        ```python
        await chat.ainvoke("...")
        async for chunk in chat.astream("..."):
            ...
        ```

    Tool calling:
        ```python
        bound = chat.bind_tools([get_weather], tool_choice="auto")
        message = bound.invoke("What's the weather in Oslo?")
        message.tool_calls
        # [{"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_...", ...}]
        ```

    Structured output:
        ```python
        class Person(BaseModel):
            name: str
            age: int


        chat.with_structured_output(Person).invoke("Ada Lovelace was 36.")
        # Person(name="Ada Lovelace", age=36)
        ```

    Token usage:
        ```python
        chat.invoke("Hi").usage_metadata
        # {"input_tokens": 2113, "output_tokens": 41, "total_tokens": 2154}
        ```

    Response metadata:
        ```python
        chat.invoke("Hi").response_metadata
        # {"model_name": ..., "finish_reason": "stop", "prompt_format": "han",
        #  "prompt_tokens": 2113, "demos": [{"id": ..., "score": 0.71, "tokens": 230}, ...]}
        ```
    """

    # Unknown arguments are refused, as in langchain-huggingface's `HuggingFacePipeline`:
    # a misspelt option silently ignored would change nothing and say nothing.
    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True, extra="forbid")

    llm: BaseLLM | None = Field(default=None, exclude=True)
    """The base LLM; a `HuggingFacePipeline` is run through transformers directly."""
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
    """Penalise tokens already in the prompt or answer (>1; off by default, as in Han 2023).
    Small base models loop; 1.1-1.3 curbs that."""
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Extra stop strings."""
    timeout: float | None = None
    """Seconds the whole call may take, from `invoke`/`stream` on: demo retrieval, reading the
    prompt and decoding. When they run out the answer ends there, with finish reason
    "timeout": the text generated so far, or none when time ran out before the first token
    (the prompt is read in chunks with the transformers backend, checking the time between
    them). In a `batch` it bounds the batched decoding only."""
    max_retries: int = 0
    """Retries of a model server's request that failed before its answer started
    (`from_server`); local generation is not retried."""
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
        return self

    # -- set-up ----------------------------------------------------------------------------

    @classmethod
    def from_defaults(cls, **kwargs: Any) -> ChatICAlign:
        """The offline default stack: Gemma-3-270m base, all-MiniLM-L6-v2, built-in demos.

        The first call converts the model into the cache folder (`$ICALIGN_HOME`, else
        `~/.cache/langchain_icalign`) and indexes the built-in pool; later calls take
        seconds. Nothing is downloaded.

        Args:
            **kwargs: `ChatICAlign` arguments (`max_new_tokens`, `temperature`,
                `prompt_format`, ...) and those of `defaults.build_chat_model` (`store`,
                `demo_mode`, `selector_kwargs`, `show_progress`).

        Within a process, chat models share the default store (it is opened and indexed
        once).

        Raises:
            TypeError: For an unknown argument, before anything loads.
        """
        from langchain_icalign.defaults import build_chat_model

        return build_chat_model(None, **kwargs)

    @classmethod
    def from_server(
        cls, base_url: str, *, model: str | None = None, tokenizer: Any = None, **kwargs: Any
    ) -> ChatICAlign:
        """The base model on an OpenAI-compatible completions server (llama.cpp, vLLM, TGI).

        Args:
            base_url: The server's API URL, for example `http://127.0.0.1:8080/v1`.
            model: Model name to request (the server's first when None).
            tokenizer: A local tokenizer folder, tokenizer or counting function; None
                counts tokens with the server's tokenize endpoint.
            **kwargs: As for `server_backend.server_chat` (`store`, `request_timeout`,
                `grammar_field`, ...) and `ChatICAlign` arguments (`max_retries`, ...).
        """
        from langchain_icalign.server_backend import server_chat

        return server_chat(base_url, model=model, tokenizer=tokenizer, **kwargs)

    @classmethod
    def from_model_id(cls, model_id: str, **kwargs: Any) -> ChatICAlign:
        """Any causal LM by hub id or local folder (for example `meta-llama/Llama-2-7b-hf`).

        Args:
            model_id: Hub id or folder; loaded with `local_files_only` when
                `HF_HUB_OFFLINE` is set.
            **kwargs: As for `from_defaults`, plus `device_map` and `dtype` (float32 on
                CPU; bfloat16, or float16 where bf16 is unsupported, on GPU).
        """
        from langchain_icalign.defaults import build_chat_model

        return build_chat_model(model_id, **kwargs)

    @property
    def _llm_type(self) -> str:
        return "chat-icalign"

    @property
    def format(self) -> PromptFormat:
        """The resolved prompt format."""
        return self._format

    @property
    def backend(self) -> GenerationBackend:
        """The generation backend for `llm`, built on first use (no model load)."""
        if self._backend is None:
            self._backend = self._make_backend()
        return self._backend

    def _make_backend(self) -> GenerationBackend:
        if self.llm is None:
            msg = "ChatICAlign needs llm= (a HuggingFacePipeline or another LangChain BaseLLM)"
            raise ValueError(msg)
        pipeline = getattr(self.llm, "pipeline", None)
        if pipeline is not None and hasattr(pipeline, "model") and hasattr(pipeline, "tokenizer"):
            from langchain_icalign.transformers_backend import TransformersBackend

            backend: GenerationBackend = TransformersBackend(
                pipeline.model, pipeline.tokenizer, getattr(self.llm, "model_id", None)
            )
        else:
            backend = LLMBackend(self.llm, self.token_counter, self.context_window)
        if self.context_window is not None:
            backend.context_window = self.context_window
        return backend

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self._model_name(),
            "prompt_format": self.format.name,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
        }

    def _model_name(self) -> str:
        if self.model_name:
            return self.model_name
        if self.llm is None:
            return "unknown"
        return self.backend.model_name

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="icalign",
            ls_model_name=str(kwargs.get("model") or self._model_name()),
            ls_model_type="chat",
            ls_temperature=kwargs.get("temperature", self.temperature),
            ls_max_tokens=kwargs.get(
                "max_tokens", kwargs.get("max_new_tokens", self.max_new_tokens)
            ),
        )
        stops = stop or self.stop
        if stops:
            params["ls_stop"] = list(stops)
        return params

    def _resolve_model_profile(self) -> ModelProfile | None:
        window = self.context_window  # the model's own is known only once the backend is built
        profile = ModelProfile(
            max_output_tokens=self.max_new_tokens,
            text_inputs=True,
            text_outputs=True,
            image_inputs=False,
            audio_inputs=False,
            tool_calling=True,
            tool_choice=True,
            structured_output=False,
        )
        if window is not None:
            profile["max_input_tokens"] = window
        return profile

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        confirm_tools: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools, described in the prompt and taught by tool-call demos.

        The model calls a tool by writing `<tool_call>{"name": ..., "arguments": ...}`;
        the call is parsed into `AIMessage.tool_calls` (arguments checked against the
        schema, undeclared ones refused; malformed calls go to `invalid_tool_calls`). On a
        backend that `supports_grammar` (transformers) the call is decoded under a grammar:
        its name is a bound tool's and its arguments follow that tool's schema.
        `ToolMessage` results are rendered back into the conversation.

        Given text cannot make a call: tool-call tags in messages and tool results are
        broken, a call a tool result wrote and the model copied is refused (in
        `invalid_tool_calls`, with the reason), and one reproduced from a human message
        is reported in `response_metadata["tool_calls_from_user_text"]`.

        Args:
            tools: Tools as LangChain tools, functions, Pydantic classes or OpenAI dicts.
            tool_choice: "auto" (default), "any"/"required" (a call is forced), a tool
                name (that call is forced), or "none".
            confirm_tools: Tools (with side effects) that may only be called when the
                user's latest message names them in its own words ("delete all files"
                for `delete_all_files`); other calls to them are refused.
            **kwargs: Other call options to bind.
        """
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        choice = normalize_tool_choice(tool_choice)
        names = [tool["function"]["name"] for tool in formatted]
        if choice not in (None, "auto", "any", "required", "none", *names):
            msg = f"tool_choice {tool_choice!r} names no bound tool; tools are {names}"
            raise ValueError(msg)
        confirm = list(confirm_tools or ())
        unknown = [name for name in confirm if name not in names]
        if unknown:
            msg = f"confirm_tools names {unknown}, which are not bound; tools are {names}"
            raise ValueError(msg)
        if confirm:
            kwargs["confirm_tools"] = confirm
        return super().bind(tools=formatted, tool_choice=choice, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: StructuredOutputMethod = "function_calling",
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answers parsed as `schema` (a Pydantic class, a TypedDict or a JSON schema).

        Args:
            schema: The output schema.
            include_raw: Return `{"raw", "parsed", "parsing_error"}` instead of raising.
            method: "function_calling" (a forced tool call, default), "json_mode" or
                "json_schema" (a JSON answer whose prefix is forced).
            **kwargs: Not used; accepted for compatibility.
        """
        return structured_output_runnable(self, schema, method=method, include_raw=include_raw)

    def _tokenizer(self) -> Any | None:
        """The model's tokenizer, else a `token_counter` that is one; None when neither."""
        tokenizer = getattr(self.backend, "tokenizer", None)
        if tokenizer is None and hasattr(self.token_counter, "encode"):
            tokenizer = self.token_counter
        return tokenizer

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids of `text` from the model's own tokenizer, without special tokens.

        Text that merely looks like a special token is encoded as the plain text it is,
        as in prompts. Without a tokenizer (an LLM counted by a callable), LangChain's
        default applies (`custom_get_token_ids`, else GPT-2's tokenizer).
        """
        tokenizer = self._tokenizer()
        if self.custom_get_token_ids is not None or tokenizer is None:
            return super().get_token_ids(text)
        try:
            ids = tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True)
        except TypeError:  # a tokenizer without split_special_tokens
            ids = tokenizer.encode(text)
        return list(ids)

    def get_num_tokens(self, text: str) -> int:
        """`len(get_token_ids(text))`; the `token_counter`'s count where there are no ids."""
        if self.custom_get_token_ids is not None or self._tokenizer() is not None:
            return len(self.get_token_ids(text))
        return self.backend.count_tokens(text)

    def __getstate__(self) -> dict[Any, Any]:
        # The backend holds locks and caches: a pickled chat builds its own on first use.
        # (A selector's `DemoStore` refuses to be pickled, saying what to do instead.)
        state = super().__getstate__()
        private = dict(state.get("__pydantic_private__") or {})
        private["_backend"] = None
        return {**state, "__pydantic_private__": private}

    # -- prompt ----------------------------------------------------------------------------

    def prepare_prompt(
        self,
        messages: LanguageModelInput,
        *,
        max_new_tokens: int | None = None,
        **kwargs: Any,
    ) -> PreparedPrompt:
        """Render the prompt for `messages` (retrieval included) without generating.

        The demo budget is the selector's `max_tokens`, narrowed so that the conversation,
        the demos and `max_new_tokens` fit the model's context window.

        Args:
            messages: What `invoke` takes: a string, messages, or a prompt value.
            max_new_tokens: Room to leave for the answer (default `self.max_new_tokens`).
            **kwargs: Call options as `invoke` takes them (`tools`, `tool_choice`, ...).

        Raises:
            ContextWindowExceededError: When the conversation alone leaves no room.
        """
        chat = self._convert_input(messages).to_messages()
        options = dict(kwargs)
        mode = RequestMode.from_kwargs(options, constrained=self._constrains())
        self._call_options(options)
        return self._prepare(chat, max_new_tokens or self.max_new_tokens, mode)

    def _prepare(
        self, messages: Sequence[BaseMessage], max_new_tokens: int, mode: RequestMode
    ) -> PreparedPrompt:
        conversation = mode.shape(
            messages_to_conversation(messages, self.system_prompt, neutralize=mode.neutralize)
        )
        backend = self.backend
        fmt = self.format
        special = backend.special_tokens
        # Tool-call demos go last, nearest the query: placed first, far from it, a small
        # model follows the retrieved (prose) demos and rarely calls a tool.
        first, last = tuple(self.constant_demos), mode.demos(self.tool_demos, messages)
        base_text = fmt.render(conversation, (*first, *last), special)
        base_tokens = backend.count_tokens(base_text)
        window = backend.context_window
        room = None if window is None else window - base_tokens - max_new_tokens
        if room is not None and room < 0:
            msg = (
                f"the conversation takes {base_tokens} tokens and the answer up to "
                f"{max_new_tokens}, more than the model's context window of {window}; "
                "shorten the messages or lower max_new_tokens"
            )
            raise ContextWindowExceededError(msg)
        selected = self._select(retrieval_query(messages, conversation), room)
        prepared = self._fit(conversation, first, selected, last, max_new_tokens)
        return dataclasses.replace(prepared, messages=tuple(messages))

    def _select(self, query: str, room: int | None) -> list[SelectedDemo]:
        if self.selector is None:
            return []
        budget = self.selector.max_tokens if room is None else min(room, self.selector.max_tokens)
        window = ACTIVE_WINDOW.get()
        vector = window.query_vectors.get(query) if window is not None else None
        if budget <= 0:
            selected = []
        elif vector is not None:  # embedded with the rest of its batch
            selected = self.selector.pack(self.selector.retrieve_by_vector(vector), budget)
        else:
            selected = self.selector.select_demos(query, max_tokens=budget)
        self._warn_if_empty(selected)
        return selected

    def _warn_if_empty(self, selected: list[SelectedDemo]) -> None:
        if not selected and self.selector is not None and self.selector.store.count() == 0:
            warnings.warn(
                "the demo store is empty: answering zero-shot; add demos with DemoStore.add_demos",
                stacklevel=4,
            )

    def _fit(
        self,
        conversation: Conversation,
        first: tuple[AlignmentDemo, ...],
        selected: list[SelectedDemo],
        last: tuple[AlignmentDemo, ...],
        max_new_tokens: int,
    ) -> PreparedPrompt:
        backend = self.backend
        window = backend.context_window
        while True:
            demos = [*first, *(s.demo for s in selected), *last]
            text = self.format.render(conversation, demos, backend.special_tokens)
            tokens = backend.count_tokens(text)
            # Per-demo counts are summed, but tokenising the joined text can differ a little.
            if window is None or tokens + max_new_tokens <= window or not selected:
                constant = (*first, *last)
                return PreparedPrompt(text, conversation, tuple(selected), constant, tokens)
            selected = selected[1:]  # drop the least relevant (first) demo

    # -- generation ------------------------------------------------------------------------

    def _params(
        self, stop: list[str] | None, kwargs: dict[str, Any], mode: RequestMode
    ) -> GenerationParams:
        options = self._call_options(kwargs)
        stops = [*self.format.stop, *(self.stop or []), *(stop or []), *mode.stop]
        return GenerationParams(
            max_new_tokens=self._max_new_tokens(kwargs),
            temperature=float(options.get("temperature", self.temperature)),
            top_p=float(options.get("top_p", self.top_p)),
            top_k=options.get("top_k", self.top_k),
            seed=options.get("seed", self.seed),
            stop=tuple(dict.fromkeys(stops)),
            timeout=options.get("timeout", self.timeout),
            repetition_penalty=options.get("repetition_penalty", self.repetition_penalty),
        )

    def _call_options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's generation options, checked as the constructor checks its arguments.

        `kwargs` is what is left once `RequestMode.from_kwargs` took the tool and output
        options. None means "the model's setting".

        Raises:
            TypeError: For an option `ChatICAlign` does not know.
            ValueError: For a value the constructor would refuse (`temperature=-1`).
        """
        unknown = sorted(set(kwargs) - CALL_OPTIONS.keys() - _LANGCHAIN_OPTIONS)
        if unknown:
            msg = (
                f"ChatICAlign got unexpected call option(s) {unknown}; it takes "
                f"{sorted(CALL_OPTIONS)} and stop=, and tools or output formats through "
                "bind_tools and with_structured_output"
            )
            raise TypeError(msg)
        options: dict[str, Any] = {}
        for key, value in kwargs.items():
            # `max_new_tokens` has its own check (`_max_new_tokens`), refusing True too.
            if key not in CALL_OPTIONS or value is None or CALL_OPTIONS[key] == "max_new_tokens":
                continue
            field = CALL_OPTIONS[key]
            try:
                options[field] = _field_adapter(field).validate_python(value)
            except ValidationError as error:
                reason = error.errors()[0]["msg"]
                msg = f"invalid call option {key}={value!r}: {reason}"
                raise ValueError(msg) from None
        return options

    def _max_new_tokens(self, kwargs: dict[str, Any]) -> int:
        """The call's `max_new_tokens` (or `max_tokens`), else the model's.

        Raises:
            ValueError: When the call's value is not a positive whole number.
        """
        for key in ("max_new_tokens", "max_tokens"):
            value = kwargs.get(key)
            if value is None:
                continue
            try:
                count = operator.index(value)
            except TypeError:
                count = 0
            if isinstance(value, bool) or count < 1:
                msg = f"{key} must be a positive whole number of tokens, got {value!r}"
                raise ValueError(msg)
            return count
        return self.max_new_tokens

    def _metadata(self, prompt: PreparedPrompt, generation: Generation) -> dict[str, Any]:
        return {
            "model_name": self._model_name(),
            "finish_reason": generation.finish_reason,
            "prompt_format": self.format.name,
            "prompt_tokens": prompt.tokens,
            "demos": [
                {"id": s.demo.id, "score": s.score, "tokens": s.tokens} for s in prompt.demos
            ],
            "constant_demos": [d.id for d in prompt.constant_demos],
        }

    @staticmethod
    def _usage(generation: Generation) -> UsageMetadata:
        usage = UsageMetadata(
            input_tokens=generation.input_tokens,
            output_tokens=generation.output_tokens,
            total_tokens=generation.input_tokens + generation.output_tokens,
        )
        if generation.cached_tokens:  # prompt tokens read from the prefix cache
            usage["input_token_details"] = {"cache_read": generation.cached_tokens}
        return usage

    def _message(
        self, prompt: PreparedPrompt, generation: Generation, mode: RequestMode
    ) -> AIMessage:
        text = mode.answer(
            self.format.finalize(prompt.conversation.answer_prefix + generation.text)
        )
        extra: dict[str, Any] = {}
        metadata = self._metadata(prompt, generation)
        if mode.tools:
            parsed = parse_answer(text, mode.tools)
            text = parsed.content
            guarded = mode.guard(parsed.tool_calls, parsed.invalid_tool_calls, prompt.messages)
            extra = {
                "tool_calls": guarded.tool_calls,
                "invalid_tool_calls": guarded.invalid_tool_calls,
            }
            if guarded.from_user_text:
                metadata["tool_calls_from_user_text"] = guarded.from_user_text
        if extra.get("tool_calls"):
            metadata["finish_reason"] = "tool_calls"
        return AIMessage(
            content=text,
            usage_metadata=self._usage(generation),
            response_metadata=metadata,
            **extra,
        )

    def _constrains(self) -> bool:
        """Whether the backend decodes under a grammar (tool calls and JSON answers then do)."""
        has_model = self.llm is not None or self._backend is not None
        return has_model and self.backend.supports_grammar

    def _generate_whole(
        self, mode: RequestMode, prompt: PreparedPrompt, params: GenerationParams
    ) -> Generation:
        """The whole answer, or none (finish reason "timeout") when no time is left."""
        if _out_of_time(params):
            return _timed_out(prompt)
        return mode.generate(self.backend.generate, prompt.text, params)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        started = time.monotonic()
        mode = RequestMode.from_kwargs(kwargs, constrained=self._constrains())
        if self.streaming and mode.streams_text:
            chunks = list(self._stream(messages, stop, run_manager, **kwargs))
            merged = chunks[0]
            for chunk in chunks[1:]:
                merged += chunk
            message = AIMessage(
                content=merged.message.content,
                usage_metadata=getattr(merged.message, "usage_metadata", None),
                response_metadata=merged.message.response_metadata,
            )
            return ChatResult(generations=[ChatGeneration(message=message)])
        params = self._params(stop, kwargs, mode)
        window = ACTIVE_WINDOW.get()
        if window is None:
            prompt = self._prepare(messages, params.max_new_tokens, mode)
            params = _time_left(mode.for_prompt(params, prompt.conversation), started)
            generation = self._generate_whole(mode, prompt, params)
        else:  # part of a `batch`: generate together with the other inputs
            try:
                prompt = self._prepare(messages, params.max_new_tokens, mode)
            except BaseException:
                window.withdraw()
                raise
            params = mode.for_prompt(params, prompt.conversation)
            if mode.guided:  # several short steps, each on the last: run alone
                window.withdraw()
                generation = self._generate_whole(mode, prompt, _time_left(params, started))
            else:
                generation = mode.close(window.submit(prompt.text, params, started), params)
        return ChatResult(
            generations=[ChatGeneration(message=self._message(prompt, generation, mode))],
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
        mode = RequestMode.from_kwargs(kwargs, constrained=self._constrains())
        params = self._params(stop, kwargs, mode)
        prompt = self._prepare(messages, params.max_new_tokens, mode)
        params = _time_left(mode.for_prompt(params, prompt.conversation), started)
        if not mode.streams_text:
            # A tool call or JSON answer is only meaningful whole: generate, then one chunk.
            generation = self._generate_whole(mode, prompt, params)
            message = self._message(prompt, generation, mode)
            yield ChatGenerationChunk(message=_as_chunk(message))
            return
        events = (
            (event for event in (_timed_out(prompt),))
            if _out_of_time(params)
            else cast(
                "Generator[str | Generation, None, None]", self.backend.stream(prompt.text, params)
            )
        )
        # Text is sent as the format settles it, so that the streamed answer is exactly the
        # invoked one (finalize may drop trailing whitespace or URIAL's closing fence).
        prefix, raw, sent = prompt.conversation.answer_prefix, "", ""
        try:
            for event in events:
                if isinstance(event, Generation):
                    final = self.format.finalize(prefix + event.text)
                    if final.startswith(sent) and len(final) > len(sent):
                        yield self._text_chunk(final[len(sent) :], run_manager)
                    yield ChatGenerationChunk(
                        message=AIMessageChunk(
                            content="",
                            usage_metadata=self._usage(event),
                            response_metadata=self._metadata(prompt, event),
                            chunk_position="last",
                        )
                    )
                    continue
                raw += event
                settled = self.format.settled(prefix + raw)
                if settled.startswith(sent) and len(settled) > len(sent):
                    yield self._text_chunk(settled[len(sent) :], run_manager)
                    sent = settled
        finally:
            events.close()

    @staticmethod
    def _text_chunk(text: str, run_manager: CallbackManagerForLLMRun | None) -> ChatGenerationChunk:
        chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
        if run_manager is not None:
            run_manager.on_llm_new_token(text, chunk=chunk)
        return chunk

    # -- batches ---------------------------------------------------------------------------

    def _batch_window(
        self, inputs: list[LanguageModelInput], config: RunnableConfig | list[RunnableConfig] | None
    ) -> BatchWindow | None:
        """A window that runs the batch's generations together, or None where it cannot."""
        if len(inputs) < 2 or self.streaming or self.llm is None or ACTIVE_WINDOW.get():
            return None
        backend = self.backend
        if type(backend).generate_batch is GenerationBackend.generate_batch:
            return None  # this backend generates one prompt at a time anyway
        capacity = get_config_list(config, len(inputs))[0].get("max_concurrency") or len(inputs)
        vectors: dict[str, list[float]] = {}
        if self.selector is not None:
            try:
                queries = []
                for item in inputs:
                    messages = self._convert_input(item).to_messages()
                    conversation = messages_to_conversation(messages, self.system_prompt)
                    queries.append(retrieval_query(messages, conversation))
                embedded = embed_queries(self.selector.store.embeddings, queries)
                vectors = dict(zip(queries, embedded, strict=True))
            except Exception:  # each input then embeds (and reports errors) on its own
                vectors = {}
        return BatchWindow(backend, len(inputs), capacity, query_vectors=vectors)

    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """Answer several inputs; with a transformers model, they decode as one batch.

        Each input is prepared (demos selected) as `invoke` would, the queries embedded
        together, then the prompts generated together, left-padded, so that 8 questions
        take far less than 8 times one. Callbacks, tracing and `return_exceptions` work
        per input as usual. Other backends run the inputs one by one.

        Args:
            inputs: What `invoke` takes, one per answer.
            config: One config or one per input; `max_concurrency` caps the batch size.
            return_exceptions: Return an input's exception instead of raising it.
            **kwargs: Call options for every input (`max_tokens`, `stop`, ...).
        """
        window = self._batch_window(inputs, config)
        if window is None:
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)
        configs = [
            RunnableConfig(**{**c, "max_concurrency": window.capacity})  # type: ignore[typeddict-item]
            for c in get_config_list(config, len(inputs))
        ]
        token = ACTIVE_WINDOW.set(window)
        try:
            return super().batch(inputs, configs, return_exceptions=return_exceptions, **kwargs)
        finally:
            ACTIVE_WINDOW.reset(token)

    async def abatch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """Async `batch`: the batch decodes together in an executor thread."""
        if len(inputs) < 2 or self.streaming or self.llm is None:
            return await super().abatch(
                inputs, config, return_exceptions=return_exceptions, **kwargs
            )
        return await run_in_executor(
            None,
            lambda: self.batch(inputs, config, return_exceptions=return_exceptions, **kwargs),
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        iterator = self._stream(messages, stop, None, **kwargs)
        try:
            while True:
                item = await run_in_executor(None, next, iterator, None)
                if item is None:
                    break
                if run_manager is not None and item.text:
                    await run_manager.on_llm_new_token(item.text, chunk=item)
                yield item
        finally:
            # Stops decoding when the consumer leaves early.
            await run_in_executor(None, iterator.close)
