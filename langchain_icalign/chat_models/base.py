"""`ChatICAlign`: a chat model made of a base LLM and retrieved alignment demos."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import Any

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
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.runnables.config import RunnableConfig, get_config_list, run_in_executor
from langchain_core.tools import BaseTool
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from langchain_icalign.backends.base import Generation, GenerationBackend, GenerationParams
from langchain_icalign.backends.batching import ACTIVE_WINDOW, BatchWindow, embed_queries
from langchain_icalign.backends.llm import backend_for_llm
from langchain_icalign.chat_models import assembly
from langchain_icalign.chat_models.options import CALL_OPTIONS, call_options, generation_params
from langchain_icalign.chat_models.results import (
    as_chunk,
    ls_params,
    message_for,
    model_profile,
    out_of_time,
    stream_chunks,
    time_left,
    timed_out,
)
from langchain_icalign.defaults.builtin_demos import tool_demos
from langchain_icalign.demos import AlignmentDemo
from langchain_icalign.formats import PromptFormat, get_prompt_format
from langchain_icalign.messages import messages_to_conversation
from langchain_icalign.prompting import (
    PreparedPrompt,
    PromptBuilder,
    retrieval_query,
)
from langchain_icalign.selector import AlignmentExampleSelector
from langchain_icalign.token_counting import TokenCounterLike
from langchain_icalign.tools.binding import tool_options
from langchain_icalign.tools.request_mode import RequestMode
from langchain_icalign.tools.structured_output import (
    StructuredOutputMethod,
    structured_output_runnable,
)

__all__ = ["CALL_OPTIONS", "ChatICAlign"]  # CALL_OPTIONS: from `options`, as before


def _builtin_tool_demos() -> list[AlignmentDemo]:
    return list(tool_demos())


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
    generation_backend: GenerationBackend | None = Field(
        default=None, alias="backend", exclude=True
    )
    """A ready `GenerationBackend` (`backend=`: llama.cpp, a server, your own) instead of
    `llm`; the chat model asks its `capabilities` (grammar, batching, ...)."""

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
        return assembly.build_chat_model(cls, None, **kwargs)

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
            **kwargs: As for `chat_models.server_chat` (`store`, `request_timeout`,
                `grammar_field`, ...) and `ChatICAlign` arguments (`max_retries`, ...).
        """
        return assembly.server_chat(cls, base_url, model=model, tokenizer=tokenizer, **kwargs)

    @classmethod
    def from_model_id(cls, model_id: str, **kwargs: Any) -> ChatICAlign:
        """Any causal LM by hub id or local folder (for example `meta-llama/Llama-2-7b-hf`).

        Args:
            model_id: Hub id or folder; loaded with `local_files_only` when
                `HF_HUB_OFFLINE` is set.
            **kwargs: As for `from_defaults`, plus `device_map` and `dtype` (float32 on
                CPU; bfloat16, or float16 where bf16 is unsupported, on GPU).
        """
        return assembly.build_chat_model(cls, model_id, **kwargs)

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
        if self.generation_backend is not None:
            return self.generation_backend
        if self._backend is None:
            if self.llm is None:
                msg = (
                    "ChatICAlign needs llm= (a HuggingFacePipeline or another LangChain "
                    "BaseLLM) or backend= (a GenerationBackend)"
                )
                raise ValueError(msg)
            self._backend = backend_for_llm(self.llm, self.token_counter, self.context_window)
        return self._backend

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
        if not self._has_model():
            return "unknown"
        return self.backend.model_name

    def _has_model(self) -> bool:
        """Whether a model was given (`llm` or `backend`), so that `backend` can be had."""
        return self.llm is not None or self.generation_backend is not None

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
        return super().bind(**{**kwargs, **tool_options(tools, tool_choice, confirm_tools)})

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
        tokenizer = self.backend.tokenizer
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
        if self.generation_backend is not None:
            msg = (
                f"a ChatICAlign on a given backend ({type(self.generation_backend).__name__}) "
                "cannot be pickled: the backend holds a loaded model, a client or locks; "
                "pickle its settings and build the chat model again where it is loaded"
            )
            raise TypeError(msg)
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
        call_options(type(self), options)
        return self._prepare(chat, max_new_tokens or self.max_new_tokens, mode)

    def _prepare(
        self, messages: Sequence[BaseMessage], max_new_tokens: int, mode: RequestMode
    ) -> PreparedPrompt:
        window = ACTIVE_WINDOW.get()
        builder = PromptBuilder(
            self.format,
            self.backend,
            self.selector,
            self.system_prompt,
            tuple(self.constant_demos),
            tuple(self.tool_demos),
        )
        vectors = window.query_vectors if window is not None else None
        return builder.prepare(messages, max_new_tokens, mode, vectors)

    # -- generation ------------------------------------------------------------------------

    def _message(
        self, prompt: PreparedPrompt, generation: Generation, mode: RequestMode
    ) -> AIMessage:
        return message_for(prompt, generation, mode, self._model_name(), self.format)

    def _constrains(self) -> bool:
        """Whether the backend decodes under a grammar (tool calls and JSON answers then do)."""
        return self._has_model() and self.backend.capabilities.grammar

    def _generate_whole(
        self, mode: RequestMode, prompt: PreparedPrompt, params: GenerationParams
    ) -> Generation:
        """The whole answer, or none (finish reason "timeout") when no time is left."""
        if out_of_time(params):
            return timed_out(prompt)
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
        params = generation_params(self, stop, kwargs, mode)
        window = ACTIVE_WINDOW.get()
        if window is None:
            prompt = self._prepare(messages, params.max_new_tokens, mode)
            params = time_left(mode.for_prompt(params, prompt.conversation), started)
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
                generation = self._generate_whole(mode, prompt, time_left(params, started))
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
        params = generation_params(self, stop, kwargs, mode)
        prompt = self._prepare(messages, params.max_new_tokens, mode)
        params = time_left(mode.for_prompt(params, prompt.conversation), started)
        if not mode.streams_text:
            # A tool call or JSON answer is only meaningful whole: generate, then one chunk.
            generation = self._generate_whole(mode, prompt, params)
            message = self._message(prompt, generation, mode)
            yield ChatGenerationChunk(message=as_chunk(message))
            return
        events = (
            iter((timed_out(prompt),))
            if out_of_time(params)
            else self.backend.stream(prompt.text, params)
        )
        yield from stream_chunks(events, prompt, self._model_name(), self.format, run_manager)

    # -- batches ---------------------------------------------------------------------------

    def _batch_window(
        self, inputs: list[LanguageModelInput], config: RunnableConfig | list[RunnableConfig] | None
    ) -> BatchWindow | None:
        """A window that runs the batch's generations together, or None where it cannot."""
        if len(inputs) < 2 or self.streaming or not self._has_model() or ACTIVE_WINDOW.get():
            return None
        backend = self.backend
        if not backend.capabilities.batching:
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
        if len(inputs) < 2 or self.streaming or not self._has_model():
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
