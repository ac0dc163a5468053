"""Generation benchmarks on the default model (Gemma-3-270m, fp32, CPU).

- `run`: stop handling overhead as a share of decode time (our `StopOnStrings`, none,
  and transformers' `stop_strings`), and `ChatICAlign.invoke` end to end against
  `model.generate` on the same packed prompt (greedy, same tokens).
- `run_prefix`: prefill time with and without the prefix KV cache, on a repeated query,
  a new query under the same URIAL header and demos, and a follow-up turn; greedy
  answers compared.
- `run_batching`: 8 queries through `ChatICAlign.batch` against one `invoke` at a time.

Every figure is measured side by side in one run, interleaved, with the load average.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import perf_common as pc

QUESTIONS = [
    "How do I make a good cup of tea?",
    "What are some tips for staying focused while studying?",
    "Explain what a black hole is to a ten-year-old.",
    "Write a short poem about autumn leaves.",
    "How can I improve my sleep?",
    "What is the difference between weather and climate?",
    "Give me three ideas for a rainy Sunday.",
    "How do I start learning to play the guitar?",
]


class Timed:
    """A stopping criterion whose calls are timed; `ignore` keeps decoding going."""

    def __init__(self, criterion: Any, ignore: bool = True) -> None:
        self.criterion = criterion
        self.ignore = ignore
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        started = time.perf_counter()
        flags = self.criterion(input_ids, scores, **kwargs)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        if self.ignore:
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)
        return flags


DEMO_TOKENS = 1000  # demo budget: prompts of about 1.1k tokens (Han's 3000 triples prefill)
_BASE: list[Any] = []


def _default_chat(max_new_tokens: int, demo_tokens: int = DEMO_TOKENS) -> Any:
    """The default stack (loaded once), greedy, with a demo budget of `demo_tokens`."""
    from langchain_icalign import AlignmentExampleSelector, ChatICAlign

    if not _BASE:
        _BASE.append(ChatICAlign.from_defaults(temperature=0, show_progress=False))
    base = _BASE[0]
    selector = AlignmentExampleSelector(
        store=base.selector.store,
        token_counter=base.selector.token_counter,
        max_tokens=demo_tokens,
    )
    return ChatICAlign(
        llm=base.llm, selector=selector, temperature=0, max_new_tokens=max_new_tokens
    )


def _direct_generate(model: Any, inputs: dict[str, Any], new_tokens: int, **extra: Any) -> Any:
    import torch

    with torch.inference_mode():
        return model.generate(
            **inputs,
            max_new_tokens=new_tokens,
            do_sample=False,
            top_p=None,
            top_k=None,
            **extra,
        )


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def _cache_decode_cost(model: Any, inputs: dict[str, Any], steps: int = 12) -> dict[str, Any]:
    """One decode step with the prefix cache's cache against the default one.

    The default cache of a sliding-window model (Gemma 3) keeps only the window on its
    sliding layers. The prefix cache must keep every position, to be cut back to any
    prefix: its sliding layers record their past but attend to the window only. A cache
    of full layers (every layer attending to every position) is timed too. Steps
    alternate between the caches, so that load drifts hit them alike.
    """
    import torch
    from transformers import DynamicCache

    from langchain_icalign.backends.prefix_cache import PrefixCache

    ids = inputs["input_ids"]
    caches = {
        "default": DynamicCache(config=model.config),
        "prefix cache": PrefixCache().new_cache(model.config),
        "full layers": DynamicCache(),
    }
    seconds = dict.fromkeys(caches, 0.0)
    with torch.inference_mode():
        for cache in caches.values():
            model(input_ids=ids, past_key_values=cache, use_cache=True)
        token = ids[:, -1:]
        for step in range(steps):
            for name, cache in caches.items():
                position = torch.tensor([ids.shape[1] + step])
                started = time.perf_counter()
                model(
                    input_ids=token,
                    past_key_values=cache,
                    use_cache=True,
                    cache_position=position,
                )
                seconds[name] += time.perf_counter() - started
    ms = {name: round(1000 * value / steps, 1) for name, value in seconds.items()}
    return {
        "context_tokens": int(ids.shape[1]),
        "ms_per_step": ms,
        "prefix_cache_vs_default_pct": round(100 * (ms["prefix cache"] / ms["default"] - 1), 1),
        "full_layers_vs_default_pct": round(100 * (ms["full layers"] / ms["default"] - 1), 1),
        "load": pc.load(),
    }


def run(new_tokens: int = 32, repeats: int = 2, stop_repeats: int = 1) -> dict[str, Any]:
    """Stop handling overhead and ChatICAlign against model.generate."""
    from transformers import StoppingCriteriaList
    from transformers.generation.stopping_criteria import StopStringCriteria

    from langchain_icalign.backends.stop_strings import truncate_at_stop
    from langchain_icalign.backends.transformers import StopOnStrings

    chat = _default_chat(new_tokens)
    backend = chat.backend
    backend.prefix_cache = None  # timed separately (run_prefix)
    model, tokenizer = backend.model, backend.tokenizer
    stops = tuple(chat.format.stop)
    query = QUESTIONS[0]
    prompt = chat.prepare_prompt(query).text
    inputs = backend._encode(prompt)
    prompt_tokens = int(inputs["input_ids"].shape[1])
    result: dict[str, Any] = {
        "model": backend.model_name,
        "prompt_tokens": prompt_tokens,
        "new_tokens": new_tokens,
        "stops": list(stops),
        "load_start": pc.load(),
    }

    # -- stop handling: every variant decodes the same new_tokens tokens -------------------
    _direct_generate(model, inputs, 2)  # warm up
    setup_first = pc.timed(lambda: StopStringCriteria(tokenizer, list(stops)))[1]
    setup_again = pc.timed(lambda: StopStringCriteria(tokenizer, list(stops)))[1]
    walls: dict[str, list[float]] = {"none": [], "ours": [], "transformers": []}
    criterion_s: dict[str, list[float]] = {"ours": [], "transformers": []}
    prefill = []
    for _ in range(stop_repeats):
        prefill.append(pc.timed(lambda: _direct_generate(model, inputs, 1))[1])
        walls["none"].append(pc.timed(lambda: _direct_generate(model, inputs, new_tokens))[1])
        ours = Timed(StopOnStrings(tokenizer, stops, prompt_length=prompt_tokens))
        walls["ours"].append(
            pc.timed(
                lambda c=ours: _direct_generate(
                    model, inputs, new_tokens, stopping_criteria=StoppingCriteriaList([c])
                )
            )[1]
        )
        criterion_s["ours"].append(ours.seconds)
        started = time.perf_counter()
        theirs = Timed(StopStringCriteria(tokenizer, list(stops)))
        setup = time.perf_counter() - started
        walls["transformers"].append(
            pc.timed(
                lambda c=theirs: _direct_generate(
                    model, inputs, new_tokens, stopping_criteria=StoppingCriteriaList([c])
                )
            )[1]
            + setup
        )
        criterion_s["transformers"].append(theirs.seconds + setup)
    decode = [w - p for w, p in zip(walls["none"], prefill, strict=True)]
    result["stop_handling"] = {
        "prefill_s": _median(prefill),
        "decode_s_no_criteria": _median(decode),
        "decode_ms_per_token": round(_median(decode) / max(new_tokens - 1, 1) * 1000, 1),
        "wall_s": {name: _median(values) for name, values in walls.items()},
        "criterion_s": {name: round(statistics.median(v), 4) for name, v in criterion_s.items()},
        "share_of_decode_pct": {
            name: round(100 * statistics.median(v) / statistics.median(decode), 2)
            for name, v in criterion_s.items()
        },
        "transformers_setup_s": {"first": round(setup_first, 3), "again": round(setup_again, 3)},
        "load": pc.load(),
    }
    print(f"  stop handling: {result['stop_handling']}", flush=True)
    result["cache_decode_cost"] = _cache_decode_cost(model, inputs)
    print(f"  decode step, full cache vs sliding: {result['cache_decode_cost']}", flush=True)

    # -- ChatICAlign end to end against model.generate on the same packed prompt -----------
    chat_walls, direct_walls, same = [], [], []
    selection, inner = [], []
    original_generate = model.generate

    def timed_generate(*args: Any, **kwargs: Any) -> Any:
        output, seconds = pc.timed(lambda: original_generate(*args, **kwargs))
        inner.append(seconds)
        return output

    for index in range(repeats):
        question = QUESTIONS[index % len(QUESTIONS)]
        model.generate = timed_generate  # time the model's part of the invoke
        try:
            message, wall = pc.timed(lambda q=question: chat.invoke(q))
        finally:
            del model.generate
        chat_walls.append(wall)
        packed = chat.prepare_prompt(question).text
        direct_inputs = backend._encode(packed)
        produced = message.usage_metadata["output_tokens"]
        output, wall = pc.timed(lambda i=direct_inputs, n=produced: _direct_generate(model, i, n))
        direct_walls.append(wall)
        length = direct_inputs["input_ids"].shape[1]
        text = tokenizer.decode(output[0, length:], skip_special_tokens=True)
        same.append(truncate_at_stop(text, stops)[0].strip() == message.content)
        selection.append(
            pc.timed(lambda q=question: chat.selector.select_demos(q, max_tokens=DEMO_TOKENS))[1]
        )
    overhead = [c / d - 1 for c, d in zip(chat_walls, direct_walls, strict=True)]
    # Within one invoke: everything ChatICAlign does besides the model's generate call
    # (selection, rendering, counting, metadata), against that call; plus the stop
    # criterion, which runs inside generate (its share is measured above).
    own = [(c - g) / g for c, g in zip(chat_walls, inner, strict=True)]
    stop_share = result["stop_handling"]["share_of_decode_pct"]["ours"] / 100
    result["end_to_end"] = {
        "model_generate_inside_invoke_s": [round(g, 2) for g in inner],
        "own_work_pct_each": [round(100 * o, 2) for o in own],
        "overhead_in_run_pct": round(100 * (statistics.median(own) + stop_share), 2),
        "chat_invoke_s": [round(w, 2) for w in chat_walls],
        "model_generate_s": [round(w, 2) for w in direct_walls],
        "overhead_pct_median": round(100 * statistics.median(overhead), 2),
        "overhead_pct_each": [round(100 * o, 2) for o in overhead],
        "same_answer": same,
        "selection_s_default_store": [round(s, 4) for s in selection],
        "selection_share_pct": round(
            100 * statistics.median(selection) / statistics.median(chat_walls), 3
        ),
        "answer_wall_s_median": _median(chat_walls),
        "load": pc.load(),
    }
    print(f"  end to end: {result['end_to_end']}", flush=True)
    return result


def run_prefix(new_tokens: int = 16, repeats: int = 1) -> dict[str, Any]:
    """Prefill with and without the prefix cache; greedy answers compared."""
    from langchain_icalign import ChatICAlign
    from langchain_icalign.backends.base import GenerationParams
    from langchain_icalign.backends.transformers import TransformersBackend
    from langchain_icalign.defaults.builtin_demos import urial_set

    han = _default_chat(new_tokens)
    system, constant = urial_set()
    urial = ChatICAlign(
        llm=han.llm,
        prompt_format="urial",
        system_prompt=system,
        constant_demos=list(constant),
        temperature=0,
        max_new_tokens=new_tokens,
    )
    model, tokenizer = han.backend.model, han.backend.tokenizer
    plain = TransformersBackend(model, tokenizer, prefix_cache=False)
    one = GenerationParams(max_new_tokens=1, temperature=0)
    result: dict[str, Any] = {"new_tokens": new_tokens, "load_start": pc.load(), "formats": {}}

    for name, chat in (("urial_constant_demos", urial), ("han_retrieved_demos", han)):
        cached = TransformersBackend(model, tokenizer)
        params = GenerationParams(
            max_new_tokens=new_tokens, temperature=0, stop=tuple(chat.format.stop)
        )
        first_q, other_q, follow_q = QUESTIONS[0], QUESTIONS[1], "Can I make it without sugar?"
        first_prompt = chat.prepare_prompt(first_q).text
        answer_cached = cached.generate(first_prompt, params)  # fills the cache
        answer_plain = plain.generate(first_prompt, params)
        follow_prompt = chat.prepare_prompt(
            [("human", first_q), ("ai", answer_plain.text.strip()), ("human", follow_q)]
        ).text
        scenarios = {
            "repeated query": first_prompt,
            "new query, same header": chat.prepare_prompt(other_q).text,
            "follow-up turn": follow_prompt,
        }
        rows = {}
        for label, prompt in scenarios.items():
            plain_s, cached_s = [], []
            reused = 0
            for _ in range(repeats):
                plain_s.append(pc.timed(lambda p=prompt: plain.generate(p, one))[1])
                generation, seconds = pc.timed(lambda p=prompt, b=cached: b.generate(p, one))
                cached_s.append(seconds)
                reused = generation.cached_tokens
            full_cached = cached.generate(prompt, params)
            full_plain = plain.generate(prompt, params)
            rows[label] = {
                "prompt_tokens": generation.input_tokens,
                "reused_tokens": reused,
                "prefill_plain_s": _median(plain_s),
                "prefill_cached_s": _median(cached_s),
                "prefill_saved_pct": round(
                    100 * (1 - statistics.median(cached_s) / statistics.median(plain_s)), 1
                ),
                "same_greedy_answer": full_cached.text == full_plain.text,
                "load": pc.load(),
            }
            print(f"  {name} / {label}: {rows[label]}", flush=True)
        rows["first answer identical"] = {"same_greedy_answer": answer_cached == answer_plain}
        result["formats"][name] = rows
    return result


def run_batching(new_tokens: int = 32, size: int = 8, demo_tokens: int = 600) -> dict[str, Any]:
    """8 queries through ChatICAlign.batch against one invoke at a time."""
    from langchain_icalign.backends.batching import embed_queries

    chat = _default_chat(new_tokens, demo_tokens)
    selector = chat.selector
    chat.backend.prefix_cache = None  # neither path reuses prefixes here
    questions = QUESTIONS[:size]
    embeddings = selector.store.embeddings
    embeddings.embed_query("warm up")
    _, embed_each = pc.timed(lambda: [embeddings.embed_query(q) for q in questions])
    _, embed_batched = pc.timed(lambda: embed_queries(embeddings, questions))
    chat.invoke(questions[0], max_tokens=2)  # warm up
    load_start = pc.load()
    one_by_one, seq_s = pc.timed(lambda: [chat.invoke(q) for q in questions])
    batched, batch_s = pc.timed(lambda: chat.batch(questions))
    tokens = sum(m.usage_metadata["output_tokens"] for m in one_by_one)
    result = {
        "queries": size,
        "new_tokens": new_tokens,
        "demo_budget_tokens": demo_tokens,
        "prompt_tokens": [m.usage_metadata["input_tokens"] for m in one_by_one],
        "output_tokens": tokens,
        "one_at_a_time_s": round(seq_s, 1),
        "batch_s": round(batch_s, 1),
        "speedup": round(seq_s / batch_s, 2),
        "tokens_per_s": {
            "one_at_a_time": round(tokens / seq_s, 2),
            "batch": round(tokens / batch_s, 2),
        },
        "same_answers": [a.content for a in one_by_one] == [b.content for b in batched],
        "query_embedding_s": {
            "one_by_one": round(embed_each, 3),
            "batched": round(embed_batched, 3),
        },
        "load_start": load_start,
        "load_end": pc.load(),
    }
    print(f"  batching: {result}", flush=True)
    return result


def run_llamacpp(new_tokens: int = 32, repeats: int = 2) -> dict[str, Any]:
    """The llama.cpp backend (default Gemma Q4_K_M GGUF) beside transformers fp32."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        return {"skipped": "llama-cpp-python is not installed (the llamacpp extra)"}
    from langchain_icalign.backends.base import GenerationParams
    from langchain_icalign.backends.llamacpp import LlamaCppBackend
    from langchain_icalign.defaults.paths import default_gguf_path

    chat = _default_chat(new_tokens)
    prompt = chat.prepare_prompt(QUESTIONS[0]).text
    hf = chat.backend
    hf.prefix_cache = None
    cpp = LlamaCppBackend.from_path(default_gguf_path(), n_ctx=4096, n_threads=2)
    greedy = GenerationParams(max_new_tokens=new_tokens, temperature=0)
    one = GenerationParams(max_new_tokens=1, temperature=0)
    timings: dict[str, dict[str, list[float]]] = {
        name: {"prefill": [], "total": [], "tokens": []} for name in ("transformers", "llamacpp")
    }
    answers = {}

    def fresh(backend: Any) -> Any:
        # llama-cpp-python reuses the KV states of the previous prompt's shared prefix:
        # start each timed call from an empty context, as the transformers side does.
        reset = getattr(getattr(backend, "llm", None), "reset", None)
        if callable(reset):
            reset()
        return backend

    for _ in range(repeats):
        for name, backend in (("transformers", hf), ("llamacpp", cpp)):
            timings[name]["prefill"].append(
                pc.timed(lambda b=backend: fresh(b).generate(prompt, one))[1]
            )
            generation, seconds = pc.timed(lambda b=backend: fresh(b).generate(prompt, greedy))
            timings[name]["total"].append(seconds)
            timings[name]["tokens"].append(generation.output_tokens)
            answers[name] = generation.text[:200]
    result: dict[str, Any] = {"prompt_tokens": hf.count_tokens(prompt), "new_tokens": new_tokens}
    for name, values in timings.items():
        decode = statistics.median(
            (t - p) / max(n - 1, 1)
            for t, p, n in zip(values["total"], values["prefill"], values["tokens"], strict=True)
        )
        result[name] = {
            "prefill_s": _median(values["prefill"]),
            "decode_ms_per_token": round(1000 * decode, 1),
            "tokens": values["tokens"],
            "answer": answers[name],
        }
    result["decode_speedup"] = round(
        result["transformers"]["decode_ms_per_token"]
        / max(result["llamacpp"]["decode_ms_per_token"], 1e-6),
        2,
    )
    result["prefill_speedup"] = round(
        result["transformers"]["prefill_s"] / max(result["llamacpp"]["prefill_s"], 1e-6), 2
    )
    result["load"] = pc.load()
    print(f"  llama.cpp: {result}", flush=True)
    return result
