"""Grammar libraries on the default model's tokenizer: set-up, schema compile, mask cost per token.

Measures xgrammar and llguidance (whichever are importable; xgrammar is not a dependency,
install it beside the venv with `pip install --no-deps --target DIR xgrammar apache-tvm-ffi`
and put DIR on PYTHONPATH) on Gemma-3-270m's 262k-token vocabulary:

- tokenizer set-up: the library's tokenizer object built from the Hugging Face tokenizer;
- compile: a nested schema (a Person with a nested Address, list[str], a Literal and an
  Optional[str]) turned into a matcher, first time and again;
- per-token overhead: the time the logits processor spends (mask computed, applied, token
  accepted) per decoded token, against the unconstrained decode step of the same prompt.

Run: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/grammar_libs.py [xgrammar] [llguidance]
Writes benchmarks/results/grammar_libs.json (a run of one library keeps the other's row) and
the llguidance figures, the library the package uses, as the "grammar" section of
benchmarks/results/perf.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel
from transformers import LogitsProcessor, LogitsProcessorList

RESULTS = Path(__file__).resolve().parent / "results" / "grammar_libs.json"
PERF = RESULTS.parent / "perf.json"
TOKENS = 48
REPEATS = 3
PROMPT = (
    "Question: Ada Lovelace, 36, lives at 12 St James's Square, London. She likes poetry and "
    "mathematics. She is an engineer. Write her record as JSON.\nAnswer: "
)


class Address(BaseModel):
    street: str
    city: str


class Person(BaseModel):
    full_name: str
    age: int
    home: Address
    hobbies: list[str]
    role: Literal["engineer", "artist", "teacher"]
    nickname: str | None = None


SCHEMA = Person.model_json_schema()


class _Timed(LogitsProcessor):
    """Wraps a processor and adds up the time spent in it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds: list[float] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        began = time.perf_counter()
        out = self.inner(input_ids, scores)
        self.seconds.append(time.perf_counter() - began)
        return out


def _decode_step(model: Any, inputs: dict[str, Any], processors: list[Any]) -> tuple[float, str]:
    began = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            **inputs,
            max_new_tokens=TOKENS,
            min_new_tokens=TOKENS if not processors else 0,
            do_sample=False,
            logits_processor=LogitsProcessorList(processors),
        )
    elapsed = time.perf_counter() - began
    new = out[0, inputs["input_ids"].shape[1] :]
    return elapsed / max(1, new.shape[0]), str(new.shape[0])


def measure_xgrammar(tokenizer: Any, vocab: int) -> dict[str, Any] | None:
    from langchain_icalign.tools.grammar import bounded_schema

    try:
        import xgrammar as xgr
        from xgrammar.contrib.hf import LogitsProcessor as XgrProcessor
    except ImportError:
        return None
    began = time.perf_counter()
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab)
    setup = time.perf_counter() - began
    compiler = xgr.GrammarCompiler(info, cache_enabled=False)
    began = time.perf_counter()
    compiled = compiler.compile_json_schema(json.dumps(bounded_schema(SCHEMA)))
    compile_s = time.perf_counter() - began
    began = time.perf_counter()
    compiler.compile_json_schema(json.dumps(bounded_schema(SCHEMA)))
    again = time.perf_counter() - began
    return {
        "setup_s": setup,
        "compile_s": compile_s,
        "compile_again_s": again,
        "processor": lambda: XgrProcessor(compiled),
        "note": "compile every time (cache off); xgrammar's own cache makes a repeat ~0",
    }


def measure_llguidance(tokenizer: Any, vocab: int, prompt_length: int) -> dict[str, Any] | None:
    """llguidance as the package runs it (grammar_decoding: GrammarCache, GrammarProcessor)."""
    try:
        import llguidance
    except ImportError:
        return None
    from langchain_icalign.backends.grammar_decoding import GrammarCache
    from langchain_icalign.tools.grammar import Grammar, json_grammar

    cache = GrammarCache(tokenizer, vocab, [tokenizer.eos_token_id])
    began = time.perf_counter()
    cache.lltokenizer  # noqa: B018 - built on first use
    setup = time.perf_counter() - began
    grammar = Grammar(json_grammar(SCHEMA))
    began = time.perf_counter()
    cache.matcher(grammar).compute_bitmask()  # llguidance builds lazily: the first mask counts
    compile_s = time.perf_counter() - began
    began = time.perf_counter()
    cache.matcher(grammar)
    again = time.perf_counter() - began
    assert llguidance
    return {
        "setup_s": setup,
        "compile_s": compile_s,
        "compile_again_s": again,
        "processor": lambda: cache.processor(grammar, prompt_length),
    }


def main() -> None:
    from langchain_icalign.defaults import load_base_model

    torch.set_num_threads(max(1, torch.get_num_threads()))
    model, tokenizer, model_id = load_base_model(None, show_progress=False)
    vocab = int(model.config.get_text_config().vocab_size)
    inputs = tokenizer(PROMPT, return_tensors="pt")
    prompt_length = int(inputs["input_ids"].shape[1])
    _decode_step(model, inputs, [])  # warm-up
    free = statistics.median(_decode_step(model, inputs, [])[0] for _ in range(REPEATS))
    rows = []
    libraries = sys.argv[1:] or ["xgrammar", "llguidance"]
    measures = {
        "xgrammar": lambda: measure_xgrammar(tokenizer, vocab),
        "llguidance": lambda: measure_llguidance(tokenizer, vocab, prompt_length),
    }
    for name in libraries:
        measured = measures[name]()
        if measured is None:
            print(f"{name}: not installed, skipped")
            continue
        per_token, steps, texts = [], [], []
        for _ in range(REPEATS):
            timed = _Timed(measured["processor"]())
            step, _count = _decode_step(model, inputs, [timed])
            per_token.append(statistics.mean(timed.seconds[1:]) if len(timed.seconds) > 1 else 0)
            steps.append(step)
        with torch.inference_mode():
            out = model.generate(
                **inputs,
                max_new_tokens=TOKENS,
                do_sample=False,
                logits_processor=LogitsProcessorList([measured["processor"]()]),
            )
        texts.append(tokenizer.decode(out[0, prompt_length:], skip_special_tokens=True))
        mask = statistics.median(per_token)
        rows.append(
            {
                "library": name,
                "tokenizer_setup_s": round(measured["setup_s"], 3),
                "schema_compile_ms": round(measured["compile_s"] * 1000, 1),
                "schema_compile_again_ms": round(measured["compile_again_s"] * 1000, 1),
                "mask_per_token_ms": round(mask * 1000, 2),
                "decode_step_ms": round(free * 1000, 1),
                "constrained_step_ms": round(statistics.median(steps) * 1000, 1),
                "overhead_pct": round(100 * mask / free, 1),
                "sample": texts[0][:160],
            }
        )
    header = ("library", "set-up s", "compile ms", "again ms", "mask ms/tok", "step ms", "ovh %")
    print(" | ".join(header))
    for row in rows:
        print(
            " | ".join(
                str(row[k])
                for k in (
                    "library",
                    "tokenizer_setup_s",
                    "schema_compile_ms",
                    "schema_compile_again_ms",
                    "mask_per_token_ms",
                    "decode_step_ms",
                    "overhead_pct",
                )
            )
        )
        print(f"  sample: {row['sample']!r}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if RESULTS.exists() and len(libraries) < len(measures):  # keep the other library's row
        kept = json.loads(RESULTS.read_text(encoding="utf-8")).get("rows", [])
        rows = [r for r in kept if r["library"] not in libraries] + rows
    payload = {
        "model": model_id,
        "vocab_size": vocab,
        "tokens": TOKENS,
        "repeats": REPEATS,
        "threads": torch.get_num_threads(),
        "schema": "Person(full_name, age, home: Address, hobbies: list[str], role: Literal, "
        "nickname: Optional[str])",
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    used = next((r for r in rows if r["library"] == "llguidance"), None)
    if used is not None and PERF.exists():  # the library the package uses, beside the rest
        perf = json.loads(PERF.read_text(encoding="utf-8"))
        perf["grammar"] = {
            "library": "llguidance",
            "model": model_id,
            "mask_per_token_ms": used["mask_per_token_ms"],
            "decode_step_ms": used["decode_step_ms"],
            "overhead_pct": used["overhead_pct"],
            "tokenizer_setup_s": used["tokenizer_setup_s"],
            "schema_compile_ms": used["schema_compile_ms"],
            "command": "benchmarks/grammar_libs.py",
        }
        PERF.write_text(json.dumps(perf, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
